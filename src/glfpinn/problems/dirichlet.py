"""Soft Dirichlet data from a problem's own exact solution, shared by the elliptic problems
(``laplace``, ``helmholtz``, ``poisson-5d``)."""

from __future__ import annotations

import torch
from torch import Tensor

from glfpinn.problems.base import Model

__all__ = ["SoftDirichlet"]


class SoftDirichlet:
    """Mixin for a :class:`~glfpinn.problems.base.Problem` with an ``exact(x)`` torch solution
    and a ``boundary_weight``: the boundary points are the domain's own boundary sample, their
    values the exact solution (computed in float64), and the condition loss is
    ``boundary_weight`` times the mean squared misfit."""

    boundary_weight: float

    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        xb = self.domain.sample_boundary(n, generator, dtype=dtype)  # type: ignore[attr-defined]
        return {"boundary": xb, "boundary_values": self.exact(xb.to(torch.float64)).to(dtype)}

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        xb = points["boundary"]
        misfit = model(xb).reshape(xb.shape[0]) - points["boundary_values"]
        return {"boundary": (misfit**2).mean()}

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor:
        return self.boundary_weight * self.condition_misfits(model, points)["boundary"]
