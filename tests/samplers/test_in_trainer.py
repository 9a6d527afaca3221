"""The new samplers inside the real trainer: costs as documented, growth, loss weights, and an
exact resume through a checkpoint (torch.save / torch.load(weights_only=True))."""

import io

import pytest
import torch

from glfpinn import Every
from glfpinn.samplers import (
    PACMANN,
    R3,
    RAD,
    RARD,
    RARG,
    Follow,
    Mix,
    RobustGLF,
    RSmote,
    Settle,
    UniformResample,
)
from glfpinn.training import make_trainer
from tests.helpers import Poisson1D

N, PERIOD, STEPS = 64, 15, 60  # resamples before steps 15, 30, 45

CASES = {
    # name: (sampler, residual evaluations per resample, points added per resample)
    "rar-d": (lambda: RARD(n_candidates=300, n_add=4), 300, 4),
    "rar-g": (lambda: RARG(n_candidates=300, n_add=2), 300, 2),
    "r3": (lambda: R3(), 0, 0),
    "rsmote": (lambda: RSmote(), 0, 0),
    "pacmann": (lambda: PACMANN(step_size=1e-3, n_moves=3, keep_moments=True), None, 0),
    # any imperfect ranking settles it, at the second resample: the resume crosses the decision
    "settle": (lambda: Settle(RobustGLF(), below=1.0, watch=1), 0, 0),
    # settled on fresh uniform draws: the resume must replay the run's generator after it
    "settle-resample": (
        lambda: Settle(RobustGLF(), below=1.0, watch=1, then="uniform-resample"),
        0,
        0,
    ),
    # half of robust GLF's points kept at random, half fresh, the persistence measured on 16
    # of the 64 points: the resume must replay every draw and the measured subset
    "follow": (lambda: Follow(RobustGLF(), start=0.5, probe=16), 0, 0),
    "rad-iw": (lambda: RAD(n_candidates=300, importance_weights=True), 300, 0),
    "mix": (
        lambda: Mix([(RARD(n_candidates=200, n_add=2), 0.5), (UniformResample(), 0.5)]),
        200,
        2,
    ),
}


def _trainer(sampler, steps=STEPS):
    return make_trainer(
        Poisson1D(), sampler, steps=steps, schedule=Every(PERIOD), eval_every=20, lr=1e-2
    )


def resumed(make, until=30):
    """A trainer of ``make()`` fitted to step ``until`` and checkpointed (torch.save /
    torch.load(weights_only=True)), and a fresh one restored from it and fitted to the end;
    returns both and the second's result."""
    first = _trainer(make())
    first.fit(until=until)
    buf = io.BytesIO()
    torch.save(first.state_dict(), buf)
    buf.seek(0)
    second = _trainer(make())
    second.load_state_dict(torch.load(buf, weights_only=True))
    return first, second, second.fit()


@pytest.mark.parametrize("name", list(CASES))
def test_costs_growth_and_exact_resume(name):
    make, evals, added = CASES[name]
    full = _trainer(make())
    result = full.fit()
    assert result.resamples == 3
    if evals is None:  # PACMANN: N * n_moves per resample, N the size at that resample
        evals = N * 3
    assert result.residual_evals == 3 * evals
    assert result.n_points == N + 3 * added

    _, second, again = resumed(make)
    assert again.l2_relative_error == result.l2_relative_error
    assert torch.equal(second.state.points, full.state.points)


def test_importance_weights_reach_the_loss():
    tr = _trainer(RAD(n_candidates=300, importance_weights=True), steps=16)
    tr.fit()
    assert tr.state.weights is not None and tr.state.weights.shape == (N,)
    assert float(tr.state.weights.double().mean()) == pytest.approx(1.0, rel=1e-5)


def test_glf_diagnostics_reach_the_run_directory_and_the_check_is_counted(tmp_path):
    """The per-resample diagnostics land in each resample line of metrics.jsonl, and the
    surrogate check's exact scoring is counted in the trainer's residual evaluations."""
    import json

    from glfpinn.runs import RunDirectory
    from glfpinn.samplers import GLF

    trainer = make_trainer(
        Poisson1D(),
        GLF(alpha_scale="relative", adaptive_M=True, diagnose_surrogate=20),
        steps=STEPS,
        schedule=Every(PERIOD),
        eval_every=20,
        lr=1e-2,
        callbacks=[RunDirectory(tmp_path)],
    )
    result = trainer.fit()
    assert result.residual_evals == 3 * 20
    lines = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    resamples = [line for line in lines if line["event"] == "resample"]
    assert len(resamples) == 3
    for line in resamples:
        assert line["residual_evals"] == 20 and line["surrogate_checked"] == 20
        for key in ("h_rel_median", "moved_fraction", "distinct_anchors", "nn_distance_rel"):
            assert key in line and line[key] is not None
