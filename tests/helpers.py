"""Shared test fixtures: every built-in sampler and problem, and a context factory."""

from __future__ import annotations

from collections.abc import Callable

import torch

from glfpinn import problems, samplers
from glfpinn.domains import Box, Domain
from glfpinn.samplers.base import SamplingContext

ALL_SAMPLERS: list[str] = samplers.names()
ALL_PROBLEMS: list[str] = problems.names()


class CountingResidual:
    """A residual function with a known landscape that counts its evaluations."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn = fn
        self.evals = 0

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.evals += x.shape[0]
        return self.fn(x).abs()

    def with_grad(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        self.evals += x.shape[0]
        xg = x.detach().requires_grad_(True)
        with torch.enable_grad():
            r = self.fn(xg)
            (g,) = torch.autograd.grad((r**2).sum(), xg)
        return r.detach().abs(), g


def bump(x: torch.Tensor) -> torch.Tensor:
    """A residual peaked at the domain's centre-ish point 0.25 (per coordinate)."""
    return torch.exp(-20 * ((x - 0.25) ** 2).sum(dim=1)) + 1e-3


def make_context(
    domain: Domain | None = None,
    n: int = 256,
    seed: int = 0,
    residual: Callable[[torch.Tensor], torch.Tensor] = bump,
    dtype: torch.dtype = torch.float32,
    free_residuals: bool = True,
) -> tuple[SamplingContext, CountingResidual]:
    domain = domain or Box.cube(2, -1.0, 1.0)
    gen = torch.Generator().manual_seed(seed)
    points = domain.sample(n, gen, dtype=dtype)
    fn = CountingResidual(residual)
    r = residual(points).abs() if free_residuals else None
    ctx = SamplingContext(
        points=points,
        residuals=r,
        residual_fn=fn,
        domain=domain,
        step=100,
        generator=gen,
        residual_grad_fn=fn.with_grad,
    )
    return ctx, fn


class Poisson1D(problems.Problem):
    """-u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0, hard-constrained: u = sin(pi x).

    Small and fast: the trainer's mechanics are tested on it."""

    name = "poisson-1d"
    hard_constrained = True
    defaults = {"n_points": 64, "resample_every": 20, "hidden": (16, 16)}

    def __init__(self) -> None:
        self.dim = 1
        self.domain = Box([0.0], [1.0])

    def output_transform(self, x, y):
        return x * (1 - x) * y

    def residual(self, model, x):
        from glfpinn import ops
        from glfpinn.problems.base import scalar

        u_xx = ops.axis_derivatives(scalar(model), x, order=2)[:, 0]
        return u_xx + torch.pi**2 * torch.sin(torch.pi * x[:, 0])

    def solution(self, x):
        import numpy as np

        return np.sin(np.pi * np.asarray(x, dtype=np.float64)[:, 0])

    def test_points(self):
        import numpy as np

        return np.linspace(0, 1, 101)[:, None]
