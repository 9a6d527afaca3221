"""The problem contract, checked before any training, and problems found by import path or as
installed plugins."""

import importlib.metadata

import pytest
import torch

from glfpinn import GLF, Box, LShape, problems, samplers
from glfpinn.cli import main
from glfpinn.training import make_trainer
from tests.helpers import MY_PDE, Poisson1D


def _variant(**changes):
    """A Poisson1D whose instance attributes or residual are broken as ``changes`` say."""

    class Broken(Poisson1D):
        def __init__(self):
            super().__init__()
            for key, value in changes.items():
                if key != "residual":
                    setattr(self, key, value)

        def residual(self, model, x):
            if "residual" in changes:
                return changes["residual"](model, x)
            return super().residual(model, x)

    return Broken()


@pytest.mark.parametrize(
    ("changes", "fragment"),
    [
        ({"name": ""}, "has no name"),
        ({"dim": 0}, "dim=0 must be an integer >= 1"),
        ({"dim": 1.0}, "dim=1.0 must be an integer >= 1"),
        ({"domain": [0, 1]}, "must be a glfpinn Domain"),
        ({"domain": LShape()}, "its domain has dimension 2, dim is 1"),
        ({"residual": lambda m, x: m(x)}, "must return shape (n,) = (4,), got (4, 1)"),
        ({"residual": lambda m, x: 1 / 0}, "residual(model, x) failed on 4 points"),
    ],
)
def test_a_broken_contract_fails_before_training_in_one_line(changes, fragment):
    with pytest.raises(ValueError) as info:
        make_trainer(_variant(**changes), GLF(), steps=10)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_a_problem_class_without_a_name_is_refused_at_registration():
    class Nameless(problems.Problem):
        def __init__(self):
            self.dim, self.domain = 1, Box([0.0], [1.0])

        def residual(self, model, x):
            return x[:, 0]

    with pytest.raises(ValueError, match="problem class Nameless has no name"):
        problems.register("nameless", Nameless, "no name")
    with pytest.raises(ValueError, match="has no name"):
        make_trainer(Nameless(), GLF(), steps=5)


def test_problems_and_samplers_by_import_path(tmp_path):
    (tmp_path / "my_pde.py").write_text(
        MY_PDE
        + "\n\nfrom glfpinn.samplers import UniformResample\n\n"
        + "class Fresh(UniformResample):\n    pass\n"
    )
    problem = problems.get(f"{tmp_path / 'my_pde.py'}:MyPDE", source_scale=3.0)
    assert problem.name == "my-pde" and problem.source_scale == 3.0
    sampler = samplers.get(f"{tmp_path / 'my_pde.py'}:Fresh", method="sobol")
    assert type(sampler).__name__ == "Fresh" and sampler.method == "sobol"
    assert problems.get("tests.helpers:Poisson1D").name == "poisson-1d"
    with pytest.raises(ValueError, match="has no 'Nope'"):
        problems.get("tests.helpers:Nope")


def test_installed_plugins_appear_by_name_and_in_glfpinn_list(monkeypatch, capsys):
    entry = importlib.metadata.EntryPoint(
        name="poisson-plugin", value="tests.helpers:Poisson1D", group="glfpinn.problems"
    )

    def entry_points(group=None):
        return [entry] if group == "glfpinn.problems" else []

    registry = problems.registry
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    monkeypatch.setattr(registry, "_entries", dict(registry._entries))
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    assert "poisson-plugin" in problems.names()
    assert problems.get("poisson-plugin").name == "poisson-1d"
    assert main(["list"]) == 0
    assert "poisson-plugin" in capsys.readouterr().out


def test_a_residual_of_the_run_s_dtype_is_checked_with_the_run_s_model():
    tr = make_trainer(Poisson1D(), GLF(), steps=5, dtype="float64")
    assert tr.model.net.layers[0].weight.dtype == torch.float64
