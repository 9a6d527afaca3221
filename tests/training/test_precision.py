"""A stage's precision switch, and what a resample does to a quasi-Newton stage's curvature."""

import io
import logging

import pytest
import torch

from glfpinn import GLF, Every, OptimizationPlan, Stage
from glfpinn.training import make_trainer
from glfpinn.training.quasi_newton import BFGS
from tests.helpers import Poisson1D


def _switching_plan():
    return [Stage("adam", 20, lr=1e-2), Stage("bfgs", 10, dtype="float64")]


def _trainer(plan, **kw):
    kw.setdefault("eval_every", 10)
    kw.setdefault("schedule", Every(7))
    kw.setdefault("compile", False)
    return make_trainer(Poisson1D(), GLF(alpha=1e-3), plan=plan, **kw)


@pytest.mark.parametrize("compile", [False, True], ids=["eager", "compiled"])
def test_a_float64_stage_casts_the_whole_run_when_it_starts(compile):
    tr = _trainer(_switching_plan(), compile=compile)
    tr.fit(until=20)
    assert tr.dtype == torch.float32 and tr.state.points.dtype == torch.float32
    result = tr.fit()
    s = tr.state
    assert tr.dtype == torch.float64 and result.dtype == "float64"
    assert all(p.dtype == torch.float64 for p in tr.model.parameters())
    assert s.points.dtype == torch.float64
    assert all(c.dtype == torch.float64 for c in s.condition_points.values())
    assert tr.validation.held_out.dtype == torch.float64
    bfgs = s.optimizers[1]
    assert isinstance(bfgs, BFGS) and bfgs.state[bfgs._params[0]]["H"].dtype == torch.float64
    assert s.optimizers[0].state[next(tr.model.parameters())]["exp_avg"].dtype == torch.float64
    assert torch.isfinite(torch.tensor(result.final_loss))
    if compile:  # the compiled loss recompiled for float64 rather than falling back to eager
        assert tr.training_loss.compiled is not None


def test_a_problem_with_soft_conditions_is_evaluated_in_the_new_precision():
    from glfpinn import problems

    plan = [Stage("adam", 4, lr=1e-3), Stage("ssbroyden", 3, dtype="float64")]
    tr = make_trainer(
        problems.get("laplace"),
        GLF(),
        plan=plan,
        n_points=64,
        n_condition=32,
        hidden=(8, 8),
        eval_every=2,
        compile=False,
    )
    result = tr.fit()  # evaluates after the switch: held-out boundary points in float64 too
    assert result.dtype == "float64"
    points = tr.validation.condition_misfits.points
    assert points and all(
        v.dtype == torch.float64 for v in points.values() if v.is_floating_point()
    )
    misfit = result.to_dict()["condition_misfit"]
    assert misfit and all(torch.isfinite(torch.tensor(v)) for v in misfit.values())


def test_a_resume_across_the_precision_switch_is_bit_exact():
    full = _trainer(_switching_plan())
    full_result = full.fit()
    first = _trainer(_switching_plan())
    first.fit(until=25)  # inside the float64 stage, after a resample (step 21)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    second = _trainer(_switching_plan())  # built in float32, like any new process
    second.load_state_dict(torch.load(buf, weights_only=True))
    assert second.dtype == torch.float64
    resumed = second.fit()
    assert resumed.final_loss == full_result.final_loss
    for a, b in zip(full.model.parameters(), second.model.parameters(), strict=True):
        assert torch.equal(a, b)


def test_a_stage_without_dtype_keeps_the_precision_before_it():
    plan = OptimizationPlan([Stage("adam", 3), Stage("adam", 3, dtype="float64"), Stage("adam", 3)])
    assert [plan.dtype_at(step, "float32") for step in (0, 2, 3, 5, 6, 8)] == [
        "float32",
        "float32",
        "float64",
        "float64",
        "float64",
        "float64",
    ]


@pytest.mark.parametrize("curvature", ["keep", "reset"])
def test_curvature_at_a_resample_is_kept_or_reset_as_the_stage_says(curvature):
    tr = _trainer([Stage("bfgs", 12, curvature=curvature)], schedule=Every(6), dtype="float64")
    tr.fit()
    bfgs = tr.state.optimizers[0]
    updates = bfgs.state[bfgs._params[0]]["updates"]
    # 12 iterations, one resample before the 7th: kept, the updates go on counting; reset,
    # only those after the resample remain
    if curvature == "keep":
        assert updates > 6
    else:
        assert 1 <= updates <= 6


@pytest.mark.parametrize("curvature", ["keep", "reset"])
def test_torch_lbfgs_keeps_or_drops_its_history_at_a_resample_as_the_stage_says(curvature):
    tr = _trainer([Stage("lbfgs", 8, curvature=curvature)], schedule=Every(4), dtype="float64")
    tr.fit(until=4)
    lbfgs = tr.state.optimizers[0]
    assert lbfgs.state[lbfgs.param_groups[0]["params"][0]].get("old_dirs")  # pairs were stored
    tr.resample()
    if curvature == "keep":
        assert lbfgs.state[lbfgs.param_groups[0]["params"][0]].get("old_dirs")
    else:
        assert len(lbfgs.state) == 0


def test_a_resample_makes_a_dense_stage_evaluate_its_gradient_afresh():
    tr = _trainer([Stage("bfgs", 8)], schedule=Every(4), dtype="float64")
    tr.fit(until=4)
    bfgs = tr.state.optimizers[0]
    slot = bfgs.state[bfgs._params[0]]
    assert "g" in slot
    tr.resample()
    assert "g" not in slot and "H" in slot  # the default keeps the curvature


def test_a_dense_stage_states_its_memory_when_it_is_built(caplog):
    with caplog.at_level(logging.INFO, logger="glfpinn"):
        tr = _trainer([Stage("adam", 2), Stage("ssbroyden", 2, dtype="float64")])
    n = sum(p.numel() for p in tr.model.parameters())
    message = " ".join(r.getMessage() for r in caplog.records)
    assert f"{n:,}^2 float64 numbers" in message and "max_params=20,000" in message


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: Stage("ssbroyden", 5, dtype="float16"), "dtype='float16' is not allowed"),
        (lambda: Stage("adam", 5, curvature="reset"), "applies to quasi-Newton stages"),
        (lambda: Stage("lbfgs", 5, curvature="forget"), "curvature='forget' is not allowed"),
        (lambda: Stage("bfgs", 5, momentum=0.9), "option 'momentum' is unknown"),
    ],
)
def test_bad_stage_options_are_refused_in_one_line(make, fragment):
    with pytest.raises(ValueError) as err:
        make()
    assert fragment in str(err.value) and "\n" not in str(err.value)
