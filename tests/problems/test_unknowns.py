"""An inverse problem's unknowns: transforms between the raw trained parameter and the value
the problem reads, and a learning rate of their own."""

import math

import pytest
import torch

from glfpinn import GLF, Bounded, Stage, Unknown
from glfpinn.problems import Identity, Positive
from glfpinn.problems.unknowns import UnknownParameters
from glfpinn.training import make_trainer
from tests.helpers import Poisson1D

RAW = torch.linspace(-40.0, 40.0, 801, dtype=torch.float64)


@pytest.mark.parametrize("value", [1e-6, 0.00318, 0.05, 1.0, 1e4])
def test_positive_is_exp_of_its_raw_parameter_and_inverts_its_guess(value):
    t = Positive()
    assert float(t.forward(torch.tensor(t.inverse(value), dtype=torch.float64))) == pytest.approx(
        value, rel=1e-12
    )
    assert t.inverse(value) == pytest.approx(math.log(value))


def test_positive_and_bounded_values_stay_in_their_range_for_any_raw_parameter():
    assert bool((Positive().forward(RAW) > 0).all())
    b = Bounded(-2.0, 3.0).forward(RAW)
    assert bool(((b >= -2.0) & (b <= 3.0)).all())
    assert bool((b[:-1] <= b[1:]).all())  # monotone: an optimizer's step has one meaning


@pytest.mark.parametrize("value", [-1.99, 0.0, 0.5, 2.9])
def test_bounded_inverts_its_guess(value):
    t = Bounded(-2.0, 3.0)
    back = float(t.forward(torch.tensor(t.inverse(value), dtype=torch.float64)))
    assert back == pytest.approx(value, abs=1e-12)


@pytest.mark.parametrize(
    ("build", "fragment"),
    [
        (lambda: Unknown(0.0, "positive"), "a positive unknown's guess must be > 0, got 0.0"),
        (lambda: Unknown(1.0, Bounded(0.0, 1.0)), r"must lie strictly inside \(0.0, 1.0\)"),
        (lambda: Bounded(1.0, 1.0), "needs finite low < high"),
        (lambda: Unknown(1.0, "postive"), "did you mean 'positive'"),
        (lambda: Unknown(float("nan")), "must be a finite number"),
        (lambda: Unknown(1.0, transform=3), "must be 'identity', 'positive' or a Transform"),
    ],
)
def test_bad_unknowns_are_one_line_errors(build, fragment):
    with pytest.raises(ValueError, match=fragment) as err:
        build()
    assert "\n" not in str(err.value)


def test_a_number_trains_as_it_is_so_problems_without_transforms_read_their_parameter():
    params = UnknownParameters({"k": 0.5, "nu": Unknown(0.05, "positive")})
    assert params.value("k") is params["k"]  # identity: the same tensor, bit for bit as before
    assert params["nu"].item() == pytest.approx(math.log(0.05))
    assert params.current() == pytest.approx({"k": 0.5, "nu": 0.05})
    assert isinstance(params._transforms["k"], Identity)


class DecayingCoefficient(Poisson1D):
    """Poisson1D with an unknown c whose best fit, -0.5, is negative: the residual pushes c
    down from its guess 1. An untransformed c goes below 0; a positive one approaches 0 and
    never crosses it."""

    name = "decaying-coefficient"

    def __init__(self, transform="identity"):
        super().__init__()
        self.transform = transform
        self.unknowns = {"c": Unknown(1.0, transform)}

    def residual(self, model, x):
        return super().residual(model, x) - 50.0 * (self.unknown("c") + 0.5)


def _fit(transform, steps=40, **stage_options):
    plan = [Stage("adam", steps, lr=1e-3, **stage_options)]
    trainer = make_trainer(DecayingCoefficient(transform), GLF(), plan=plan, eval_every=steps)
    return trainer, trainer.fit()


def test_a_positive_unknown_stays_positive_where_an_untransformed_one_goes_negative():
    """Adam moves a raw parameter by about lr per step: at unknowns_lr=0.5, 40 steps carry an
    untransformed c from 1 to below 0, while log c only falls and c = exp(log c) stays > 0."""
    _, plain = _fit("identity", unknowns_lr=0.5)
    _, positive = _fit("positive", unknowns_lr=0.5)
    assert plain.unknowns["c"] < 0
    assert 0 < positive.unknowns["c"] < 0.1  # it moved towards the best fit, and no further


def test_unknowns_lr_trains_the_unknowns_in_a_group_of_their_own():
    trainer, result = _fit("identity", steps=5, unknowns_lr=0.25)
    (adam,) = trainer.state.optimizers
    network, unknowns = adam.param_groups
    assert network["lr"] == 1e-3 and unknowns["lr"] == 0.25
    assert unknowns["params"] == list(trainer.state.unknowns.values())
    assert len(network["params"]) == len(list(trainer.model.parameters()))
    # Adam's first steps move each parameter by about its lr: c moved by ~5 x 0.25, not 5e-3
    assert 0.5 < 1.0 - result.unknowns["c"] < 1.5
    assert result.stages[0]["options"] == {"lr": 1e-3, "unknowns_lr": 0.25}


def test_unknowns_lr_is_refused_where_it_cannot_apply():
    with pytest.raises(ValueError, match="unknowns_lr is not allowed with LBFGS"):
        Stage("lbfgs", 5, unknowns_lr=1e-2)
    with pytest.raises(ValueError, match="unknowns_lr=0 is not allowed"):
        Stage("adam", 5, unknowns_lr=0)
    with pytest.raises(ValueError, match="did you mean 'unknowns_lr'"):
        Stage("adam", 5, unknown_lr=1e-2)
    with pytest.raises(ValueError, match="unknowns_lr=0.01 given, but the problem has no unknowns"):
        make_trainer(Poisson1D(), GLF(), plan=[Stage("adam", 5, unknowns_lr=1e-2)])


def test_a_stage_with_unknowns_lr_comes_from_a_config_and_the_command_line():
    from glfpinn.cli import parse_stage

    stage = Stage.from_dict(parse_stage("adam:steps=10,lr=1e-3,unknowns_lr=1e-2"))
    assert stage.options == {"lr": 1e-3, "unknowns_lr": 1e-2}


def test_a_checkpoint_holds_the_raw_parameter_and_the_result_the_value():
    trainer, result = _fit("positive", steps=5, unknowns_lr=0.1)
    raw = trainer.state_dict()["unknowns"]["c"]
    assert float(torch.exp(raw)) == pytest.approx(result.unknowns["c"], rel=1e-6)
    assert trainer.problem.unknown("c").item() == pytest.approx(result.unknowns["c"], rel=1e-6)
