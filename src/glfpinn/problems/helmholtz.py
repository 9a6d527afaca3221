"""Helmholtz's equation on the square, with a manufactured solution (the set-up of issue #23).

    -Laplacian u - k^2 u = f  on [-1, 1]^2,   u = 0 on the boundary,

with the exact solution u = sin(a_1 pi x) sin(a_2 pi y) (a_1 = 1, a_2 = 4, k = 1 by default), so
that f = ((a_1^2 + a_2^2) pi^2 - k^2) u. The source reaches 166 in magnitude: a PDE whose
residuals are of order 1-100, where a step tied to the residual's units (the paper's GLF,
alpha = 1e-4) barely moves its points. The boundary condition is soft (mean squared misfit on
boundary points, weighted by ``boundary_weight``). Test set: the 201 x 201 grid (spacing 0.01).
"""

from __future__ import annotations

import math
from typing import final

import numpy as np
import torch
from torch import Tensor

from glfpinn import ops
from glfpinn.domains import Box
from glfpinn.problems.base import Model, Problem
from glfpinn.problems.dirichlet import SoftDirichlet

__all__ = ["Helmholtz"]


def grid_points(lower: tuple[float, float], upper: tuple[float, float], n: int) -> np.ndarray:
    """The n x n grid of a rectangle, rows (x, y), float64."""
    xs = np.linspace(lower[0], upper[0], n)
    ys = np.linspace(lower[1], upper[1], n)
    xx, yy = np.meshgrid(xs, ys)
    return np.stack([xx.ravel(), yy.ravel()], axis=1)


@final
class Helmholtz(SoftDirichlet, Problem):
    """-Lap u - k^2 u = f on [-1, 1]^2, u = sin(a_1 pi x) sin(a_2 pi y); see the module."""

    name = "helmholtz"
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(
        self,
        wavenumber: float = 1.0,
        a1: float = 1.0,
        a2: float = 4.0,
        boundary_weight: float = 1.0,
        grid_size: int = 201,
    ) -> None:
        if not boundary_weight >= 0:
            raise ValueError(f"boundary_weight={boundary_weight} must be >= 0")
        if int(grid_size) < 2:
            raise ValueError(f"grid_size={grid_size} must be >= 2")
        for key, value in (("a1", a1), ("a2", a2)):
            if value != int(value) or value == 0:
                raise ValueError(f"{key}={value} must be a non-zero integer (u = 0 on the edges)")
        self.wavenumber = float(wavenumber)
        self.a1 = float(a1)
        self.a2 = float(a2)
        self.boundary_weight = float(boundary_weight)
        self.grid_size = int(grid_size)
        self.dim = 2
        self.domain = Box([-1.0, -1.0], [1.0, 1.0])

    def __repr__(self) -> str:
        return (
            f"Helmholtz(wavenumber={self.wavenumber!r}, a1={self.a1!r}, a2={self.a2!r}, "
            f"boundary_weight={self.boundary_weight!r})"
        )

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(self.a1 * math.pi * x[:, 0]) * torch.sin(self.a2 * math.pi * x[:, 1])

    def source(self, x: Tensor) -> Tensor:
        factor = (self.a1**2 + self.a2**2) * math.pi**2 - self.wavenumber**2
        return factor * self.exact(x)

    def residual(self, model: Model, x: Tensor) -> Tensor:
        u, lap = ops.laplacian(model, x)
        return -lap - self.wavenumber**2 * u - self.source(x)

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        return self.exact(torch.as_tensor(x).detach().cpu().to(torch.float64)).numpy()

    def test_points(self) -> np.ndarray:
        return grid_points((-1.0, -1.0), (1.0, 1.0), self.grid_size)
