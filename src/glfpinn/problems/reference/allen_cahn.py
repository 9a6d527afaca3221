"""Reference solution of the Allen-Cahn benchmark by Chebyshev collocation + Radau IIA.

Problem::

    u_t - 0.001 u_xx + 5 (u^3 - u) = 0,   x in [-1, 1], t in [0, 1],
    u(x, 0) = x^2 cos(pi x),              u(-1, t) = u(1, t) = -1.

Method (method of lines):

* Space: Chebyshev collocation on the ``n_cheb + 1`` Chebyshev points of the 2nd kind
  ``x_j = -cos(j pi / n_cheb)`` (ascending).  The Dirichlet data are imposed by fixing the two
  endpoint values at -1 and evolving only the ``n_cheb - 1`` interior values; the boundary
  columns of the second-derivative matrix enter as a constant forcing.  The initial data are
  compatible with the boundary data (``x^2 cos(pi x) = -1`` at ``x = +-1``).
* Time: ``scipy.integrate.solve_ivp`` with the L-stable, 5th-order Radau IIA method and the
  analytic Jacobian ``0.001 D2 - diag(15 u^2 - 5)``.  The collocation system is very stiff
  (spectrum of ``D2`` grows like ``n^4``), which rules out explicit schemes; Radau's cost per
  step is a dense LU of size ``n_cheb - 1``, cheap for the sizes used here.  Values at
  arbitrary times come from the integrator's continuous extension (dense output).
* Interpolation in ``x``: barycentric formula for Chebyshev points of the 2nd kind, which is
  spectrally accurate and numerically stable.

Why ``n_cheb = 512``: the solution develops interior layers ``~ tanh((x - x0) / 0.02)``
(width ``sqrt(2 * 0.001 / 5) = 0.02``); their complex poles at distance ``0.01 pi`` from the real
axis limit Chebyshev convergence to roughly ``exp(-0.03 n)``.  Measured relative L2 differences
on the 201 x 101 grid against ``n = 768`` (rtol 1e-10, atol 1e-12): n=128: 1.2e-3,
n=256: 6.3e-6, n=384: 2.7e-8, n=512: 1.3e-10.  The time error at the default tolerances is
~3e-12 (relative L2, measured against rtol 1e-12 / atol 1e-14, including dense output between
steps).  A default solve takes about 1 s.  tests/problems/test_reference.py keeps the spatial
convergence (n = 256, 384, 512) checked.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from scipy.integrate import OdeSolution

__all__ = [
    "DIFFUSION",
    "REACTION",
    "DEFAULT_N_CHEB",
    "DEFAULT_RTOL",
    "DEFAULT_ATOL",
    "chebyshev_points",
    "initial_condition",
    "solve_allen_cahn",
    "allen_cahn_reference",
    "allen_cahn_at_points",
]

DIFFUSION = 0.001
REACTION = 5.0
DEFAULT_N_CHEB = 512
DEFAULT_RTOL = 1e-10
DEFAULT_ATOL = 1e-12

_GRID_T = np.linspace(0.0, 1.0, 101)
_CHUNK = 4096


def initial_condition(x: np.ndarray) -> np.ndarray:
    """``u(x, 0) = x^2 cos(pi x)``."""
    x = np.asarray(x, dtype=np.float64)
    return x**2 * np.cos(np.pi * x)


def chebyshev_points(n: int) -> np.ndarray:
    """The ``n + 1`` Chebyshev points of the 2nd kind on [-1, 1], in ascending order."""
    if n < 2:
        raise ValueError(f"need n >= 2, got {n}")
    x = -np.cos(np.pi * np.arange(n + 1) / n)
    x[0], x[-1] = -1.0, 1.0
    if n % 2 == 0:
        x[n // 2] = 0.0  # exact symmetry of the node set
    return x


def _cheb_diff(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Chebyshev differentiation matrix (Trefethen, Spectral Methods in MATLAB, ``cheb``)."""
    x = chebyshev_points(n)
    c = np.ones(n + 1)
    c[0] = c[-1] = 2.0
    c *= (-1.0) ** np.arange(n + 1)
    dx = x[:, None] - x[None, :]
    d = np.outer(c, 1.0 / c) / (dx + np.eye(n + 1))
    d -= np.diag(d.sum(axis=1))  # negative-sum trick: exact derivative of constants
    return x, d


def _bary_weights(n: int) -> np.ndarray:
    w = (-1.0) ** np.arange(n + 1)
    w[0] *= 0.5
    w[-1] *= 0.5
    return w


def _bary_matrix(nodes: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Matrix ``B`` with ``B @ f(nodes) = p(x)``, the barycentric Chebyshev interpolant."""
    w = _bary_weights(nodes.size - 1)
    diff = x[:, None] - nodes[None, :]
    hit = diff == 0.0
    diff[hit] = 1.0
    c = w / diff
    b = c / c.sum(axis=1, keepdims=True)
    rows = np.nonzero(hit.any(axis=1))[0]
    b[rows] = hit[rows].astype(np.float64)  # exact node: take the nodal value
    return b


def _check_x(x: np.ndarray) -> None:
    if x.size and (not np.all(np.isfinite(x)) or x.min() < -1.0 or x.max() > 1.0):
        raise ValueError("x must lie in [-1, 1]")


def _check_t(t: np.ndarray) -> None:
    if t.size and (not np.all(np.isfinite(t)) or t.min() < 0.0 or t.max() > 1.0):
        raise ValueError("t must lie in [0, 1]")


@functools.lru_cache(maxsize=4)
def _dense_solution(n_cheb: int, rtol: float, atol: float) -> tuple[np.ndarray, OdeSolution]:
    """Integrate the interior ODE system on [0, 1]; cached since solves are reused."""
    from scipy.integrate import solve_ivp  # here: only a reference solve needs scipy

    x, d = _cheb_diff(n_cheb)
    d2 = d @ d
    a = DIFFUSION * d2[1:-1, 1:-1]
    # Boundary values u(+-1) = -1 enter through the boundary columns of D2.
    forcing = DIFFUSION * (d2[1:-1, 0] * -1.0 + d2[1:-1, -1] * -1.0)

    def rhs(_t: float, v: np.ndarray) -> np.ndarray:
        return a @ v + forcing - REACTION * (v**3 - v)

    def jac(_t: float, v: np.ndarray) -> np.ndarray:
        j = a.copy()
        j[np.diag_indices_from(j)] -= REACTION * (3.0 * v**2 - 1.0)
        return j

    sol = solve_ivp(
        rhs,
        (0.0, 1.0),
        initial_condition(x[1:-1]),
        method="Radau",
        jac=jac,
        rtol=rtol,
        atol=atol,
        dense_output=True,
    )
    if not sol.success:  # pragma: no cover - defensive
        raise RuntimeError(f"Allen-Cahn integration failed: {sol.message}")
    x.setflags(write=False)
    return x, sol.sol


def _nodal_values(sol: OdeSolution, t: np.ndarray) -> np.ndarray:
    """Values at all Chebyshev nodes (boundary included), shape (len(t), n_cheb + 1)."""
    n_int = sol(0.0).size
    u = np.full((t.size, n_int + 2), -1.0)
    if t.size == 0:
        return u
    u[:, 1:-1] = sol(t).T
    # t = 0 exactly: return the initial data itself rather than the interpolant's value.
    u[t == 0.0, 1:-1] = sol(0.0)[None, :]
    return u


def solve_allen_cahn(
    n_cheb: int = DEFAULT_N_CHEB,
    t_eval: np.ndarray | None = None,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Solve Allen-Cahn on the Chebyshev grid.

    Returns ``(x, t, u)``: the ``n_cheb + 1`` Chebyshev nodes (ascending, endpoints included),
    the output times (``t_eval``, default ``linspace(0, 1, 101)``) and ``u`` of shape
    ``(len(t), len(x))`` in float64.  Times are served by Radau's dense output.
    """
    t = _GRID_T.copy() if t_eval is None else np.asarray(t_eval, dtype=np.float64).ravel()
    _check_t(t)
    x, sol = _dense_solution(int(n_cheb), float(rtol), float(atol))
    return x.copy(), t.copy(), _nodal_values(sol, t)


def allen_cahn_reference(x: np.ndarray, t: np.ndarray, n_cheb: int = DEFAULT_N_CHEB) -> np.ndarray:
    """``u`` on the tensor grid of 1-D arrays ``x`` and ``t``, shape ``(len(t), len(x))``.

    Spectral (barycentric) interpolation in ``x`` from the Chebyshev nodes, dense output in ``t``.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    t = np.asarray(t, dtype=np.float64).ravel()
    _check_x(x)
    _check_t(t)
    nodes, sol = _dense_solution(int(n_cheb), DEFAULT_RTOL, DEFAULT_ATOL)
    b = _bary_matrix(nodes, x)
    out = np.empty((t.size, x.size))
    for i in range(0, t.size, _CHUNK):
        out[i : i + _CHUNK] = _nodal_values(sol, t[i : i + _CHUNK]) @ b.T
    return out


def allen_cahn_at_points(points: np.ndarray, n_cheb: int = DEFAULT_N_CHEB) -> np.ndarray:
    """``u`` at arbitrary points, ``points`` of shape ``(n, 2)`` with columns ``(x, t)``.

    Returns shape ``(n,)``.  Each point uses the dense output at its own ``t`` and the
    barycentric interpolant in ``x``; work is chunked so memory stays ``O(chunk * n_cheb)``.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2:
        raise ValueError(f"points must have shape (n, 2), got {pts.shape}")
    x, t = pts[:, 0], pts[:, 1]
    _check_x(x)
    _check_t(t)
    nodes, sol = _dense_solution(int(n_cheb), DEFAULT_RTOL, DEFAULT_ATOL)
    out = np.empty(pts.shape[0])
    for i in range(0, pts.shape[0], _CHUNK):
        sl = slice(i, i + _CHUNK)
        b = _bary_matrix(nodes, x[sl])
        out[sl] = np.einsum("ij,ij->i", b, _nodal_values(sol, t[sl]))
    return out
