"""Importance weights 1/(N p): the weighted loss estimates the uniform-density loss."""

import math

import pytest
import torch

from glfpinn.domains import Box
from glfpinn.samplers import GLF, RAD
from glfpinn.samplers.select import importance_weights, inclusion_scale, rad_weights, weighted_draw
from glfpinn.testing import bump, make_context


def test_weights_are_inverse_to_the_draw_weights_with_mean_one():
    w = torch.tensor([1.0, 2.0, 4.0, 8.0])
    iw = importance_weights(w, torch.tensor([0, 2, 3]), replace=True)
    assert float(iw.mean()) == pytest.approx(1.0)
    assert torch.allclose(iw * w[[0, 2, 3]].double(), (iw * w[[0, 2, 3]].double())[0].expand(3))


def test_weights_stay_finite_over_any_dynamic_range():
    w = rad_weights(torch.tensor([1e-30, 1.0, 1e30], dtype=torch.float64), 3.0, 0.0)
    for replace in (True, False):
        iw = importance_weights(w, torch.tensor([0, 2]), replace=replace)
        assert bool(torch.isfinite(iw).all()) and float(iw.mean()) == pytest.approx(1.0)


def test_inclusion_probabilities_without_replacement():
    """Draw 60 of 200 items with weights 1..100, 4,000 times: each item's inclusion frequency
    matches pi = 1 - exp(-t w) within 4 binomial sd (the largest of 200 deviations of pure noise
    is ~3 sd), whereas the naive N p is off by more than that for the heaviest items (their pi
    saturates below N p)."""
    w = torch.linspace(1, 100, 200, dtype=torch.float64)
    n, reps = 60, 4000
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(200, dtype=torch.float64)
    for _ in range(reps):
        counts[weighted_draw(w, n, gen)] += 1
    freq = counts / reps
    pi = -torch.expm1(-inclusion_scale(w, n) * w)
    assert float(pi.sum()) == pytest.approx(n)
    sd = torch.sqrt(pi * (1 - pi) / reps)
    assert float(((freq - pi) / sd).abs().max()) < 4
    naive = n * w / w.sum()
    assert float(((freq - naive) / sd).abs().max()) > 8  # measured: 9.5
    assert inclusion_scale(torch.tensor([1.0, 0.0, 2.0]), 2) == math.inf  # everything drawn


@pytest.mark.parametrize("replace", [True, False])
def test_rad_weighted_mean_is_unbiased_for_the_uniform_mean(replace):
    """f = bump on [-1, 1]^2, RAD with k=1, c=1 draws 500 of 20,000 candidates, crowding the
    peak. Over 40 seeds, the self-normalised weighted mean of f matches f's uniform mean within
    4 standard errors of the 40-seed average (its O(1/N) bias is far below that), while the
    plain mean over the drawn points is biased upward by hundreds of standard errors. Without
    replacement the heaviest points' inclusion probabilities saturate (N p_max ~ 0.33 here);
    plain 1/p weights were measured 5 standard errors low on this very test, the 1/pi weights
    pass it."""
    box = Box.cube(2, -1.0, 1.0)
    ref = box.sample(2_000_000, torch.Generator().manual_seed(123), dtype=torch.float64)
    truth = float(bump(ref).mean())  # MC error ~ 1e-4 relative: negligible here
    weighted, plain = [], []
    for seed in range(40):
        ctx, _ = make_context(box, n=500, seed=seed, dtype=torch.float64)
        out = RAD(n_candidates=20_000, replace=replace, importance_weights=True).resample(ctx, {})
        f = bump(out.points)
        weighted.append(float((out.weights * f).mean()))
        plain.append(float(f.mean()))
    weighted, plain = torch.tensor(weighted), torch.tensor(plain)
    se = float(weighted.std()) / math.sqrt(len(weighted))
    assert abs(float(weighted.mean()) - truth) < 4 * se
    se_plain = float(plain.std()) / math.sqrt(len(plain))
    assert float(plain.mean()) - truth > 20 * max(se, se_plain)


def test_weights_only_when_asked():
    ctx, _ = make_context(n=100)
    assert RAD(n_candidates=1000).resample(ctx, {}).weights is None
    assert GLF().resample(ctx, {}).weights is None
    out = GLF(importance_weights=True).resample(ctx, {})
    assert out.weights.shape == (100,) and out.weights.dtype == ctx.points.dtype
    assert float(out.weights.double().mean()) == pytest.approx(1.0, rel=1e-5)
    assert 0 < out.info["iw_ess"] <= 1
