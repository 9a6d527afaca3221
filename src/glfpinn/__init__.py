"""glfpinn: physics-informed neural networks with adaptive collocation sampling.

The public API is this flat namespace, ``__all__``; the modules behind it are implementation
detail. Names are re-exported explicitly (``X as X``, as diffrax does). The parts that a run
needs only on demand load on first use (PEP 562): ``runs`` (and ``train``, ``record``,
``load_run``, ``plot_run``, ``Run``), ``testing``, ``bench``, ``distributed`` and
``integrations``, so ``import glfpinn`` imports none of them.
"""

from __future__ import annotations

# first: the command line's Ctrl-C or MemoryError during the imports below is one line
from glfpinn import _startup as _startup  # noqa: I001  # isort: skip
import importlib as _importlib
import importlib.metadata as _metadata
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from glfpinn import ops as ops
from glfpinn import problems as problems
from glfpinn import samplers as samplers
from glfpinn import training as training
from glfpinn.domains import Ball as Ball
from glfpinn.domains import Box as Box
from glfpinn.domains import Disk as Disk
from glfpinn.domains import Domain as Domain
from glfpinn.domains import LShape as LShape
from glfpinn.domains import Polygon as Polygon
from glfpinn.domains import Rectangle as Rectangle
from glfpinn.domains import SpaceTime as SpaceTime
from glfpinn.nn import MLP as MLP
from glfpinn.nn import Constrained as Constrained
from glfpinn.nn import FourierFeatures as FourierFeatures
from glfpinn.nn import Sin as Sin
from glfpinn.problems import Bounded as Bounded
from glfpinn.problems import Problem as Problem
from glfpinn.problems import Unknown as Unknown
from glfpinn.samplers import GLF as GLF
from glfpinn.samplers import PACMANN as PACMANN
from glfpinn.samplers import R3 as R3
from glfpinn.samplers import RAD as RAD
from glfpinn.samplers import RARD as RARD
from glfpinn.samplers import RARG as RARG
from glfpinn.samplers import Follow as Follow
from glfpinn.samplers import Mix as Mix
from glfpinn.samplers import Resampled as Resampled
from glfpinn.samplers import RobustGLF as RobustGLF
from glfpinn.samplers import RSmote as RSmote
from glfpinn.samplers import Sampler as Sampler
from glfpinn.samplers import SamplingContext as SamplingContext
from glfpinn.samplers import Settle as Settle
from glfpinn.samplers import Uniform as Uniform
from glfpinn.samplers import UniformResample as UniformResample
from glfpinn.training import Callback as Callback
from glfpinn.training import Evaluator as Evaluator
from glfpinn.training import Every as Every
from glfpinn.training import Never as Never
from glfpinn.training import NonFiniteLossError as NonFiniteLossError
from glfpinn.training import OptimizationPlan as OptimizationPlan
from glfpinn.training import ProgressBar as ProgressBar
from glfpinn.training import Schedule as Schedule
from glfpinn.training import Scorer as Scorer
from glfpinn.training import Stage as Stage
from glfpinn.training import Trainer as Trainer
from glfpinn.training import TrainResult as TrainResult
from glfpinn.training import TrainState as TrainState

if _TYPE_CHECKING:  # loaded on first use (``__getattr__``); named here for type checkers
    from glfpinn import bench as bench
    from glfpinn import distributed as distributed
    from glfpinn import integrations as integrations
    from glfpinn import runs as runs
    from glfpinn import testing as testing
    from glfpinn.runs import Run as Run
    from glfpinn.runs import load_run as load_run
    from glfpinn.runs import plot_run as plot_run
    from glfpinn.runs import record as record
    from glfpinn.runs import train as train

try:  # the one version is pyproject.toml's, as installed
    __version__: str = _metadata.version("glfpinn")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree not installed
    __version__ = "0+unknown"

#: Subpackages loaded on first use.
_LAZY_MODULES = ("bench", "distributed", "integrations", "runs", "testing")
#: Names loaded on first use, and the module each comes from.
_LAZY_NAMES = {name: "glfpinn.runs" for name in ("Run", "load_run", "plot_run", "record", "train")}

__all__ = [
    "GLF",
    "MLP",
    "PACMANN",
    "R3",
    "RAD",
    "RARD",
    "RARG",
    "Ball",
    "Box",
    "Bounded",
    "Callback",
    "Constrained",
    "Disk",
    "Domain",
    "Evaluator",
    "Every",
    "Follow",
    "FourierFeatures",
    "LShape",
    "SpaceTime",
    "Mix",
    "Never",
    "NonFiniteLossError",
    "OptimizationPlan",
    "Polygon",
    "Problem",
    "ProgressBar",
    "RSmote",
    "Rectangle",
    "Resampled",
    "RobustGLF",
    "Run",
    "Sampler",
    "SamplingContext",
    "Schedule",
    "Scorer",
    "Settle",
    "Sin",
    "Stage",
    "TrainResult",
    "TrainState",
    "Trainer",
    "Uniform",
    "UniformResample",
    "Unknown",
    "__version__",
    "bench",
    "distributed",
    "integrations",
    "load_run",
    "ops",
    "plot_run",
    "problems",
    "record",
    "runs",
    "samplers",
    "testing",
    "train",
    "training",
]


def __getattr__(name: str) -> _Any:
    if name in _LAZY_MODULES:
        return _importlib.import_module(f"{__name__}.{name}")
    if name in _LAZY_NAMES:
        value = getattr(_importlib.import_module(_LAZY_NAMES[name]), name)
        globals()[name] = value  # found directly from now on
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The public API and the module's dunders; submodules imported along the way (``config``,
    ``_io``, ...) stay importable but are not part of it."""
    return sorted({*__all__, *(k for k in globals() if k.startswith("__"))})
