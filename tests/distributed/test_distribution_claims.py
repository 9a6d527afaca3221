"""The distribution claims of docs/samplers.md ("On K ranks") for the samplers that resample
per rank, checked statistically on 2 ranks with fixed seeds. (The whole-set samplers make the
single-process draw itself: tests/distributed/test_sharding.py.)

- uniform-resample: the union of the ranks' shares is N i.i.d. uniform points, the ranks'
  streams independent of each other; with Sobol points each share is a low-discrepancy set
  but the union is not one (its discrepancy is that of two sets of N/2, not one of N).
- GLF: within a rank, anchor i's candidates are drawn with probability w_i / sum of the rank's
  w (the global RAD weights); each rank draws exactly N/K; so where one rank's anchors are
  hotter, the union differs from one process's draw, which gives that rank's region its share
  W_r / W of the points on average.

Tolerances: p-values above 1e-3 for the goodness-of-fit tests (a correct sampler fails one in a
thousand seeds; these seeds are fixed, so the outcome is too), and 5 standard errors for means.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import Poisson1D
from ranks import run_ranks
from scipy import stats
from scipy.stats import qmc

from glfpinn import GLF, Evaluator, UniformResample
from glfpinn.samplers.base import SamplingContext
from glfpinn.training import make_trainer

N = 64  # uniform-resample: 32 points per rank
RESAMPLES = 200
#: GLF: 4 anchors per rank, well apart; rank 0's hot, rank 1's cold
ANCHORS = torch.tensor([[0.05], [0.15], [0.25], [0.35], [0.55], [0.65], [0.75], [0.85]])
RESIDUALS = torch.tensor([10.0, 5.0, 2.0, 1.0, 0.1, 0.2, 0.1, 0.4])
GLF_DRAWS = 400
QMC_RESAMPLES = 50


def _glf() -> GLF:
    # candidates stay within ~1e-3 of their anchor (alpha / (r + eps)), so each drawn point
    # names its anchor; with replacement, every draw is an independent categorical
    return GLF(M=3, alpha=1e-5, replace=True)


def _anchor_counts(points: torch.Tensor) -> np.ndarray:
    nearest = torch.cdist(points.double(), ANCHORS.double()).argmin(dim=1)
    return np.bincount(nearest.numpy(), minlength=len(ANCHORS))


def _glf_counts(group, rank_rows: slice, seed: int) -> np.ndarray:
    """Anchor counts over GLF_DRAWS resamples of this rank's anchors (group None: one process
    on every anchor)."""
    gen = torch.Generator().manual_seed(seed)
    counts = np.zeros(len(ANCHORS), dtype=np.int64)
    for _ in range(GLF_DRAWS):
        ctx = SamplingContext(
            points=ANCHORS[rank_rows],
            residuals=RESIDUALS[rank_rows],
            domain=Poisson1D().domain,
            step=0,
            generator=gen,
            group=group,
        )
        counts += _anchor_counts(_glf().resample(ctx, {}).points)
    return counts


def _resampled_sets(method: str, group=None, resamples: int = RESAMPLES) -> torch.Tensor:
    """``resamples`` draws of uniform-resample(method), the whole set each time."""
    trainer = make_trainer(
        Poisson1D(),
        UniformResample(method),
        steps=1,
        n_points=N,
        hidden=(4,),
        compile=False,
        evaluator=Evaluator(n_validation=8),
        group=group,
    )
    sets = []
    for _ in range(resamples):
        trainer.resample()
        sets.append(trainer.training_set()[0].clone())
    return torch.stack(sets)


def _on_rank(group) -> dict:
    half = slice(4 * group.rank, 4 * (group.rank + 1))
    return {
        "uniform": _resampled_sets("uniform", group),
        "sobol": _resampled_sets("sobol", group, resamples=QMC_RESAMPLES),
        "glf": _glf_counts(group, half, seed=11 + group.rank),
    }


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return run_ranks(_on_rank, tmp_path_factory.mktemp("ranks"))


def test_uniform_resample_union_is_iid_uniform(ranks):
    sets = ranks[0]["uniform"]  # (RESAMPLES, N, 1), rank 0's rows first
    assert torch.equal(sets, ranks[1]["uniform"])  # the joined set, the same on both ranks
    pooled = sets.reshape(-1).double().numpy()
    assert stats.kstest(pooled, "uniform").pvalue > 1e-3
    # the ranks' streams: rank 0's i-th point uncorrelated with rank 1's i-th point
    a, b = sets[:, : N // 2, 0].reshape(-1), sets[:, N // 2 :, 0].reshape(-1)
    corr = float(np.corrcoef(a.numpy(), b.numpy())[0, 1])
    assert abs(corr) < 5 / math.sqrt(a.numel())
    assert not bool((a == b).any())


def test_sobol_per_rank_is_uniform_but_not_one_low_discrepancy_set(ranks):
    union = ranks[0]["sobol"].double().numpy()  # (QMC_RESAMPLES, N, 1)
    assert stats.kstest(union.reshape(-1), "uniform").pvalue > 1e-3
    single = _resampled_sets("sobol", resamples=QMC_RESAMPLES).double().numpy()
    two = np.array([qmc.discrepancy(u) for u in union])
    one = np.array([qmc.discrepancy(u) for u in single])
    halves = np.mean([qmc.discrepancy(u[: N // 2]) for u in union])  # rank 0's own set
    # two scrambled sets of N/2 side by side: worse than one set of N (by 5 standard errors
    # of the difference of the means), yet each half is still a low-discrepancy set of its
    # own size (better than i.i.d. points: about 1/(12 n))
    se = math.sqrt(two.var(ddof=1) / two.size + one.var(ddof=1) / one.size)
    assert two.mean() - one.mean() > 5 * se
    assert halves < 1 / (12 * (N // 2))


def test_glf_draws_within_a_rank_follow_the_weights(ranks):
    for rank, counts in enumerate(rank["glf"] for rank in ranks):
        mine = slice(4 * rank, 4 * (rank + 1))
        assert counts.sum() == counts[mine].sum() == GLF_DRAWS * 4  # exactly N/K, own anchors
        r = RESIDUALS[mine].double().numpy()
        w = r / RESIDUALS.double().mean().item() + 1.0  # RAD weights, global normaliser
        expected = counts[mine].sum() * w / w.sum()
        assert stats.chisquare(counts[mine], expected).pvalue > 1e-3


def test_glf_on_two_ranks_gives_each_rank_its_quota_where_one_process_does_not(ranks):
    single = _glf_counts(None, slice(None), seed=11)
    w = (RESIDUALS / RESIDUALS.mean() + 1.0).double().numpy()
    hot_share = w[:4].sum() / w.sum()  # about 0.745
    n = single.sum()
    got = single[:4].sum() / n
    assert abs(got - hot_share) < 5 * math.sqrt(hot_share * (1 - hot_share) / n)
    two_ranks = ranks[0]["glf"] + ranks[1]["glf"]
    assert two_ranks[:4].sum() / two_ranks.sum() == 0.5
