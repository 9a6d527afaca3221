"""The one base of every part: constructor = hyperparameters, read back by ``get_params``."""

from __future__ import annotations

import pytest

from glfpinn import (
    GLF,
    Evaluator,
    Every,
    Mix,
    Never,
    OptimizationPlan,
    Problem,
    Sampler,
    Schedule,
    Stage,
    UniformResample,
    problems,
)
from glfpinn._params import Params
from glfpinn.training.network import MLPSpec, ModelFactory


class _Part(Params):
    def __init__(self, a, b=2, *args, c=3, **options):
        self.a, self.b, self.c, self.options = a, b, c, options


class _Forgetful(Params):
    def __init__(self, a, b=2):
        self.a = a


def test_get_params_reads_the_constructor_back():
    part = _Part(1, c=4, lr=0.1)
    assert part.get_params() == {"a": 1, "b": 2, "c": 4, "lr": 0.1}
    assert type(part)(**part.get_params()).get_params() == part.get_params()


def test_an_argument_not_stored_is_named():
    with pytest.raises(AttributeError, match=r"'b' is not stored as self\.b"):
        _Forgetful(1).get_params()


def test_a_part_without_a_constructor_has_no_parameters():
    assert Never().get_params() == {}


@pytest.mark.parametrize(
    "cls", [Sampler, Problem, Stage, OptimizationPlan, MLPSpec, ModelFactory, Evaluator, Schedule]
)
def test_every_part_of_a_run_shares_the_one_base(cls):
    assert issubclass(cls, Params)
    assert "get_params" not in vars(cls)  # none writes its own


def test_the_parts_round_trip_through_their_parameters():
    stage = Stage("adamw", 5, lr=1e-3, scheduler="cosine", scheduler_options={"eta_min": 0.0})
    assert repr(Stage(**stage.get_params())) == repr(stage)
    plan = OptimizationPlan([stage, Stage("lbfgs", 2)])
    assert repr(OptimizationPlan(**plan.get_params())) == repr(plan)
    mix = Mix([(GLF(alpha=1e-3), 0.5), (UniformResample(), 0.5)])
    assert repr(Mix(**mix.get_params())) == repr(mix)
    assert Every(**Every(7).get_params()).period == 7
    assert Evaluator(**Evaluator(n_validation=9).get_params()).n_validation == 9
    assert MLPSpec(**MLPSpec([8], "sin").get_params()).get_params() == {
        "hidden": [8],
        "activation": "sin",
        "fourier_features": 0,
        "fourier_scale": 1.0,
    }
    factory = ModelFactory("glfpinn.nn:MLP", {"in_dim": 2})
    assert ModelFactory(**factory.get_params()).get_params() == factory.get_params()
    burgers = problems.get("burgers", viscosity=0.01)
    assert type(burgers)(**burgers.get_params()).get_params() == burgers.get_params()
