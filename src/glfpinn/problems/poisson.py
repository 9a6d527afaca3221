"""Poisson's equation in d dimensions with a localized bump, a problem kept out of every design
choice (issue #23).

    -Laplacian u = f  on [0, 1]^d,   u = exact on the boundary (soft),

with the manufactured solution (d = ``dim`` = 5 by default, s = ``width`` = 0.15)

    u = (1/d) sum_i sin(pi x_i) + B,   B = exp(-|z|^2 / 2),   z_j = (x_j - 1/2) / s, j = 1, 2,

so f = (pi^2 / d) sum_i sin(pi x_i) - B (|z|^2 - 2) / s^2: a smooth global part and a bump in
(x_1, x_2), constant along x_3..x_d (a feature uniform samples still hit in any d, as in
``dispersive-10d``). Test set: ``n_test`` uniform points drawn with a fixed seed.
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

__all__ = ["Poisson"]


@final
class Poisson(SoftDirichlet, Problem):
    """-Lap u = f on [0, 1]^dim with a bump in (x_1, x_2); see the module."""

    name = "poisson-5d"
    test_seed = 20261202
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(
        self,
        dim: int = 5,
        width: float = 0.15,
        boundary_weight: float = 1.0,
        n_test: int = 100_000,
    ) -> None:
        if int(dim) != dim or dim < 2:
            raise ValueError(f"dim={dim} must be an integer >= 2 (the bump uses x_1, x_2)")
        if not 0 < width <= 1:
            raise ValueError(f"width={width} must lie in (0, 1]")
        if not boundary_weight >= 0:
            raise ValueError(f"boundary_weight={boundary_weight} must be >= 0")
        if int(n_test) < 1:
            raise ValueError(f"n_test={n_test} must be >= 1")
        self.dim = int(dim)
        self.width = float(width)
        self.boundary_weight = float(boundary_weight)
        self.n_test = int(n_test)
        self.domain = Box.cube(self.dim)

    def __repr__(self) -> str:
        return f"Poisson(dim={self.dim}, width={self.width!r})"

    def bump(self, x: Tensor) -> tuple[Tensor, Tensor]:
        z = (x[:, :2] - 0.5) / self.width
        return torch.exp(-0.5 * (z * z).sum(1)), z

    def exact(self, x: Tensor) -> Tensor:
        return torch.sin(math.pi * x).mean(1) + self.bump(x)[0]

    def source(self, x: Tensor) -> Tensor:
        b, z = self.bump(x)
        smooth = math.pi**2 * torch.sin(math.pi * x).mean(1)
        return smooth - b * ((z * z).sum(1) - 2.0) / self.width**2

    def residual(self, model: Model, x: Tensor) -> Tensor:
        _, lap = ops.laplacian(model, x)
        return -lap - self.source(x)

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        return self.exact(torch.as_tensor(x).detach().cpu().to(torch.float64)).numpy()

    def test_points(self) -> np.ndarray:
        return np.random.default_rng(self.test_seed).random((self.n_test, self.dim))
