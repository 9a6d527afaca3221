"""Residuals at points other than the training set: chunked, counted and timed.

The trainer hands a :class:`Scorer` to the samplers that must score new points (RAD, GLF-D,
PACMANN), so their cost shows up in the run's result; users' own loops and sampler tests use the
same object (``Scorer(lambda x: problem.residual(model, x))``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_int
from glfpinn.training.costs import Costs
from glfpinn.training.scores import Score, check_score, reduce_residual, squared_score

__all__ = ["Scorer", "DEFAULT_CHUNK"]

#: Points per residual evaluation: bounds the memory of scoring large candidate sets.
DEFAULT_CHUNK = 20_000


@final
class Scorer:
    """``|residual_fn(x)|`` in chunks of ``chunk_size`` rows, with no graph kept.

    Every call adds the number of points to ``costs.residual_evals`` and its time to
    ``costs.scoring_time_s``; pass the run's :class:`Costs` to count into it (a fresh one
    otherwise). ``residual_fn`` maps ``(n, d)`` to ``(n,)`` row by row; gradients stay enabled
    inside because derivative operators need them, and each chunk's graph is dropped at once.

    A system's ``residual_fn`` maps to ``(n, n_eq)``, one column per equation: ``score``
    reduces them to one score per point (:mod:`.scores`: ``"l2"``, ``"max"``,
    ``{"weights": ...}``); a scalar residual scores ``|r|``.
    """

    def __init__(
        self,
        residual_fn: Callable[[Tensor], Tensor],
        chunk_size: int = DEFAULT_CHUNK,
        costs: Costs | None = None,
        score: object = "l2",
    ) -> None:
        self.residual_fn = residual_fn
        self.score: Score = score if isinstance(score, tuple) else check_score(score, None)
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        self.costs = Costs() if costs is None else costs

    @property
    def evals(self) -> int:
        """Points scored so far (with or without gradient)."""
        return self.costs.residual_evals

    def __call__(self, x: Tensor) -> Tensor:
        """``|r|`` (a system's score) at ``x``, shape ``(n,)``."""
        t0 = time.perf_counter()
        parts = []
        for chunk in x.split(self.chunk_size):
            with torch.enable_grad():
                parts.append(reduce_residual(self.residual_fn(chunk).detach(), self.score))
        self._count(x, t0)
        return torch.cat(parts) if parts else x.new_empty(0)

    def with_grad(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``|r|`` and ``d(r^2)/dx`` at ``x``, counted like a call."""
        t0 = time.perf_counter()
        rs, grads = [], []
        for chunk in x.split(self.chunk_size):
            xc = chunk.detach().requires_grad_(True)
            with torch.enable_grad():
                r = self.residual_fn(xc)
                if r.ndim == 1:
                    (g,) = torch.autograd.grad((r**2).sum(), xc)
                    rs.append(r.detach().abs())
                else:  # a system: the score's square, differentiated
                    sq = squared_score(r, self.score)
                    (g,) = torch.autograd.grad(sq.sum(), xc)
                    rs.append(sq.detach().sqrt())
            grads.append(g.detach())
        self._count(x, t0)
        if not rs:
            return x.new_empty(0), x.new_empty(0, x.shape[1])
        return torch.cat(rs), torch.cat(grads)

    def _count(self, x: Tensor, t0: float) -> None:
        self.costs.residual_evals += int(x.shape[0])
        self.costs.scoring_time_s += time.perf_counter() - t0

    def __repr__(self) -> str:
        return f"Scorer({self.residual_fn!r}, chunk_size={self.chunk_size})"
