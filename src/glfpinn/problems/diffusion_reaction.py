"""DeepXDE's diffusion-reaction example in (x, t) (the user story of issue #23).

    u_t = u_xx + f,   x in [-pi, pi], t in [0, 1],
    f = e^{-t} (3/2 sin 2x + 8/3 sin 3x + 15/4 sin 4x + 63/8 sin 8x),

with the exact solution u = e^{-t} (sin x + sin 2x / 2 + sin 3x / 3 + sin 4x / 4 + sin 8x / 8):
each mode sin(n x) / n decays like e^{-n^2 t} under diffusion alone, and the source makes all of
them decay like e^{-t}. As in DeepXDE's example (``examples/pinn_forward/diffusion_reaction.py``)
the initial and boundary values are hard constraints: u = t (pi^2 - x^2) NN(x, t) + u(x, 0).
Test set: the 201 x 101 grid of the rectangle.
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

__all__ = ["DiffusionReaction"]

#: The modes of the solution: sin(n x) / n.
MODES = (1, 2, 3, 4, 8)


def _initial(xs: Tensor) -> Tensor:
    return sum(torch.sin(n * xs) / n for n in MODES)


@final
class DiffusionReaction(Problem):
    """u_t = u_xx + f on [-pi, pi] x [0, 1], hard-constrained; see the module."""

    name = "diffusion-reaction"
    hard_constrained = True
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(self) -> None:
        self.dim = 2
        self.domain = Box([-math.pi, 0.0], [math.pi, 1.0])

    def __repr__(self) -> str:
        return "DiffusionReaction()"

    def output_transform(self, x: Tensor, y: Tensor) -> Tensor:
        xs, t = x[:, :1], x[:, 1:2]
        return t * (math.pi**2 - xs**2) * y + _initial(xs)

    def exact(self, x: Tensor) -> Tensor:
        return torch.exp(-x[:, 1]) * _initial(x[:, 0])

    def source(self, x: Tensor) -> Tensor:
        xs = x[:, 0]
        return torch.exp(-x[:, 1]) * sum((n - 1.0 / n) * torch.sin(n * xs) for n in MODES)

    def residual(self, model: Model, x: Tensor) -> Tensor:
        _, grad, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0])
        return grad[:, 1] - d[0, :, 0] - self.source(x)

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        return self.exact(torch.as_tensor(x).detach().cpu().to(torch.float64)).numpy()

    def test_points(self) -> np.ndarray:
        xs, ts = np.linspace(-math.pi, math.pi, 201), np.linspace(0.0, 1.0, 101)
        xx, tt = np.meshgrid(xs, ts)
        return np.stack([xx.ravel(), tt.ravel()], axis=1)
