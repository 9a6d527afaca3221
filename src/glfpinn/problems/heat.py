"""PINNacle's high-dimensional heat equation (Heat-ND, "HNd"; Hao et al., NeurIPS 2024):

    u_t = k Laplacian_x(u) + f    on the unit ball B^d x [0, 1]  (time last),  k = 1 / d,
    f = -k |x|^2 u,               exact solution u = exp(|x|^2 / 2 + t),

d = ``space_dim`` = 5. The solution checks itself: u_t = u and Laplacian u = (d + |x|^2) u, so
u_t - k Laplacian u = u - u - |x|^2 u / d = f. Conditions, soft, as PINNacle poses them (its
``src/pde/heat.py``, class ``HeatND``, at commit 6f8d69c): u(x, 0) = exp(|x|^2 / 2) on the
initial ball and, on the sphere, the Neumann condition du/dn = exp(|x|^2 / 2 + t) (the exact
solution's normal derivative |x| u, since |x| = 1 there); ``boundary="dirichlet"`` imposes
u = exp(1/2 + t) on the sphere instead (ours). Test set: ``n_test`` uniform points of the
space-time cylinder, drawn with the class's own seed.
"""

from __future__ import annotations

from typing import final

import numpy as np
import torch
from torch import Tensor

from glfpinn import ops
from glfpinn.domains import Ball, SpaceTime
from glfpinn.problems.base import Model, Problem

__all__ = ["HeatND"]

#: The condition on the sphere: PINNacle's Neumann one, or Dirichlet data (ours).
BOUNDARY_CONDITIONS = ("neumann", "dirichlet")


@final
class HeatND(Problem):
    """u_t = (1/d) Lap u - (1/d) |x|^2 u on the unit d-ball x [0, 1]; see the module."""

    name = "heat-5d"
    test_seed = 20261216
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(
        self,
        space_dim: int = 5,
        initial_weight: float = 1.0,
        boundary_weight: float = 1.0,
        n_test: int = 20_000,
        boundary: str = "neumann",
    ) -> None:
        if int(space_dim) != space_dim or space_dim < 1:
            raise ValueError(f"space_dim={space_dim} must be an integer >= 1")
        for label, value in (
            ("initial_weight", initial_weight),
            ("boundary_weight", boundary_weight),
        ):
            if not value >= 0:
                raise ValueError(f"{label}={value} must be >= 0")
        if int(n_test) < 1:
            raise ValueError(f"n_test={n_test} must be >= 1")
        if boundary not in BOUNDARY_CONDITIONS:
            raise ValueError(
                f"boundary={boundary!r} is not allowed; allowed: {', '.join(BOUNDARY_CONDITIONS)}"
            )
        self.boundary = boundary
        self.space_dim = int(space_dim)
        self.dim = self.space_dim + 1
        self.diffusion = 1.0 / self.space_dim
        self.initial_weight = float(initial_weight)
        self.boundary_weight = float(boundary_weight)
        self.n_test = int(n_test)
        self.domain = SpaceTime(Ball(self.space_dim))

    def __repr__(self) -> str:
        return f"HeatND(space_dim={self.space_dim}, boundary={self.boundary!r})"

    def exact(self, x: Tensor) -> Tensor:
        return torch.exp(0.5 * (x[:, :-1] ** 2).sum(1) + x[:, -1])

    def source(self, x: Tensor) -> Tensor:
        return -self.diffusion * (x[:, :-1] ** 2).sum(1) * self.exact(x)

    def residual(self, model: Model, x: Tensor) -> Tensor:
        _, grad, lap = ops.value_grad_laplacian(model, x, dims=slice(0, -1))
        return grad[:, -1] - self.diffusion * lap - self.source(x)

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        return self.exact(torch.as_tensor(x).detach().cpu().to(torch.float64)).numpy()

    def test_points(self) -> np.ndarray:
        generator = torch.Generator().manual_seed(self.test_seed)
        return self.domain.sample(self.n_test, generator, dtype=torch.float64).numpy()

    # ----------------------------------------------------------------- conditions
    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        n_init = n // 2
        ball = self.domain.space
        x0 = ball.sample(n_init, generator, dtype=dtype)
        x0 = torch.cat([x0, torch.zeros(n_init, 1, dtype=dtype, device=x0.device)], dim=1)
        side = ball.sample_boundary(n - n_init, generator, dtype=dtype)
        t = torch.rand(n - n_init, 1, generator=generator, device=side.device, dtype=dtype)
        xb = torch.cat([side, t], dim=1)
        exact = self.exact(xb.to(torch.float64))
        if self.boundary == "neumann":  # du/dn = grad u . x / |x| = |x| u for this solution
            exact = exact * torch.linalg.vector_norm(xb[:, :-1].to(torch.float64), dim=1)
        return {
            "initial": x0,
            "initial_values": self.exact(x0.to(torch.float64)).to(dtype),
            "boundary": xb,
            "boundary_values": exact.to(dtype),
        }

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        x0, xb = points["initial"], points["boundary"]
        initial = model(x0).reshape(-1) - points["initial_values"]
        if self.boundary == "neumann":
            _, grad = ops.value_and_gradient(model, xb)
            normal = xb[:, :-1] / torch.linalg.vector_norm(xb[:, :-1], dim=1, keepdim=True)
            on_boundary = (grad[:, :-1] * normal).sum(1)
        else:
            on_boundary = model(xb).reshape(-1)
        return {
            "initial": (initial**2).mean(),
            "boundary": ((on_boundary - points["boundary_values"]) ** 2).mean(),
        }

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor:
        misfits = self.condition_misfits(model, points)
        return self.initial_weight * misfits["initial"] + self.boundary_weight * misfits["boundary"]
