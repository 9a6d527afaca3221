"""A sampler that draws from the whole set makes, on 2 ranks, the single-process draw: the
same points at every resample, hence the same run (to float64 reassociation), with the scoring
of new points shared out between the ranks.

This is the strongest form of "the K-rank draw has the single-process distribution": the
draws are the same draws, from the same stream, over the same residuals. N is odd and RAR-D
grows the set, so the ranks' shares differ in size and the loss's K n_r / N scaling is
exercised too.
"""

from __future__ import annotations

import pytest
import torch
from ranks import poisson_trainer, run_ranks

from glfpinn import (
    GLF,
    PACMANN,
    R3,
    RAD,
    RARD,
    RARG,
    Callback,
    Mix,
    RSmote,
    Stage,
    Trainer,
)

N = 21  # odd: one rank holds 11 points, the other 10

SAMPLERS = {
    "rad": lambda: RAD(n_candidates=300),
    "rad-iw": lambda: RAD(n_candidates=300, importance_weights=True),
    "rar-d": lambda: RARD(n_candidates=300, n_add=3),
    "rar-g": lambda: RARG(n_candidates=300, n_add=2),
    "r3": R3,
    "rsmote": lambda: RSmote(k_neighbors=3),
    "pacmann": lambda: PACMANN(n_moves=3),
    "glf-adaptive-m": lambda: GLF(adaptive_M=True),
    "glf-scaled-idw": lambda: GLF(alpha_scale="relative", surrogate="idw"),
    "mix": lambda: Mix([(RAD(n_candidates=200), 0.5), (R3(), 0.5)]),
}


def _trainer(name: str, group=None) -> Trainer:
    plan = [Stage("adam", 7, lr=1e-2)]
    return poisson_trainer(SAMPLERS[name](), group, plan=plan, n_points=N, seed=5)


def _run(trainer: Trainer) -> dict:
    """Every resample's whole point set, the final parameters and the result."""
    sets = []
    trainer.callbacks.append(_Sets(sets))
    result = trainer.fit().to_dict()
    points, _ = trainer.training_set()
    return {
        "sets": sets + [points],
        "params": [p.detach().clone() for p in trainer.model.parameters()],
        "result": result,
        "share": int(trainer.state.points.shape[0]),
    }


class _Sets(Callback):
    def __init__(self, sets: list) -> None:
        self.sets = sets

    def on_resample(self, trainer, info):
        points, _ = trainer.training_set()  # joined over the ranks (a collective)
        self.sets.append(points.clone())


def _on_rank(group) -> dict:
    return {name: _run(_trainer(name, group)) for name in SAMPLERS}


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_on_rank, tmp_path_factory.mktemp("ranks"))


@pytest.mark.parametrize("name", list(SAMPLERS))
def test_two_ranks_draw_the_single_process_points(ranks, name):
    single = _run(_trainer(name))
    for rank in ranks:
        got = rank[name]
        assert len(got["sets"]) == len(single["sets"]) == 4  # 3 resamples, then the end
        for a, b in zip(got["sets"], single["sets"], strict=True):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-12)
        for p, q in zip(got["params"], single["params"], strict=True):
            torch.testing.assert_close(p, q, rtol=1e-8, atol=1e-10)
        assert got["result"]["l2_relative_error"] == pytest.approx(
            single["result"]["l2_relative_error"], rel=1e-8
        )
        # the whole run's counts: each rank scored its slice of every batch of new points
        for key in ("n_points", "residual_evals", "train_residual_evals"):
            assert got["result"][key] == single["result"][key], key
    a, b = (rank[name] for rank in ranks)
    assert a["share"] + b["share"] == single["result"]["n_points"]
    assert abs(a["share"] - b["share"]) <= 1


def test_scoring_is_shared_out_between_the_ranks(ranks):
    # RAD scores 300 candidates per resample: 150 on each rank, not 300 on every rank
    assert ranks[0]["rad"]["result"]["residual_evals"] == 3 * 300
