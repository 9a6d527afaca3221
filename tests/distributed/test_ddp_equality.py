"""A step on 2 ranks is the single-process step on the union of their points, and GLF's
rank-local weights are the single-process RAD weights of the union.

Everything runs in float64: the 2-rank gradient is (mean over half A + mean over half B) / 2
where one process computes the mean over A and B at once, the same sum in another order. In
float64 that reassociation moves the result by ~1e-16 relative, so a 1e-10 tolerance leaves no
room for a real discrepancy (a term counted twice, a wrong normaliser), which would show at
O(1); float32's ~1e-7 rounding would need a tolerance a small real error could hide in.
"""

from __future__ import annotations

import pytest
import torch
from ranks import run_ranks

from glfpinn import GLF, Evaluator, Stage, Trainer, Uniform, problems
from glfpinn.samplers.select import rad_log_mean, rad_weights
from glfpinn.training import Every, make_trainer

N = 16
PROBLEM = {"space_dim": 2, "n_test": 64}  # soft initial and boundary terms: replicated ones
PLAN = [Stage("adam", 1, lr=1e-2), Stage("lbfgs", 1)]


def _union() -> torch.Tensor:
    problem = problems.get("reaction-diffusion-20d", **PROBLEM)
    return problem.domain.sample(N, torch.Generator().manual_seed(7), dtype=torch.float64)


def _conditions(problem):
    return problem.condition_points(12, torch.Generator().manual_seed(8), torch.float64)


def _trainer(sampler, group=None, **kw) -> Trainer:
    options = {
        "plan": PLAN,
        "n_points": N,
        "hidden": (8, 8),
        "dtype": "float64",
        "compile": False,
        "n_condition": 12,
        "evaluator": Evaluator(n_validation=16),
        **kw,
    }
    return make_trainer(
        problems.get("reaction-diffusion-20d", **PROBLEM), sampler, group=group, **options
    )


def _steps(trainer: Trainer) -> list[dict]:
    """Adam then L-BFGS (several closure calls): each step's loss, gradients and parameters."""
    out = []
    for _ in range(2):
        loss = trainer.optimizer_step()
        out.append(
            {
                "loss": float(loss),
                "grads": [p.grad.clone() for p in trainer.model.parameters()],
                "params": [p.detach().clone() for p in trainer.model.parameters()],
            }
        )
    return out


RESIDUALS = torch.tensor([0.0, 3.0, 1e-3, 0.5, 2.0, 7.0, 0.0, 1.5], dtype=torch.float64)
MASS = torch.tensor([1.0, 0.5, 2.0, 1.0, 1.5, 1.0, 3.0, 0.25], dtype=torch.float64)


def _on_rank(group) -> dict:
    half = slice(group.rank * N // 2, (group.rank + 1) * N // 2)
    trainer = _trainer(Uniform(), group)
    given_conditions = {k: v.clone() for k, v in trainer.state.condition_points.items()}
    trainer.state.points = _union()[half]
    trainer.state.condition_points = _conditions(trainer.problem)
    steps = _steps(trainer)
    # GLF's weights: rank r holds its half of the residuals; the last half is all zero on one
    # rank for the "every residual is 0 here but not elsewhere" case
    share = slice(group.rank * 4, (group.rank + 1) * 4)
    r, m = RESIDUALS[share], MASS[share]
    zeros = torch.zeros(4, dtype=torch.float64) if group.rank else r
    weights = {
        "plain": rad_weights(r, 2.0, 1.0, log_mean=rad_log_mean(r, 2.0, group=group)),
        "mass": rad_weights(
            r, 1.0, 0.5, mass=m, log_mean=rad_log_mean(r, 1.0, mass=m, group=group)
        ),
        "zeros": rad_weights(zeros, 1.0, 1.0, log_mean=rad_log_mean(zeros, 1.0, group=group)),
    }
    # a GLF run: resamples on each rank, one network everywhere
    glf = _trainer(GLF(), group, plan=[Stage("adam", 5, lr=1e-2)], schedule=Every(2), seed=3)
    result = glf.fit()
    return {
        "conditions": given_conditions,
        "steps": steps,
        "weights": weights,
        "glf": {
            "params": [p.detach() for p in glf.model.parameters()],
            "points": glf.state.points,
            "result": result.to_dict(),
        },
    }


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_on_rank, tmp_path_factory.mktemp("ranks"))


def test_two_rank_loss_and_gradient_equal_single_process_on_union(ranks):
    single = _trainer(Uniform())
    single.state.points = _union()
    single.state.condition_points = _conditions(single.problem)
    expected = _steps(single)
    for rank in ranks:
        for got, want in zip(rank["steps"], expected, strict=True):
            assert got["loss"] == pytest.approx(want["loss"], rel=1e-10)
            for g, w in zip(got["grads"] + got["params"], want["grads"] + want["params"]):
                torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-12)


def test_condition_points_are_replicated(ranks):
    a, b = (rank["conditions"] for rank in ranks)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key])


def test_rank_local_glf_weights_equal_global_rad_weights(ranks):
    got = {key: torch.cat([rank["weights"][key] for rank in ranks]) for key in ranks[0]["weights"]}
    torch.testing.assert_close(got["plain"], rad_weights(RESIDUALS, 2.0, 1.0), rtol=1e-12, atol=0)
    torch.testing.assert_close(
        got["mass"], rad_weights(RESIDUALS, 1.0, 0.5, mass=MASS), rtol=1e-12, atol=0
    )
    union = torch.cat([RESIDUALS[:4], torch.zeros(4, dtype=torch.float64)])
    torch.testing.assert_close(got["zeros"], rad_weights(union, 1.0, 1.0), rtol=1e-12, atol=0)


def test_glf_on_two_ranks_keeps_one_network_and_reports_the_whole_run(ranks):
    a, b = (rank["glf"] for rank in ranks)
    for p, q in zip(a["params"], b["params"], strict=True):
        assert torch.equal(p, q)  # identical updates from identical averaged gradients
    assert a["points"].shape == b["points"].shape == (N // 2, 3)
    assert not torch.equal(a["points"], b["points"])  # each rank samples its own stream
    # the metrics and the loss are the same on every rank; counts are the whole run's
    for key in ("final_loss", "l2_relative_error", "residual_mean", "n_points", "resamples"):
        assert a["result"][key] == b["result"][key], key
    assert a["result"]["n_points"] == N
    assert a["result"]["resamples"] == 2
    assert a["result"]["train_residual_evals"] == 5 * N  # 5 steps, N / 2 points on each rank
