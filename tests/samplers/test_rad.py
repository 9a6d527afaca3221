import pytest

from glfpinn.domains import Box
from glfpinn.samplers import RAD
from tests.helpers import make_context


def test_rad_scores_every_candidate():
    ctx, fn = make_context(n=100)
    RAD(n_candidates=5000).resample(ctx, {})
    assert fn.evals == 5000


def test_rad_with_k0_selects_uniformly():
    """k = 0 makes every weight equal: the drawn set is a uniform sample. Compare the mean
    number of points in the quarter [0, 1]^2 of [-1, 1]^2 with its expectation."""
    box = Box.cube(2, -1.0, 1.0)
    fracs = []
    for seed in range(10):
        ctx, _ = make_context(box, n=2000, seed=seed)
        pts = RAD(k=0.0, n_candidates=10_000).resample(ctx, {}).points
        fracs.append(float(((pts > 0).all(dim=1)).float().mean()))
    mean = sum(fracs) / len(fracs)
    assert mean == pytest.approx(0.25, abs=0.01)  # sd of the mean ~ 0.003


def test_rad_concentrates_where_the_residual_is_large():
    ctx, _ = make_context(n=2000)
    pts = RAD(k=2.0, c=0.0, n_candidates=20_000).resample(ctx, {}).points
    near_peak = float((((pts - 0.25) ** 2).sum(1) < 0.1).float().mean())
    area_fraction = 3.14159 * 0.1 / 4
    assert near_peak > 3 * area_fraction
