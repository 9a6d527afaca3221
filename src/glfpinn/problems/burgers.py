"""Viscous Burgers in (x, t): u_t + u u_x - (0.01 / pi) u_xx = 0 on [-1, 1] x [0, 1].

u(x, 0) = -sin(pi x), u(+-1, t) = 0: the Raissi et al. (2019) / Wu et al. (2023) benchmark, whose
solution steepens into a near-shock at x = 0 (max |u_x| = 152 at t = 0.51). Both conditions are
hard constraints: u = -sin(pi x) + t (1 - x^2) NN(x, t). The reference is the exact Cole-Hopf
integral evaluated by Gauss-Hermite quadrature (``problems.reference.burgers``), no data download.
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
from glfpinn.problems.reference.burgers import MIN_NU, NU, burgers_exact, nodes_for

__all__ = ["Burgers", "SHARP_NU"]

#: The viscosity of ``burgers-sharp``, 10x below the benchmark's: the smallest one whose
#: Cole-Hopf reference is verified (``problems.reference.burgers.MIN_NU``).
SHARP_NU = MIN_NU

#: Bump when the reference or its settings change, so stale caches are not reused.
_REFERENCE_VERSION = 1


@final
class Burgers(Problem):
    """Burgers' equation with viscosity ``viscosity`` (default 0.01 / pi; at least 0.001 / pi,
    the smallest whose reference is verified).

    ``n_nodes`` is the Gauss-Hermite node count of the reference; None picks it from the
    viscosity (200 at the default, round-off accurate on the test grid; more for a sharper
    front, see ``problems.reference.burgers.nodes_for``).
    """

    name = "burgers"
    hard_constrained = True
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(self, viscosity: float = NU, n_nodes: int | None = None) -> None:
        if not viscosity >= MIN_NU:
            raise ValueError(
                f"viscosity={viscosity} is not allowed; it must be >= 0.001/pi = {MIN_NU:.6g}, "
                "the smallest whose Cole-Hopf reference is verified"
            )
        if n_nodes is not None and int(n_nodes) < 1:
            raise ValueError(f"n_nodes={n_nodes} must be >= 1")
        self.viscosity = float(viscosity)
        self.n_nodes = nodes_for(self.viscosity) if n_nodes is None else int(n_nodes)
        self.dim = 2
        self.domain = Box([-1.0, 0.0], [1.0, 1.0])

    def __repr__(self) -> str:
        return f"Burgers(viscosity={self.viscosity!r}, n_nodes={self.n_nodes})"

    def output_transform(self, x: Tensor, y: Tensor) -> Tensor:
        xs, t = x[:, :1], x[:, 1:2]
        return -torch.sin(math.pi * xs) + t * (1 - xs**2) * y

    def residual(self, model: Model, x: Tensor) -> Tensor:
        u, grad, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0])
        u_x, u_t, u_xx = grad[:, 0], grad[:, 1], d[0, :, 0]
        return u_t + u * u_x - self.viscosity * u_xx

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        pts = np.asarray(torch.as_tensor(x).detach().cpu(), dtype=np.float64)
        return burgers_exact(pts, nu=self.viscosity, n_nodes=self.n_nodes)

    def grid(self) -> tuple[np.ndarray, np.ndarray]:
        """The 256 x 100 grid of Raissi et al.: x = linspace(-1, 1, 256), t = 0, 0.01, ..., 0.99."""
        return np.linspace(-1.0, 1.0, 256), np.arange(100) * 0.01

    def test_points(self) -> np.ndarray:
        xs, ts = self.grid()
        xx, tt = np.meshgrid(xs, ts)  # rows: t, columns: x
        return np.stack([xx.ravel(), tt.ravel()], axis=1)

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        x = self.test_points()
        key = f"burgers-reference-v{_REFERENCE_VERSION}-nu{self.viscosity.hex()}-n{self.n_nodes}"
        arrays = cached_arrays(key, lambda: {"u": self.solution(x)})
        return x, arrays["u"].reshape(-1)
