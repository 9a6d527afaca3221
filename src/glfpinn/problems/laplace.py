"""Laplace's equation on the L-shaped domain, with the re-entrant-corner singularity.

Domain ``LShape()`` = (-1, 1)^2 minus [0, 1) x (-1, 0]; the corner at the origin has interior
angle 3 pi / 2. Exact solution, in polar coordinates (r, theta) with theta in [0, 3 pi / 2]
measured counter-clockwise from the positive x axis::

    u = r^(2/3) sin(2 theta / 3).

The two re-entrant edges are theta = 0 (y = 0, x > 0) and theta = 3 pi / 2 (x = 0, y < 0), where
sin(0) = sin(pi) = 0, so u vanishes on both; u is harmonic (it is Im z^(2/3) on that branch) and
its gradient blows up like r^(-1/3) at the corner: where the points go matters. Dirichlet data
u = exact on the whole boundary, imposed softly: mean squared misfit on boundary points.
"""

from __future__ import annotations

import math
from typing import final

import numpy as np
import torch
from torch import Tensor

from glfpinn import ops
from glfpinn.domains import LShape
from glfpinn.problems.base import Model, Problem
from glfpinn.problems.dirichlet import SoftDirichlet

__all__ = ["Laplace", "l_shape_exact"]


def l_shape_exact(x: Tensor) -> Tensor:
    """``r^(2/3) sin(2 theta / 3)`` at ``x`` (n, 2), shape (n,); any dtype, differentiable.

    theta = atan2(y, x) taken in [0, 2 pi): the branch cut lies inside the removed quadrant,
    so the function is smooth on the domain minus the origin. At the origin it returns 0 (its
    derivatives there are singular).
    """
    xs, ys = x[:, 0], x[:, 1]
    theta = torch.atan2(ys, xs)
    theta = torch.where(theta < 0, theta + 2 * math.pi, theta)
    r2 = xs * xs + ys * ys
    return r2 ** (1.0 / 3.0) * torch.sin(2.0 * theta / 3.0)


@final
class Laplace(SoftDirichlet, Problem):
    """Laplace u = 0 on the L-shape; soft Dirichlet loss weighted by ``boundary_weight``.

    ``grid_size`` sets the test set: the grid_size x grid_size grid of [-1, 1]^2 restricted to
    the closed L-shape (201: 30,401 points with spacing 0.01, including the corner).
    """

    name = "laplace"
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(self, boundary_weight: float = 1.0, grid_size: int = 201) -> None:
        if not boundary_weight >= 0:
            raise ValueError(f"boundary_weight={boundary_weight} must be >= 0")
        if int(grid_size) < 2:
            raise ValueError(f"grid_size={grid_size} must be >= 2")
        self.boundary_weight = float(boundary_weight)
        self.grid_size = int(grid_size)
        self.dim = 2
        self.domain = LShape()

    def __repr__(self) -> str:
        return f"Laplace(boundary_weight={self.boundary_weight!r}, grid_size={self.grid_size})"

    def exact(self, x: Tensor) -> Tensor:
        """The exact solution as a torch function (n, 2) -> (n,)."""
        return l_shape_exact(x)

    def residual(self, model: Model, x: Tensor) -> Tensor:
        # ``model`` itself, not a wrapper: ops recognise an MLP and take their Taylor fast path.
        _, lap = ops.laplacian(model, x)
        return lap

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        pts = torch.as_tensor(x).detach().cpu().to(torch.float64)
        return l_shape_exact(pts).numpy()

    def test_points(self) -> np.ndarray:
        n = self.grid_size
        # Exactly symmetric (0 is exactly 0 for odd n), so ``contains`` decides the edges cleanly.
        g = (2.0 * np.arange(n) - (n - 1)) / (n - 1)
        xx, yy = np.meshgrid(g, g)  # rows: y, columns: x
        pts = np.stack([xx.ravel(), yy.ravel()], axis=1)
        keep = self.domain.contains(torch.from_numpy(pts)).numpy()
        return pts[keep]
