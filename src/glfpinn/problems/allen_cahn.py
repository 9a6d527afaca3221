"""Allen-Cahn in (x, t): u_t - 0.001 u_xx + 5 (u^3 - u) = 0 on [-1, 1] x [0, 1].

u(x, 0) = x^2 cos(pi x), u(+-1, t) = -1: the DeepXDE / Wu et al. (2023) benchmark. Both conditions
are hard constraints: u = x^2 cos(pi x) + t (1 - x^2) NN(x, t). The reference solution comes
from the package's Chebyshev-collocation solver (``problems.reference.allen_cahn``), cached on
disk after the first run.
"""

from __future__ import annotations

import math
from typing import final

import numpy as np
import torch
from torch import Tensor

from glfpinn import ops
from glfpinn._io import cached_arrays
from glfpinn.domains import Box
from glfpinn.problems.base import Model, Problem
from glfpinn.problems.reference.allen_cahn import allen_cahn_at_points, allen_cahn_reference

__all__ = ["AllenCahn"]

#: Bump when the solver or its settings change, so stale caches are not reused.
_REFERENCE_VERSION = 1


@final
class AllenCahn(Problem):
    name = "allen-cahn"
    hard_constrained = True
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(self, diffusion: float = 0.001, reaction: float = 5.0) -> None:
        self.diffusion = diffusion
        self.reaction = reaction
        self.dim = 2
        self.domain = Box([-1.0, 0.0], [1.0, 1.0])

    def output_transform(self, x: Tensor, y: Tensor) -> Tensor:
        xs, t = x[:, :1], x[:, 1:2]
        return xs**2 * torch.cos(math.pi * xs) + t * (1 - xs**2) * y

    def residual(self, model: Model, x: Tensor) -> Tensor:
        u, grad, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0])
        u_t, u_xx = grad[:, 1], d[0, :, 0]
        return u_t - self.diffusion * u_xx + self.reaction * (u**3 - u)

    def _check_default_coefficients(self) -> None:
        if (self.diffusion, self.reaction) != (0.001, 5.0):
            raise ValueError(
                "the reference solver covers the benchmark's coefficients only "
                f"(diffusion=0.001, reaction=5.0), got {self.diffusion}, {self.reaction}"
            )

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        self._check_default_coefficients()
        return allen_cahn_at_points(np.asarray(torch.as_tensor(x).cpu(), dtype=np.float64))

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The 201 x 101 reference grid (dx = dt = 0.01)."""
        return np.linspace(-1.0, 1.0, 201), np.linspace(0.0, 1.0, 101)

    def test_points(self) -> np.ndarray:
        xs, ts = self.grid()
        xx, tt = np.meshgrid(xs, ts)  # rows: t, columns: x
        return np.stack([xx.ravel(), tt.ravel()], axis=1)

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        self._check_default_coefficients()
        xs, ts = self.grid()
        arrays = cached_arrays(
            f"allen-cahn-reference-v{_REFERENCE_VERSION}",
            lambda: {"u": allen_cahn_reference(xs, ts)},
        )
        return self.test_points(), arrays["u"].reshape(-1)
