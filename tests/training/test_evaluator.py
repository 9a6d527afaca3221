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


def _condition_trainer(problem, **kwargs):
    return make_trainer(problem, GLF(), steps=2, eval_every=2, n_points=32, hidden=(8,), **kwargs)


@pytest.mark.parametrize(
    ("name", "conditions"),
    [
        ("laplace", {"boundary"}),
        ("reaction-diffusion-20d", {"initial", "boundary"}),
        ("allen-cahn", set()),  # hard constraints: nothing to misfit
    ],
)
def test_each_soft_condition_is_measured_apart_on_held_out_points(name, conditions):
    from glfpinn import problems

    evals = Evaluations()
    tr = _condition_trainer(
        problems.get(name), evaluator=Evaluator(n_validation=64), callbacks=[evals]
    )
    result = tr.fit()
    assert set(result.condition_misfit) == conditions
    assert set(evals.records[-1].get("condition_misfit", {})) == conditions
    assert all(math.isfinite(v) and v >= 0 for v in result.condition_misfit.values())
    held_out = tr.validation.condition_misfits.points
    for key in conditions:  # drawn apart from the training condition points
        assert held_out[key].shape[0] > 0
        assert not torch.equal(held_out[key], tr.state.condition_points[key])


def test_the_condition_misfit_is_the_mean_squared_violation_of_each_condition():
    """On Laplace's own exact solution the boundary misfit vanishes; off by 0.1 everywhere it
    is 0.1^2, unweighted (the problem's boundary_weight scales the loss, not the measure)."""
    from glfpinn import problems

    problem = problems.get("laplace", boundary_weight=10.0)
    points = problem.condition_points(200, torch.Generator().manual_seed(0), torch.float64)

    def exact(x):
        return problem.exact(x)

    assert float(problem.condition_misfits(exact, points)["boundary"]) < 1e-28
    shifted = problem.condition_misfits(lambda x: exact(x) + 0.1, points)["boundary"]
    assert float(shifted) == pytest.approx(0.01, rel=1e-9)
    assert float(problem.condition_loss(lambda x: exact(x) + 0.1, points)) == pytest.approx(0.1)


def test_a_user_problem_with_one_condition_loss_reports_it_whole():
    from tests.helpers import MY_PDE

    namespace: dict = {}
    exec(MY_PDE, namespace)
    result = _condition_trainer(namespace["MyPDE"]()).fit()
    assert set(result.condition_misfit) == {"conditions"}


def test_reserved_names_include_the_condition_misfit_and_the_unknowns():
    for name in ("condition_misfit", "unknowns"):
        with pytest.raises(ValueError, match=f"metric '{name}' must be a callable under a name"):
            Evaluator(metrics={name: lambda model: 0.0})
