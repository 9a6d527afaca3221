import io

import pytest
import torch

from glfpinn.domains import Box
from glfpinn.samplers import PACMANN
from glfpinn.testing import bump, make_context


def _grad_norm(x):
    xg = x.detach().requires_grad_(True)
    (g,) = torch.autograd.grad((bump(xg) ** 2).sum(), xg)
    return torch.linalg.vector_norm(g, dim=1)


@pytest.mark.parametrize("optimizer", ["gd", "adam"])
def test_a_small_move_increases_the_squared_residual(optimizer):
    """One step of 1e-3 up the gradient of r^2: to first order r^2 grows by 1e-3 |grad| (gd) or
    1e-3 |grad|_1 (Adam's first step is the gradient's sign), while the second-order term is
    at most ~1e-6 * |Hessian| ~ 1e-4 smaller. Points with a gradient too small to move r^2 in
    float64 are left out."""
    ctx, _ = make_context(n=400, dtype=torch.float64)
    out = PACMANN(step_size=1e-3, n_moves=1, optimizer=optimizer).resample(ctx, {})
    before, after = bump(ctx.points) ** 2, bump(out.points) ** 2
    moving = _grad_norm(ctx.points) > 1e-6
    assert int(moving.sum()) > 100
    assert bool((after[moving] > before[moving]).all())
    assert bool((after >= before - 1e-15).all())


def test_more_moves_climb_further():
    ctx, _ = make_context(n=300, dtype=torch.float64)
    short = PACMANN(step_size=1e-2, n_moves=1, optimizer="gd").resample(ctx, {}).points
    long = PACMANN(step_size=1e-2, n_moves=10, optimizer="gd").resample(ctx, {}).points
    assert float(bump(long).mean()) > float(bump(short).mean()) > float(bump(ctx.points).mean())


def test_gd_moves_each_point_the_step_size_and_adam_each_coordinate():
    box = Box.cube(2, -10.0, 10.0)  # wide: no point reaches the boundary
    pts = torch.tensor([[0.1, 0.3], [0.4, 0.0], [0.2, 0.5]], dtype=torch.float64)
    ctx, _ = make_context(box, points=pts)
    gd = PACMANN(step_size=0.01, n_moves=1, optimizer="gd").resample(ctx, {}).points
    step = torch.linalg.vector_norm(gd - pts, dim=1)
    assert torch.allclose(step, torch.full((3,), 0.01, dtype=torch.float64))
    adam = PACMANN(step_size=0.01, n_moves=1, optimizer="adam").resample(ctx, {}).points
    # Adam's bias-corrected first step is step_size * g / (|g| + 1e-7) per coordinate.
    assert torch.allclose(
        (adam - pts).abs(), torch.full((3, 2), 0.01, dtype=torch.float64), rtol=1e-4
    )


def test_costs_n_times_n_moves_residual_gradient_evaluations():
    ctx, fn = make_context(n=120)
    PACMANN(n_moves=7).resample(ctx, {})
    assert fn.evals == 120 * 7


def test_points_that_leave_are_reflected_or_replaced():
    """r = x + 2 grows towards the face x = 1, so steps of 0.7 push most points through it."""
    ctx, _ = make_context(Box.cube(2, -1.0, 1.0), n=200, residual=lambda x: x[:, 0] + 2)
    for boundary in ("reflect", "uniform"):
        out = PACMANN(step_size=0.7, n_moves=5, optimizer="gd", boundary=boundary).resample(ctx, {})
        assert bool(ctx.domain.contains(out.points).all())
        assert out.info["escaped_fraction"] > 0


def test_moments_live_in_the_state_and_survive_a_round_trip():
    ctx, _ = make_context(n=64, dtype=torch.float64)
    sampler = PACMANN(step_size=1e-3, n_moves=3, keep_moments=True)
    state = sampler.init_state(ctx.points)
    assert state["t"] == 0 and state["m"].shape == (64, 2)
    out = sampler.resample(ctx, state)
    assert out.state["t"] == 3 and float(out.state["v"].abs().sum()) > 0
    buf = io.BytesIO()
    torch.save(out.state, buf)
    buf.seek(0)
    restored = torch.load(buf, weights_only=True)
    ctx2, _ = make_context(n=64, points=out.points, dtype=torch.float64)
    a = sampler.resample(ctx2, out.state)
    b = sampler.resample(ctx2, restored)
    assert torch.equal(a.points, b.points) and a.state["t"] == 6
    # Carrying the moments changes the moves compared with restarting them.
    fresh = sampler.resample(ctx2, sampler.init_state(out.points))
    assert not torch.equal(a.points, fresh.points)


def test_default_restarts_the_moments_like_the_authors():
    ctx, _ = make_context(n=32)
    sampler = PACMANN()
    assert sampler.init_state(ctx.points) == {}
    assert sampler.resample(ctx, {}).state == {}


def test_moments_restart_when_the_number_of_points_changes():
    sampler = PACMANN(step_size=1e-3, n_moves=2, keep_moments=True)
    ctx, _ = make_context(n=50)
    stale = sampler.init_state(torch.zeros(10, 2))
    assert sampler.resample(ctx, stale).state["t"] == 2


def test_needs_a_residual_gradient():
    ctx, fn = make_context(n=10)
    ctx = type(ctx)(ctx.points, ctx.residuals, ctx.domain, 0, ctx.generator, residual_fn=fn)
    with pytest.raises(ValueError, match="residual_grad_fn"):
        PACMANN().resample(ctx, {})


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"step_size": 0.0}, "step_size=0.0"),
        ({"n_moves": 0}, "n_moves=0"),
        ({"optimizer": "lbfgs"}, "optimizer='lbfgs'"),
        ({"boundary": "wrap"}, "boundary='wrap'"),
    ],
)
def test_bad_hyperparameters_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PACMANN(**kwargs)
