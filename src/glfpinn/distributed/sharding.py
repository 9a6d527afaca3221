"""How a data-parallel run shares its collocation points, and its resamples, between ranks.

The union of the ranks' points, in rank order, is the run's training set; rank r holds the
r-th of K consecutive slices (sizes differing by at most one). A sampler resamples in one of
two ways (:meth:`glfpinn.Sampler.resamples_per_rank`):

- **per rank**: each rank resamples its own share from its own stream, nothing gathered;
- **whole set**: every rank gathers the union of the points and of their free residuals,
  runs the same draw from the same stream (the single-process one), with the scoring of new
  points split over the ranks (each scores its slice of every batch; the residuals are
  all-gathered), and keeps its slice of the result. The K-rank draw is the single-process
  draw; only the residual evaluations are shared out, which is where a resample's cost is.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import final

import torch
from torch import Tensor

from glfpinn.distributed.group import ProcessGroup

__all__ = ["Sharding", "check_split", "shares"]


def check_split(n: int, world_size: int, per_rank: bool) -> None:
    """Refuse a training set of ``n`` points that ``world_size`` ranks cannot share: resampling
    ``per_rank``, each must hold exactly N/K points (its quota is a fixed share); otherwise
    each needs at least one."""
    k = world_size
    if per_rank and n % k:
        raise ValueError(f"n_points={n} does not split over {k} ranks; give a multiple of {k}")
    if n < k:
        raise ValueError(f"n_points={n} is fewer than the {k} ranks; give at least {k}")


def shares(n: int, world_size: int) -> list[int]:
    """Each rank's number of rows of a set of ``n``: n // K, the first n % K ranks one more."""
    q, extra = divmod(n, world_size)
    return [q + (r < extra) for r in range(world_size)]


@final
class Sharding:
    """The split of a set of ``n`` rows over ``group``'s ranks, for a sampler that resamples
    ``per_rank`` or the whole set."""

    def __init__(self, group: ProcessGroup, per_rank: bool) -> None:
        self.group = group
        self.per_rank = per_rank

    def __repr__(self) -> str:
        return f"Sharding(world_size={self.group.world_size}, per_rank={self.per_rank})"

    def check(self, n: int) -> None:
        """Refuse a training set that the ranks cannot share (:func:`check_split`)."""
        check_split(n, self.group.world_size, self.per_rank)

    def sizes(self, n: int) -> list[int]:
        """Each rank's number of rows of a set of ``n`` (:func:`shares`)."""
        return shares(n, self.group.world_size)

    def rows(self, n: int) -> slice:
        """This rank's rows of a set of ``n``."""
        sizes = self.sizes(n)
        start = sum(sizes[: self.group.rank])
        return slice(start, start + sizes[self.group.rank])

    def gather(self, local: Tensor, n: int) -> Tensor:
        """The whole set of ``n`` rows from every rank's slice ``local``."""
        return self.group.gather_rows(local, self.sizes(n))

    def loss_scale(self, n: int) -> float:
        """The factor on this rank's per-point loss weights that makes the ranks' average of
        their means the mean over the union: K n_r / N (1 when the shares are equal)."""
        return self.group.world_size * self.sizes(n)[self.group.rank] / n

    def split_scoring(self, fn: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
        """``fn`` (residuals at a batch of points, the same batch on every rank), with each
        rank scoring only its slice of the batch and the results all-gathered."""

        def score(x: Tensor) -> Tensor:
            return self.gather(fn(x[self.rows(x.shape[0])]).detach(), x.shape[0])

        return score

    def split_scoring_with_grad(
        self, fn: Callable[[Tensor], tuple[Tensor, Tensor]]
    ) -> Callable[[Tensor], tuple[Tensor, Tensor]]:
        """:meth:`split_scoring` for a function returning (|r|, d(r^2)/dx)."""

        def score(x: Tensor) -> tuple[Tensor, Tensor]:
            n = x.shape[0]
            r, grad = fn(x[self.rows(n)])
            both = torch.cat([r.detach().reshape(-1, 1).to(grad.dtype), grad.detach()], dim=1)
            joined = self.gather(both, n)
            return joined[:, 0].to(r.dtype), joined[:, 1:]

        return score
