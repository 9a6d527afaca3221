"""The public surface: ``__all__`` is the API, nothing else shows, heavy parts load lazily."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import glfpinn

#: The public API, written out: a name added to or dropped from glfpinn is a decision made here.
PUBLIC = {
    # samplers
    "Follow",
    "GLF",
    "Mix",
    "PACMANN",
    "R3",
    "RAD",
    "RARD",
    "RARG",
    "RSmote",
    "Resampled",
    "RobustGLF",
    "Sampler",
    "SamplingContext",
    "Uniform",
    "UniformResample",
    # domains, networks, problems
    "Ball",
    "Box",
    "Domain",
    "LShape",
    "SpaceTime",
    "Rectangle",
    "Disk",
    "Polygon",
    "Constrained",
    "FourierFeatures",
    "MLP",
    "Sin",
    "Problem",
    "Unknown",
    "Bounded",
    # training
    "Callback",
    "Evaluator",
    "Every",
    "Never",
    "NonFiniteLossError",
    "OptimizationPlan",
    "ProgressBar",
    "Schedule",
    "Scorer",
    "Settle",
    "Stage",
    "TrainResult",
    "TrainState",
    "Trainer",
    # runs (lazy)
    "Run",
    "load_run",
    "plot_run",
    "record",
    "train",
    # subpackages
    "bench",
    "distributed",
    "integrations",
    "ops",
    "problems",
    "runs",
    "samplers",
    "testing",
    "training",
    "__version__",
}

#: What ``import glfpinn`` must not import: each loads on first use.
LAZY = ("glfpinn.testing", "glfpinn.bench", "glfpinn.runs", "glfpinn.integrations")


def test_all_is_the_curated_public_api():
    assert set(glfpinn.__all__) == PUBLIC
    assert len(glfpinn.__all__) == len(PUBLIC)  # no name twice


def test_dir_shows_the_public_api_and_dunders_only():
    # submodules imported along the way (config, plugins, _io, _registry, ...) do not show
    import glfpinn.config  # noqa: F401
    import glfpinn.plugins  # noqa: F401

    shown = {name for name in dir(glfpinn) if not (name.startswith("__") and name.endswith("__"))}
    assert shown == PUBLIC - {"__version__"}
    assert "__version__" in dir(glfpinn)


def test_every_public_name_resolves():
    for name in glfpinn.__all__:
        assert getattr(glfpinn, name) is not None, name
    assert glfpinn.train is glfpinn.runs.train
    assert glfpinn.Run is glfpinn.runs.Run


def test_import_glfpinn_loads_the_lazy_parts_only_on_use():
    code = (
        "import sys, glfpinn\n"
        f"loaded = [m for m in {LAZY!r} if m in sys.modules]\n"
        "assert not loaded, loaded\n"
        "glfpinn.testing.check_sampler\n"
        "assert 'glfpinn.testing' in sys.modules\n"
        "glfpinn.train\n"
        "assert 'glfpinn.runs' in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_star_import_gives_the_public_api():
    namespace: dict = {}
    exec("from glfpinn import *", namespace)  # noqa: S102 - the statement under test
    assert {k for k in namespace if k != "__builtins__"} == PUBLIC


def test_version_is_the_installed_distributions():
    assert glfpinn.__version__ == importlib.metadata.version("glfpinn")


def test_an_unknown_attribute_is_an_attribute_error():
    try:
        glfpinn.no_such_name  # noqa: B018
    except AttributeError as err:
        assert "no_such_name" in str(err)
    else:
        raise AssertionError("glfpinn.no_such_name resolved")
