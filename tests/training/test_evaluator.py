import math

import pytest
import torch

from glfpinn import GLF, Evaluator, Every, UniformResample
from glfpinn.training import make_trainer
from tests.helpers import Evaluations, Poisson1D, Poisson1DNoReference


def test_a_problem_without_a_reference_trains_and_reports_residual_validation():
    evals = Evaluations()
    tr = make_trainer(
        Poisson1DNoReference(),
        GLF(alpha=1e-3),
        steps=200,
        lr=1e-2,
        eval_every=50,
        callbacks=[evals],
    )
    result = tr.fit()
    assert result.l2_relative_error is None and result.initial_l2_relative_error is None
    assert [m["step"] for m in evals.records] == [50, 100, 150, 200]
    assert all(m["l2_relative_error"] is None for m in evals.records)
    initial = tr.state.initial_metrics["residual_mean"]
    # -u'' = pi^2 sin(pi x): the untrained residual is about pi^2 * 2/pi ~ 6 on average;
    # 200 Adam steps at 1e-2 bring it down by more than an order of magnitude.
    assert result.residual_mean < 0.1 * initial
    assert 0 < result.residual_mean <= result.residual_max


def test_residual_validation_matches_the_reference_error_trend():
    """With a reference too, both measures are reported and both fall as training goes on."""
    tr = make_trainer(Poisson1D(), GLF(alpha=1e-3), steps=200, lr=1e-2, eval_every=100)
    result = tr.fit()
    first = tr.state.initial_metrics
    assert result.l2_relative_error < 0.2 * first["l2_relative_error"]
    assert result.residual_mean < 0.2 * first["residual_mean"]


def test_held_out_points_come_from_the_seed_and_leave_training_unchanged():
    def run(n_validation, seed=0):
        tr = make_trainer(
            Poisson1D(),
            UniformResample(),
            steps=40,
            schedule=Every(10),
            eval_every=20,
            seed=seed,
            evaluator=Evaluator(n_validation=n_validation),
        )
        return tr, tr.fit()

    a, result_a = run(100)
    b, result_b = run(100)
    c, result_c = run(7)
    d, _ = run(100, seed=1)
    assert torch.equal(a.validation.held_out, b.validation.held_out)
    assert not torch.equal(a.validation.held_out, d.validation.held_out)
    assert c.validation.held_out.shape == (7, 1)
    # the validation stream is separate: the size of the held-out set changes nothing else
    assert result_a.final_loss == result_c.final_loss
    assert torch.equal(a.state.points, c.state.points)


def test_user_metrics_are_reported_at_every_evaluation():
    evals = Evaluations()
    at_half = Evaluator(metrics={"u_half": lambda model: float(model(torch.tensor([[0.5]])))})
    tr = make_trainer(
        Poisson1D(), GLF(), steps=40, lr=1e-2, eval_every=20, evaluator=at_half, callbacks=[evals]
    )
    result = tr.fit()
    assert [("u_half" in m) for m in evals.records] == [True, True]
    u_half = float(tr.model(torch.tensor([[0.5]])))
    assert result.metrics == {"u_half": pytest.approx(u_half)}
    assert math.isfinite(result.metrics["u_half"])


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"n_validation": 0}, "n_validation=0 is not allowed"),
        ({"metrics": {"loss": lambda m: 0.0}}, "metric 'loss' must be a callable under a name"),
        ({"metrics": {"x": 3}}, "metric 'x' must be a callable"),
    ],
)
def test_bad_evaluator_arguments_are_refused(kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        Evaluator(**kwargs)
