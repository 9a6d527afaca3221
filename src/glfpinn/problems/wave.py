"""The 1-D wave equation in (x, t), a problem kept out of every design choice (issue #23).

    u_tt = c^2 u_xx,   x in [0, 1], t in [0, 1],
    u(x, 0) = sin(pi x) + sin(4 pi x) / 2,   u_t(x, 0) = 0,   u(0, t) = u(1, t) = 0,

with the exact standing-wave solution u = sin(pi x) cos(c pi t) + sin(4 pi x) cos(4 c pi t) / 2
(c = 1 by default): the high mode oscillates four times faster, so the residual is not uniform.
Every condition is a hard constraint, u = u(x, 0) + x (1 - x) t^2 NN(x, t): the t^2 factor
keeps u_t(x, 0) = 0. Test set: the 201 x 101 grid.
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

__all__ = ["Wave"]


def _initial(xs: Tensor) -> Tensor:
    return torch.sin(math.pi * xs) + 0.5 * torch.sin(4 * math.pi * xs)


@final
class Wave(Problem):
    """u_tt = c^2 u_xx on [0, 1]^2 with a standing-wave solution; see the module."""

    name = "wave"
    hard_constrained = True
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(self, speed: float = 1.0) -> None:
        if not speed > 0:
            raise ValueError(f"speed={speed} must be positive")
        self.speed = float(speed)
        self.dim = 2
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def __repr__(self) -> str:
        return f"Wave(speed={self.speed!r})"

    def output_transform(self, x: Tensor, y: Tensor) -> Tensor:
        xs, t = x[:, :1], x[:, 1:2]
        return _initial(xs) + xs * (1 - xs) * t**2 * y

    def exact(self, x: Tensor) -> Tensor:
        xs, t, c = x[:, 0], x[:, 1], self.speed
        return torch.sin(math.pi * xs) * torch.cos(c * math.pi * t) + 0.5 * torch.sin(
            4 * math.pi * xs
        ) * torch.cos(4 * c * math.pi * t)

    def residual(self, model: Model, x: Tensor) -> Tensor:
        _, _, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0, 1])
        return d[0, :, 1] - self.speed**2 * d[0, :, 0]

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        return self.exact(torch.as_tensor(x).detach().cpu().to(torch.float64)).numpy()

    def test_points(self) -> np.ndarray:
        xs, ts = np.linspace(0.0, 1.0, 201), np.linspace(0.0, 1.0, 101)
        xx, tt = np.meshgrid(xs, ts)
        return np.stack([xx.ravel(), tt.ravel()], axis=1)
