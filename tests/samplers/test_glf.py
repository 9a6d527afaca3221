import pytest
import torch

from glfpinn.domains import Box
from glfpinn.samplers import GLF
from tests.helpers import make_context


def _spread_test_context(n: int = 400):
    """Half the anchors with residual 1, half with residual 0.01, all at the box's centre."""
    box = Box.cube(2, -10.0, 10.0)
    ctx, fn = make_context(box, n=n)
    points = torch.zeros(n, 2)
    residuals = torch.cat([torch.ones(n // 2), torch.full((n // 2,), 0.01)])
    gen = torch.Generator().manual_seed(0)
    return type(ctx)(points, residuals, box, 0, gen, residual_fn=fn), fn


def test_spread_is_inversely_proportional_to_the_residual():
    ctx, _ = _spread_test_context()
    sampler = GLF(M=50, alpha=1e-2, eps=1e-12)
    cand = sampler.candidates(ctx, sampler.scales(ctx.residuals, ctx)).view(-1, 50, 2)
    std_hard = cand[:200].std().item()  # residual 1 -> h = 0.01
    std_easy = cand[200:].std().item()  # residual 0.01 -> h = 1
    # 20,000 normal draws per group: the sample std is within 1% of h with overwhelming odds.
    assert std_hard == pytest.approx(0.01, rel=0.03)
    assert std_easy == pytest.approx(1.0, rel=0.03)


def test_h_is_capped_by_the_domain_diameter_and_by_h_max():
    ctx, _ = make_context(Box.cube(2), residual=lambda x: torch.zeros(x.shape[0]))
    assert float(GLF(alpha=1.0).scales(ctx.residuals, ctx).max()) == pytest.approx(2**0.5)
    assert float(GLF(alpha=1.0, h_max=0.1).scales(ctx.residuals, ctx).max()) == pytest.approx(0.1)


def test_default_alpha_follows_the_paper_by_dimension():
    assert GLF().alpha_for(2) == 1e-4 and GLF().alpha_for(11) == 1e-3
    assert GLF(alpha=5e-3).alpha_for(2) == 5e-3


def test_glf_needs_no_residual_evaluation_and_glfd_scores_every_candidate():
    ctx, fn = make_context(n=300)
    GLF(M=3).resample(ctx, {})
    assert fn.evals == 0
    GLF(M=3, surrogate="exact").resample(ctx, {})
    assert fn.evals == 900


def test_selection_frequencies_follow_the_inherited_weights():
    """Anchors with residual 3 vs 1 and k=1, c=0: drawing one point with replacement, each
    candidate of a hard anchor is chosen 3x as often."""
    n = 100
    box = Box.cube(2, -1.0, 1.0)
    ctx, fn = make_context(box, n=n)
    residuals = torch.cat([torch.full((50,), 3.0), torch.ones(50)])
    gen = torch.Generator().manual_seed(0)
    ctx = type(ctx)(ctx.points, residuals, box, 0, gen, residual_fn=fn)
    sampler = GLF(M=3, alpha=1e-3, k=1.0, c=0.0, replace=True)
    hits_hard = 0
    trials = 400
    for _ in range(trials):
        new = sampler.resample(ctx, {}).points  # n draws with replacement
        # A drawn candidate comes from a hard anchor iff it is nearer a hard anchor.
        nearest = torch.cdist(new, ctx.points).argmin(dim=1)
        hits_hard += int((nearest < 50).sum())
    frac = hits_hard / (trials * n)
    assert frac == pytest.approx(0.75, abs=0.01)  # sd = sqrt(.75*.25/40000) = 0.002


def test_pool_with_anchors_can_keep_anchors():
    ctx, _ = make_context(n=200)
    out = GLF(pool="candidates+anchors", alpha=1e-4).resample(ctx, {})
    kept = (torch.cdist(out.points, ctx.points).min(dim=1).values == 0).float().mean()
    assert 0.05 < float(kept) < 0.6  # a quarter of the pool are anchors


def test_idw_surrogate_is_exact_at_anchors_and_between_their_values():
    ctx, fn = make_context(n=200)
    sampler = GLF(surrogate="idw", neighbors=4)
    from glfpinn.samplers.glf import _idw

    vals = ctx.residuals
    at_anchors = _idw(ctx.points, vals, ctx.points, 4)
    assert torch.allclose(at_anchors, vals)
    q = ctx.domain.sample(500, torch.Generator().manual_seed(3))
    est = _idw(ctx.points, vals, q, 4)
    assert (
        float(est.min()) >= float(vals.min()) - 1e-7
        and float(est.max()) <= float(vals.max()) + 1e-7
    )
    sampler.resample(ctx, {})
    assert fn.evals == 0


def test_candidates_are_reflected_into_the_domain():
    ctx, _ = make_context(n=300, residual=lambda x: torch.full((x.shape[0],), 1e-9))
    out = GLF(alpha=1.0, h_max=50.0).resample(ctx, {})
    assert bool(ctx.domain.contains(out.points).all())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"M": 0}, "M=0"),
        ({"alpha": -1.0}, "alpha"),
        ({"eps": 0.0}, "eps"),
        ({"k": -1.0}, "k=-1"),
        ({"c": -0.5}, "c=-0.5"),
        ({"surrogate": "magic"}, "surrogate"),
        ({"pool": "all"}, "pool"),
    ],
)
def test_bad_hyperparameters_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLF(**kwargs)


def test_repr_shows_the_hyperparameters():
    assert repr(GLF(M=5)).startswith("GLF(M=5, alpha=None")
