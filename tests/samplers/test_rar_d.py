import pytest
import torch

from glfpinn.domains import Box
from glfpinn.samplers import RARD
from glfpinn.testing import make_context


def test_adds_exactly_n_add_points_and_keeps_the_old_ones_in_front():
    ctx, fn = make_context(n=300)
    out = RARD(n_candidates=4000, n_add=7).resample(ctx, {})
    assert out.points.shape == (307, 2)
    assert torch.equal(out.points[:300], ctx.points)
    assert bool(ctx.domain.contains(out.points[300:]).all())
    assert fn.evals == 4000  # one scoring pass over the candidates, nothing else
    assert out.info["n_added"] == 7


def test_default_growth_is_one_two_hundredth_of_the_initial_size():
    ctx, _ = make_context(n=1000)
    sampler = RARD(n_candidates=2000)
    state = sampler.init_state(ctx.points)
    assert sampler.resample(ctx, state).points.shape[0] == 1005
    # The rate comes from the initial size the state records, not from the current size.
    assert sampler.resample(ctx, {"n_initial": 400}).points.shape[0] == 1002
    # At least one point per resample, however small the set.
    small, _ = make_context(n=50)
    assert sampler.resample(small, sampler.init_state(small.points)).points.shape[0] == 51


def test_added_points_follow_the_residual_squared():
    """k=2, c=0 on a bump: the added points crowd the peak. Of 400 draws from 20,000 candidates,
    far more than the disc's area share (~7.9%) land within radius sqrt(0.1) of the peak."""
    ctx, _ = make_context(n=100)
    out = RARD(n_candidates=20_000, n_add=400).resample(ctx, {})
    new = out.points[100:]
    near = float((((new - 0.25) ** 2).sum(1) < 0.1).float().mean())
    assert near > 5 * (torch.pi * 0.1 / 4)


def test_n_add_beyond_the_candidate_set_is_refused():
    ctx, _ = make_context(n=100)
    with pytest.raises(ValueError, match="n_add=50 exceeds n_candidates=10"):
        RARD(n_candidates=10, n_add=50).resample(ctx, {})


def test_it_declares_a_growing_population():
    assert RARD.conserves_population is False


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"k": -1.0}, "k=-1"),
        ({"c": -1.0}, "c=-1"),
        ({"n_candidates": 0}, "n_candidates=0"),
        ({"n_add": 0}, "n_add=0"),
    ],
)
def test_bad_hyperparameters_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RARD(**kwargs)


def test_zero_residuals_still_add_uniform_points():
    ctx, _ = make_context(Box.cube(3), n=64, residual=lambda x: 0 * x.sum(1))
    out = RARD(n_candidates=500, n_add=10).resample(ctx, {})
    assert out.points.shape == (74, 3) and bool(torch.isfinite(out.points).all())
