"""The problem API: a PDE, its domain, its conditions and its exact or reference solution."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn.domains import Domain
from glfpinn.nn import MLP, Constrained

__all__ = ["Problem", "Model"]

#: A network mapping points (n, dim) to u (n, 1) or (n,).
Model = Callable[[Tensor], Tensor]


class Problem(abc.ABC):
    """A benchmark PDE.

    ``residual(model, x)`` is L u - f at interior points, differentiable with respect to the
    model's parameters; ``solution(x)`` is the exact or reference solution (float64 numpy, shape
    (n,)); time, where there is one, is the last coordinate. Initial and boundary conditions are
    either built into the network (``output_transform``, hard constraints) or penalised by
    ``condition_loss`` on points from ``condition_points`` (soft constraints).
    """

    name: ClassVar[str]
    #: Defaults a run uses unless told otherwise (points, steps, resample period, network).
    defaults: ClassVar[dict[str, Any]] = {}

    dim: int
    domain: Domain

    #: Whether the conditions are built into the network through ``output_transform``.
    hard_constrained: ClassVar[bool] = False

    def output_transform(self, x: Tensor, y: Tensor) -> Tensor:
        """Hard constraint u = transform(x, NN(x)), for problems with ``hard_constrained``."""
        raise NotImplementedError(f"{self.name} imposes its conditions softly")

    def build_model(
        self,
        hidden: tuple[int, ...] = (64, 64, 64),
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> nn.Module:
        """The default network for this problem, wrapped in its hard constraint if it has one."""
        net = MLP(self.dim, 1, hidden, activation, generator=generator)
        return Constrained(net, self.output_transform) if self.hard_constrained else net

    @abc.abstractmethod
    def residual(self, model: Model, x: Tensor) -> Tensor:
        """The PDE residual at ``x`` (n, dim), shape (n,)."""

    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        """Points for the soft condition terms (empty under hard constraints)."""
        return {}

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor | None:
        """Mean squared violation of the soft conditions, or None under hard constraints."""
        return None

    @abc.abstractmethod
    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        """Exact or reference solution at ``x`` (n, dim), float64, shape (n,)."""

    @abc.abstractmethod
    def test_points(self) -> np.ndarray:
        """The fixed test set (float64, (n, dim)) on which the L2 relative error is measured."""

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        """Test points and the solution there (computed once per problem instance)."""
        if not hasattr(self, "_test_set"):
            x = self.test_points()
            self._test_set = (x, np.asarray(self.solution(x), dtype=np.float64).reshape(-1))
        return self._test_set

    def __repr__(self) -> str:
        return f"{type(self).__name__}(dim={self.dim})"
