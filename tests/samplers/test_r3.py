import pytest
import torch

from glfpinn.domains import Box
from glfpinn.samplers import R3
from glfpinn.testing import make_context


def test_keeps_exactly_the_above_mean_points_and_redraws_the_rest():
    ctx, fn = make_context(n=500)
    r = ctx.residuals
    above = r > r.mean()
    out = R3().resample(ctx, {})
    k = int(above.sum())
    assert 0 < k < 500
    assert out.points.shape == (500, 2)
    assert torch.equal(out.points[:k], ctx.points[above])  # retained, in their old order
    # The released slots hold new points: none of them is an old point.
    fresh = out.points[k:]
    assert float(torch.cdist(fresh, ctx.points).min()) > 0
    assert fn.evals == 0  # the free residuals suffice
    assert out.info["kept_fraction"] == pytest.approx(k / 500)


def test_retained_uses_the_mean_of_absolute_residuals():
    r = torch.tensor([-3.0, 1.0, 0.5, 0.5])  # |r| mean 1.25: only |-3| is above it
    assert R3().retained(r).tolist() == [True, False, False, False]


def test_equal_residuals_keep_nothing():
    ctx, _ = make_context(n=50, residual=lambda x: torch.ones(x.shape[0]) + 0 * x.sum(1))
    out = R3().resample(ctx, {})
    assert out.info["kept_fraction"] == 0.0
    assert float(torch.cdist(out.points, ctx.points).min()) > 0


def test_replacements_are_uniform():
    """With a residual that is large on the left half only, the replacements still cover the box
    uniformly: the share of them in the quarter x, y > 0 of [-1, 1]^2 is 1/4 (binomial sd for
    ~4,000 points: 0.007; tolerance 0.03 is more than 4 sd)."""
    box = Box.cube(2, -1.0, 1.0)
    ctx, _ = make_context(box, n=8000, residual=lambda x: (x[:, 0] < 0).to(x.dtype) + 0.1)
    out = R3().resample(ctx, {})
    k = int(R3().retained(ctx.residuals).sum())
    fresh = out.points[k:]
    assert fresh.shape[0] > 3000
    assert float((fresh > 0).all(1).float().mean()) == pytest.approx(0.25, abs=0.03)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method='grid'"):
        R3(method="grid")
