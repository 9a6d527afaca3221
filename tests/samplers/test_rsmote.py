import math

import pytest
import torch

from glfpinn import Scorer
from glfpinn.domains import Box, LShape
from glfpinn.samplers import RSmote, SamplingContext
from glfpinn.testing import bump, make_context


def _segment_distance(p, a, b):
    """Distance from each point p to the segment [a, b] (all float64, broadcast over rows)."""
    ab = b - a
    t = ((p - a) * ab).sum(-1) / (ab * ab).sum(-1).clamp(min=1e-300)
    t = t.clamp(0, 1)
    return torch.linalg.vector_norm(p - (a + t.unsqueeze(-1) * ab), dim=-1)


def test_synthesize_interpolates_between_a_point_and_one_of_its_k_nearest():
    gen = torch.Generator().manual_seed(0)
    high = torch.rand(40, 3, generator=gen, dtype=torch.float64)
    sampler = RSmote(k_neighbors=4)
    pts, base, nb = sampler.synthesize(high, 500, gen)
    dist = torch.cdist(high, high)
    dist.fill_diagonal_(math.inf)
    knn = torch.topk(dist, 4, dim=1, largest=False).indices
    assert bool((knn[base] == nb[:, None]).any(1).all())  # nb is among base's 4 nearest
    assert bool((base != nb).all())
    # pts = x_i + lambda (x_nn - x_i) with lambda in [0, 1]: recover lambda coordinate-wise.
    lam = (pts - high[base]) / (high[nb] - high[base])
    assert torch.allclose(lam, lam[:, :1].expand_as(lam), atol=1e-9)  # collinear
    assert float(lam.min()) >= 0 and float(lam.max()) <= 1
    # lambda ~ U(0, 1): its mean over 500 draws is 0.5 within 4 sd (sd = 0.29 / sqrt(500)).
    assert float(lam[:, 0].mean()) == pytest.approx(0.5, abs=4 * 0.29 / math.sqrt(500))


def test_synthetic_points_lie_on_segments_between_high_residual_neighbours():
    ctx, fn = make_context(n=200, dtype=torch.float64)
    sampler = RSmote(top_fraction=0.1, k_neighbors=3, replace_fraction=0.3)
    n_top, n_syn, n_uni = sampler.counts(200)
    assert (n_top, n_syn, n_uni) == (20, 60, 0)
    out = sampler.resample(ctx, {})
    order = torch.sort(ctx.residuals, descending=True, stable=True).indices
    high = ctx.points[order[:n_top]]
    syn = out.points[200 - n_syn :]
    # Every k-nearest-neighbour segment of the top set; each synthetic point must lie on one.
    dist = torch.cdist(high, high)
    dist.fill_diagonal_(math.inf)
    knn = torch.topk(dist, 3, dim=1, largest=False).indices
    a = high.repeat_interleave(3, dim=0)
    b = high[knn.reshape(-1)]
    gap = _segment_distance(syn[:, None, :], a[None], b[None]).min(dim=1).values
    assert float(gap.max()) < 1e-12
    assert fn.evals == 0


def test_keeps_the_high_set_and_releases_the_lowest_points():
    ctx, _ = make_context(n=100)
    sampler = RSmote(top_fraction=0.3, replace_fraction=0.25)
    out = sampler.resample(ctx, {})
    order = torch.sort(ctx.residuals, descending=True, stable=True).indices
    kept = ctx.points[torch.sort(order[:75]).values]
    assert out.points.shape == (100, 2)
    assert torch.equal(out.points[:75], kept)  # everything but the 25 lowest, in old order


def test_uniform_fraction_splits_the_replacements():
    assert RSmote(replace_fraction=0.4, uniform_fraction=0.25).counts(100) == (20, 30, 10)
    assert RSmote(replace_fraction=0.9, top_fraction=0.1).counts(100) == (10, 90, 0)
    assert RSmote(replace_fraction=0.5).counts(1) == (1, 0, 0)  # too few points to replace


def test_segments_crossing_the_l_shapes_hole_are_reflected_inside():
    """Two high-residual points on either side of the removed quadrant: about half the segment
    between (0.6, 0.1) and (-0.1, -0.6) lies in the hole, so some synthetic points must have
    been brought back, and all end inside."""
    lshape = LShape()
    gen = torch.Generator().manual_seed(1)
    pts = lshape.sample(50, gen, dtype=torch.float64)
    pts[0] = torch.tensor([0.6, 0.1], dtype=torch.float64)
    pts[1] = torch.tensor([-0.1, -0.6], dtype=torch.float64)
    r = torch.full((50,), 0.01, dtype=torch.float64)
    r[:2] = 1.0
    ctx = SamplingContext(pts, r, lshape, 0, gen, residual_fn=Scorer(bump))
    out = RSmote(top_fraction=0.04, k_neighbors=1, replace_fraction=0.9).resample(ctx, {})
    assert bool(lshape.contains(out.points).all())
    assert out.info["reflected_fraction"] > 0.2


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"top_fraction": 0.0}, "top_fraction=0.0"),
        ({"top_fraction": 1.5}, "top_fraction=1.5"),
        ({"replace_fraction": 1.0}, "replace_fraction=1.0"),
        ({"uniform_fraction": -0.1}, "uniform"),
        ({"k_neighbors": 0}, "k_neighbors=0"),
        ({"top_fraction": 0.6, "replace_fraction": 0.5}, "exceeds 1"),
    ],
)
def test_bad_hyperparameters_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RSmote(**kwargs)


def test_box_results_stay_inside_even_from_boundary_points():
    """Points on the box's faces interpolate to points on or inside the faces (no rounding
    escape is left unreflected)."""
    box = Box.cube(3, -1.0, 2.0)
    gen = torch.Generator().manual_seed(0)
    pts = box.sample(64, gen)
    pts[:, 0] = torch.where(pts[:, 0] > 0.5, 2.0, -1.0)  # every point on a face
    ctx, _ = make_context(box, points=pts)
    out = RSmote(top_fraction=0.5, replace_fraction=0.5).resample(ctx, {})
    assert bool(box.contains(out.points).all())
