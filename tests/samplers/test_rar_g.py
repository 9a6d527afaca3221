import pytest
import torch

from glfpinn.samplers import RARG
from glfpinn.testing import bump, make_context


def test_added_points_are_the_candidate_sets_top_residuals():
    """Replay the candidate draw from a copy of the generator: the added rows must be exactly
    the n_add candidates with the largest residuals."""
    ctx, fn = make_context(n=200)
    replay = torch.Generator().set_state(ctx.generator.get_state())
    out = RARG(n_candidates=3000, n_add=12).resample(ctx, {})
    cand = ctx.domain.sample(3000, replay, dtype=ctx.points.dtype)
    top = cand[torch.topk(bump(cand), 12).indices]
    added = out.points[200:]
    assert added.shape == (12, 2)
    assert torch.equal(torch.sort(added, dim=0).values, torch.sort(top, dim=0).values)
    # Every added residual is at least every residual left out.
    assert float(bump(added).min()) >= float(torch.topk(bump(cand), 13).values[-1])
    assert torch.equal(out.points[:200], ctx.points)
    assert fn.evals == 3000


def test_default_growth_is_one_two_hundredth_of_the_initial_size():
    ctx, _ = make_context(n=600)
    sampler = RARG(n_candidates=1000)
    assert sampler.resample(ctx, sampler.init_state(ctx.points)).points.shape[0] == 603


def test_it_declares_a_growing_population_and_refuses_bad_values():
    assert RARG.conserves_population is False
    with pytest.raises(ValueError, match="n_add=0"):
        RARG(n_add=0)
    with pytest.raises(ValueError, match="n_candidates=-5"):
        RARG(n_candidates=-5)
