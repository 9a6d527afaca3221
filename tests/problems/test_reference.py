"""Tests of the classical reference solvers (Allen-Cahn spectral/Radau, Burgers Cole-Hopf)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from glfpinn.problems.reference.allen_cahn import (
    allen_cahn_at_points,
    allen_cahn_reference,
    solve_allen_cahn,
)
from glfpinn.problems.reference.burgers import (
    MIN_NU,
    NU,
    burgers_convergence,
    burgers_exact,
    nodes_for,
)

# --------------------------------------------------------------------------- Allen-Cahn


def _ac_residual(nx: int, nt: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Central-difference residual of u_t - 0.001 u_xx + 5(u^3 - u) on an nx x nt grid."""
    x = np.linspace(-1.0, 1.0, nx)
    t = np.linspace(0.0, 1.0, nt)
    hx, ht = x[1] - x[0], t[1] - t[0]
    u = allen_cahn_reference(x, t)
    uc = u[1:-1, 1:-1]
    ut = (u[2:, 1:-1] - u[:-2, 1:-1]) / (2 * ht)
    diff = 0.001 * (u[1:-1, 2:] - 2 * uc + u[1:-1, :-2]) / hx**2
    react = 5.0 * (uc**3 - uc)
    scale = max(np.abs(ut).max(), np.abs(diff).max(), np.abs(react).max())
    return ut - diff + react, scale, x[1:-1], t[1:-1]


def test_allen_cahn_pde_residual_is_fd_truncation() -> None:
    # Grid h_x = 1e-3, h_t = 1e-3.  FD truncation: 0.001 h_x^2/12 u_xxxx + h_t^2/6 u_ttt.  The
    # interior layers are ~tanh(x/0.02), so u_xxxx ~ 1/0.02^4 ~ 6e6 and the spatial term is
    # ~5e-4 (times an O(1) shape factor), against term magnitudes ~2 (|u_t|, |0.001 u_xx|).
    # A relative bound of 2e-3 therefore allows the FD error but would flag any O(1e-3)
    # defect of the reference itself (measured: 6.8e-4).
    r_fine, scale, x, t = _ac_residual(2001, 1001)
    assert scale > 1.0
    assert np.abs(r_fine).max() / scale < 2e-3
    # The residual must be pure O(h^2) truncation: halving both steps divides it by ~4.
    # The corners (x = +-1, t = 0) are excluded: u0'' != 0 at x = +-1 violates the first
    # compatibility condition, so derivatives there are singular (a property of the PDE).
    r_coarse, _, xc, tc = _ac_residual(1001, 501)
    keep_f = (t[:, None] >= 0.05) | (np.abs(x[None, :]) <= 0.95)
    keep_c = (tc[:, None] >= 0.05) | (np.abs(xc[None, :]) <= 0.95)
    ratio = np.abs(r_coarse[keep_c]).max() / np.abs(r_fine[keep_f]).max()
    assert 3.5 < ratio < 4.5


def test_allen_cahn_initial_and_boundary() -> None:
    x = np.linspace(-1.0, 1.0, 301)
    t = np.linspace(0.0, 1.0, 51)
    u = allen_cahn_reference(x, t)
    assert u.shape == (51, 301) and u.dtype == np.float64
    np.testing.assert_allclose(u[0], x**2 * np.cos(np.pi * x), rtol=0, atol=1e-13)
    np.testing.assert_array_equal(u[:, 0], -1.0)
    np.testing.assert_array_equal(u[:, -1], -1.0)
    # The solution stays within the stable phases [-1, 1] (maximum principle).
    assert np.abs(u).max() <= 1.0 + 1e-8


def test_allen_cahn_solver_output() -> None:
    x, t, u = solve_allen_cahn()
    assert np.all(np.diff(x) > 0) and x[0] == -1.0 and x[-1] == 1.0
    np.testing.assert_array_equal(t, np.linspace(0.0, 1.0, 101))
    assert u.shape == (101, x.size) and u.dtype == np.float64
    # The solution is even in x (even initial data, symmetric equation and boundary data).
    np.testing.assert_allclose(u, u[:, ::-1], rtol=0, atol=1e-9)


def test_allen_cahn_spatial_convergence() -> None:
    # Measured relative L2 (201 x 101 grid) against n = 768: 256 -> 6.3e-6, 384 -> 2.7e-8,
    # 512 -> 1.3e-10.  Check the default (512) against 384: differences are the 384 error.
    x = np.linspace(-1.0, 1.0, 201)
    t = np.linspace(0.0, 1.0, 101)
    u512 = allen_cahn_reference(x, t, n_cheb=512)
    u384 = allen_cahn_reference(x, t, n_cheb=384)
    u256 = allen_cahn_reference(x, t, n_cheb=256)
    rel = lambda a, b: np.linalg.norm(a - b) / np.linalg.norm(b)  # noqa: E731
    assert rel(u384, u512) < 1e-7
    assert rel(u256, u512) < 1e-5


def test_allen_cahn_at_points_matches_grid() -> None:
    rng = np.random.default_rng(0)
    pts = np.column_stack([rng.uniform(-1, 1, 3000), rng.uniform(0, 1, 3000)])
    pts[:3] = [[-1.0, 0.3], [1.0, 0.7], [0.25, 0.0]]
    u = allen_cahn_at_points(pts)
    assert u.shape == (3000,)
    np.testing.assert_array_equal(u[:2], -1.0)
    assert abs(u[2] - 0.25**2 * np.cos(np.pi * 0.25)) < 1e-14
    # Same values as the tensor-grid evaluation.
    for i in range(3, 13):
        g = allen_cahn_reference(pts[i : i + 1, 0], pts[i : i + 1, 1])
        assert abs(g[0, 0] - u[i]) < 1e-13
    # Off-grid points (arbitrary t via dense output) agree with an independent coarser solve.
    np.testing.assert_allclose(u, allen_cahn_at_points(pts, n_cheb=384), rtol=0, atol=1e-6)
    with pytest.raises(ValueError):
        allen_cahn_at_points(np.array([[1.5, 0.5]]))
    with pytest.raises(ValueError):
        allen_cahn_at_points(np.array([[0.0, -0.1]]))


# --------------------------------------------------------------------------- Burgers


def _burgers_grid() -> np.ndarray:
    xx, tt = np.meshgrid(np.linspace(-1.0, 1.0, 256), np.arange(100) * 0.01)
    return np.column_stack([xx.ravel(), tt.ravel()])


def test_burgers_initial_and_boundary() -> None:
    x = np.linspace(-1.0, 1.0, 257)
    u0 = burgers_exact(np.column_stack([x, np.zeros_like(x)]))
    np.testing.assert_array_equal(u0, -np.sin(np.pi * x))
    # Tiny t: continuous in t at 0.
    ueps = burgers_exact(np.column_stack([x, np.full_like(x, 1e-10)]))
    np.testing.assert_allclose(ueps, -np.sin(np.pi * x), rtol=0, atol=1e-8)
    t = np.linspace(0.0, 1.0, 101)
    for xb in (-1.0, 1.0):
        ub = burgers_exact(np.column_stack([np.full_like(t, xb), t]))
        assert np.abs(ub).max() < 1e-12
    # Odd symmetry u(-x, t) = -u(x, t); u(0, t) = 0.
    pts = _burgers_grid()
    u = burgers_exact(pts).reshape(100, 256)
    np.testing.assert_allclose(u, -u[:, ::-1], rtol=0, atol=1e-12)


def test_burgers_pde_residual_is_fd_truncation() -> None:
    rng = np.random.default_rng(1)
    n = 2000
    x = rng.uniform(-0.999, 0.999, n)
    t = rng.uniform(0.02, 0.999, n)
    # 200 points inside the steep front (|x| < 0.02, t >= 0.4; max |u_x| ~ 152).
    x[:200] = rng.uniform(-0.02, 0.02, 200)
    t[:200] = rng.uniform(0.4, 0.999, 200)

    def rel_residual(h: float) -> np.ndarray:
        def ev(dx: float, dt: float) -> np.ndarray:
            return burgers_exact(np.column_stack([x + dx, t + dt]))

        u, up, um, tp, tm = ev(0, 0), ev(h, 0), ev(-h, 0), ev(0, h), ev(0, -h)
        ut, ux, uxx = (tp - tm) / (2 * h), (up - um) / (2 * h), (up - 2 * u + um) / h**2
        scale = np.maximum.reduce([np.abs(ut), np.abs(u * ux), np.abs(NU * uxx)])
        return np.abs(ut + u * ux - NU * uxx) / scale

    # Central differences with h = 1.25e-4: truncation ~ h^2 * (derivative ratios); in the
    # front (width ~1/152) this is (152 h)^2 / 6 ~ 6e-5 relative.  Round-off in the second
    # difference is ~ eps/h^2 * NU ~ 4e-11, negligible.  Measured max: 1.2e-4, so 3e-4 bounds
    # the FD error only, and the h -> h/2 ratio ~4 confirms it is pure O(h^2) truncation.
    r1 = rel_residual(2.5e-4)
    r2 = rel_residual(1.25e-4)
    assert r2.max() < 3e-4
    assert 3.5 < r1.max() / r2.max() < 4.5


def test_burgers_shock_gradient_basdevant() -> None:
    # Basdevant et al. (1986): max_t |u_x(0, t)| = 152.00516 attained at t = 1.6037 / pi.
    t = np.linspace(0.505, 0.515, 101)
    h = 1e-6
    ux = (
        burgers_exact(np.column_stack([np.full_like(t, h), t]))
        - burgers_exact(np.column_stack([np.full_like(t, -h), t]))
    ) / (2 * h)
    i = np.argmax(np.abs(ux))
    assert abs(abs(ux[i]) - 152.00516) < 1e-3
    assert abs(t[i] - 1.6037 / np.pi) < 2e-4


def test_burgers_node_convergence() -> None:
    report = burgers_convergence(node_counts=(40, 60, 200, 300))
    by_n = {r["n_nodes"]: r for r in report}
    assert by_n[40]["rel_l2_vs_finest"] > 1e-7  # not yet converged: the check is sensitive
    assert by_n[60]["rel_l2_vs_finest"] < 1e-8
    assert by_n[200]["rel_l2_vs_finest"] < 1e-13  # default node count: round-off level
    pts = _burgers_grid()
    np.testing.assert_array_equal(burgers_exact(pts), burgers_exact(pts, n_nodes=200))


def test_burgers_node_count_follows_the_viscosity_and_keeps_the_default() -> None:
    assert nodes_for(NU) == 200 and nodes_for(0.0025 / np.pi) == 240 and nodes_for(MIN_NU) == 600
    with pytest.raises(ValueError, match="nu=0.0002"):
        nodes_for(0.0002)  # below 0.001 / pi = 3.18e-4
    with pytest.raises(ValueError, match="nu=0.0"):
        burgers_exact(np.zeros((1, 2)), nu=0.0)


def _quad_u(x: float, t: float, nu: float) -> float:
    """u(x, t) by adaptive quadrature in z = eta / sqrt(4 nu t), independent of Gauss-Hermite:
    both integrands scaled by the exponent's maximum on a fine grid (it cancels in the ratio);
    beyond |z| = 40, exp(-z^2) < 1e-690 outweighs f's largest ratio exp(1 / (pi nu)) = e^1000."""
    from scipy import integrate

    s = np.sqrt(4.0 * nu * t)

    def expo(z):
        return -z * z - np.cos(np.pi * (x - s * z)) / (2.0 * np.pi * nu)

    top = expo(np.linspace(-40.0, 40.0, 400_001)).max()
    opts = {"limit": 2000, "epsabs": 0.0, "epsrel": 1e-13}
    with warnings.catch_warnings():  # quad warns that it cannot reach 1e-13; it gets ~1e-15
        warnings.simplefilter("ignore", integrate.IntegrationWarning)
        num = integrate.quad(
            lambda z: np.sin(np.pi * (x - s * z)) * np.exp(expo(z) - top), -40, 40, **opts
        )[0]
        den = integrate.quad(lambda z: np.exp(expo(z) - top), -40, 40, **opts)[0]
    return -num / den


def test_burgers_reference_converges_at_the_sharp_viscosity() -> None:
    """nu = 0.001 / pi (burgers-sharp): 200 nodes, enough at 0.01 / pi, are far off; the
    automatic 600 agree with 1200 on the whole test grid and with adaptive quadrature in the
    front. Measured: 200 nodes off by 9e-2; 600 vs 1200: 2e-15; vs quad: 1e-14."""
    pts = _burgers_grid()
    auto = burgers_exact(pts, nu=MIN_NU)
    assert np.abs(burgers_exact(pts, nu=MIN_NU, n_nodes=200) - auto).max() > 1e-2
    np.testing.assert_allclose(
        auto, burgers_exact(pts, nu=MIN_NU, n_nodes=1200), rtol=0, atol=1e-12
    )
    front = np.array([[1e-3, 1.0], [-4e-3, 0.99], [3e-3, 0.99], [0.01, 0.8], [0.02, 0.5]])
    quad = np.array([_quad_u(x, t, MIN_NU) for x, t in front])
    np.testing.assert_allclose(burgers_exact(front, nu=MIN_NU), quad, rtol=0, atol=1e-12)
    assert np.abs(quad).max() > 0.5  # the points are in the front, not in the flat part


def test_burgers_sharp_problem_uses_the_verified_reference() -> None:
    from glfpinn import problems

    sharp = problems.get("burgers-sharp")
    assert sharp.viscosity == MIN_NU and sharp.n_nodes == 600 and sharp.name == "burgers"
    assert problems.get("burgers").n_nodes == 200
    with pytest.raises(ValueError, match="viscosity=0.0001 is not allowed"):
        problems.get("burgers", viscosity=1e-4)


def test_burgers_input_validation() -> None:
    with pytest.raises(ValueError):
        burgers_exact(np.zeros((3, 3)))
    with pytest.raises(ValueError):
        burgers_exact(np.array([[0.0, -1.0]]))
    assert burgers_exact(np.zeros((0, 2))).shape == (0,)
