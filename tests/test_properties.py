"""Property-based tests: random shapes, dtypes, extreme residuals and seeds thrown at every
sampler and domain. Whatever comes in, what comes out is finite and inside the domain."""

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glfpinn import Scorer, samplers
from glfpinn.domains import Box, LShape
from glfpinn.samplers.base import SamplingContext
from tests.helpers import ALL_SAMPLERS

# Small candidate sets keep each example fast; the property does not depend on their size.
SMALL = {
    "rad": {"n_candidates": 300},
    "rar-d": {"n_candidates": 300},
    "rar-g": {"n_candidates": 300},
    "pacmann": {"n_moves": 2},
}


@st.composite
def contexts(draw):
    if draw(st.booleans()):
        dim = draw(st.integers(1, 6))
        lo = draw(st.lists(st.floats(-100, 100), min_size=dim, max_size=dim))
        width = draw(st.lists(st.floats(1e-3, 100), min_size=dim, max_size=dim))
        domain = Box(lo, [a + w for a, w in zip(lo, width)])
    else:
        domain = LShape()
    dtype = draw(st.sampled_from([torch.float32, torch.float64]))
    n = draw(st.integers(8, 80))
    seed = draw(st.integers(0, 2**31 - 1))
    scale = draw(st.sampled_from([0.0, 1e-30, 1e-8, 1.0, 1e8, 1e30]))
    gen = torch.Generator().manual_seed(seed)
    points = domain.sample(n, gen, dtype=dtype)
    raw = torch.rand(n, generator=gen, dtype=torch.float64) * scale
    residuals = raw.to(dtype).clamp(max=torch.finfo(dtype).max)
    fn = Scorer(lambda x: scale * torch.sigmoid(x.sum(dim=1)))
    return SamplingContext(
        points, residuals, domain, 10, gen, residual_fn=fn, residual_grad_fn=fn.with_grad
    )


@pytest.mark.parametrize("name", ALL_SAMPLERS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ctx=contexts())
def test_any_input_gives_finite_points_inside_the_domain(name, ctx):
    sampler = samplers.get(name, **SMALL.get(name, {}))
    out = sampler.resample(ctx, sampler.init_state(ctx.points))
    assert out.points.dtype == ctx.points.dtype
    assert out.points.shape[1] == ctx.domain.dim and out.points.shape[0] >= ctx.n
    assert bool(torch.isfinite(out.points).all())
    assert bool(ctx.domain.contains(out.points).all())
    if out.weights is not None:
        assert bool(torch.isfinite(out.weights).all())


@settings(max_examples=50, deadline=None)
@given(
    dim=st.integers(1, 8),
    n=st.integers(1, 500),
    seed=st.integers(0, 2**31 - 1),
    method=st.sampled_from(["uniform", "sobol", "halton", "lhs"]),
)
def test_domain_sampling_any_size_and_method(dim, n, seed, method):
    box = Box.cube(dim, -2.0, 3.0)
    x = box.sample(n, torch.Generator().manual_seed(seed), method=method, dtype=torch.float64)
    assert x.shape == (n, dim) and bool(box.contains(x).all())
    b = box.sample_boundary(n, torch.Generator().manual_seed(seed), dtype=torch.float64)
    assert b.shape == (n, dim) and bool(box.contains(b).all())
