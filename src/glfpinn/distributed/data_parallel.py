"""``DataParallel(group)``: one run on K ranks, as a strategy the trainer calls
(:class:`glfpinn.strategy.Strategy`).

Each of the K ranks trains on its own slice of about N/K collocation points, with the same
network, condition points and observations; the gradients and the loss are averaged over the
ranks at every step, so a step is the single-process step on the union of the points. A
resample runs per rank or on the whole set, as the sampler says (:mod:`.sharding`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, final

import torch
from torch import Tensor

from glfpinn.distributed.checkpoint import join, split
from glfpinn.distributed.group import ProcessGroup
from glfpinn.distributed.sharding import Sharding
from glfpinn.strategy import ResampleView, Strategy, stream_seeds

if TYPE_CHECKING:
    from glfpinn.samplers.base import Sampler

__all__ = ["DataParallel", "STOP_POLL_STEPS"]

#: On K CUDA ranks, steps between reads of the ranks' stop flag (each read waits for the
#: device; every rank reads at the same steps, so all still stop after the same one).
STOP_POLL_STEPS = 10


@final
class DataParallel(Strategy):
    """Data parallelism over ``group``'s ranks (:func:`glfpinn.distributed.init_from_env`)."""

    def __init__(self, group: ProcessGroup) -> None:
        if group.world_size < 2:
            raise ValueError(
                f"DataParallel needs 2 ranks or more, the group has {group.world_size}; "
                "use glfpinn.strategy.SingleProcess"
            )
        self.group = group
        #: how the points and the resamples are shared (set by :meth:`setup`)
        self.sharding: Sharding | None = None
        #: the number of training points over every rank
        self.n_total = 0
        self._device = group.device
        #: whether any rank has caught a signal, as the last step's all-reduce said (a 0-d
        #: tensor on the device)
        self._stop: Tensor | None = None

    def __repr__(self) -> str:
        return f"DataParallel(world_size={self.group.world_size}, rank={self.group.rank})"

    @property
    def world_size(self) -> int:
        return self.group.world_size

    @property
    def is_main(self) -> bool:
        return self.group.is_main

    @property
    def per_rank(self) -> bool:
        """Whether the sampler resamples per rank (each rank its own stream)."""
        return self._sharding.per_rank

    @property
    def _sharding(self) -> Sharding:
        if self.sharding is None:
            raise RuntimeError("DataParallel.setup has not been called")
        return self.sharding

    def setup(self, sampler: Sampler, n_points: int, device: torch.device) -> torch.device:
        self.sharding = Sharding(self.group, sampler.resamples_per_rank())
        self.sharding.check(n_points)
        if device.type != self.group.device.type:
            raise ValueError(
                f"device={str(device)!r} but the process group runs on "
                f"{self.group.device.type}; give the device the group was started with"
            )
        self.n_total = n_points
        self._device = self.group.device  # this rank's card: cuda:LOCAL_RANK
        return self._device

    def seeds(self, seed: int) -> tuple[int, int, int]:
        return stream_seeds(seed, self.group.rank if self.per_rank else 0)

    def initial_points(self, sampler, n_points, domain, generator, dtype, name):
        if self.per_rank:
            share = n_points // self.group.world_size
            points = sampler.initial_points(share, domain, generator, dtype)
            if points.shape[0] != share:
                raise ValueError(
                    f"sampler {name!r} resamples per rank but drew "
                    f"{points.shape[0]} initial points for a share of {share}"
                )
            return points, sampler.init_state(points)
        # every rank draws the whole set from the shared stream and keeps its slice
        points = sampler.initial_points(n_points, domain, generator, dtype)
        state = sampler.init_state(points)
        self.n_total = int(points.shape[0])  # a sampler may round N (to a grid, ...)
        self._sharding.check(self.n_total)
        return points[self._sharding.rows(self.n_total)], state

    def broadcast(self, condition_points: dict[str, Tensor]) -> dict[str, Tensor]:
        # the condition terms are replicated, not split: every rank holds rank 0's points
        # (each rank draws its own first, so every rank's stream advances alike), so their
        # gradient, averaged over identical copies, is the single-process one
        return self.group.broadcast(condition_points)

    def reduce(self, params: Sequence[Tensor], loss: Tensor, stop: bool) -> Tensor:
        # An explicit all-reduce of the gradients rather than DistributedDataParallel: the
        # residual differentiates the network with respect to its inputs (nested autograd,
        # torch.func engines calling the module functionally) and L-BFGS calls the closure
        # several times per step, neither of which DDP's per-forward hooks follow, and the
        # compiled loss captures the bare module. Every rank's loss is the mean over its N/K
        # points (plus the replicated condition and data terms), so the ranks' mean is the
        # loss and gradient on the union. A caught signal rides along, so every rank stops
        # after the same step. The same parameters have a gradient on every rank.
        grads = [p.grad for p in params if p.grad is not None]
        loss, self._stop = self.group.average(grads, loss, stop)
        return loss

    def begin(self) -> None:
        self._stop = None

    def stopping(self, stop: bool, step: int) -> bool:
        """Any rank's signal, as the last step's all-reduce told every rank alike (read every
        step on the CPU, where the all-reduce has waited anyway, every ``STOP_POLL_STEPS`` on
        CUDA)."""
        if self._stop is None:
            return False
        return (self._device.type == "cpu" or step % STOP_POLL_STEPS == 0) and bool(self._stop)

    def any(self, flag: bool) -> bool:
        return self.group.any(flag)

    def point_weights(self, weights: Tensor | None, points: Tensor) -> Tensor | None:
        """The sampler's weights times K n_r / N when the ranks' shares differ in size (a
        growing set), so that the ranks' average of their weighted means is the weighted mean
        over the union."""
        scale = self._sharding.loss_scale(self.n_total)
        if scale == 1.0:
            return weights
        ones = torch.ones(points.shape[0], dtype=points.dtype, device=points.device)
        return (ones if weights is None else weights) * scale

    def resample_view(
        self,
        points: Tensor,
        residuals: Tensor | None,
        score: Callable[[Tensor], Tensor],
        score_with_grad: Callable[[Tensor], tuple[Tensor, Tensor]],
    ) -> ResampleView:
        sharding = self._sharding
        if sharding.per_rank:
            return points, residuals, score, score_with_grad, self.group
        # every rank makes the single-process draw, scoring split over them
        points = sharding.gather(points, self.n_total)
        if residuals is not None:
            residuals = sharding.gather(residuals, self.n_total)
        return (
            points,
            residuals,
            sharding.split_scoring(score),
            sharding.split_scoring_with_grad(score_with_grad),
            None,
        )

    def keep(
        self, points: Tensor, weights: Tensor | None, share: int, who: str
    ) -> tuple[Tensor, Tensor | None, int]:
        sharding = self._sharding
        n_total = int(points.shape[0])
        if sharding.per_rank:
            if n_total != share:
                raise RuntimeError(
                    f"sampler {who} resamples per rank but changed this rank's "
                    f"share from {share} to {n_total} points"
                )
            n_total *= self.group.world_size
        else:
            sharding.check(n_total)
            rows = sharding.rows(n_total)
            points = points[rows]
            weights = None if weights is None else weights[rows]
        self.n_total = n_total
        return points, weights, n_total

    def gather(self, points: Tensor, residuals: Tensor | None) -> tuple[Tensor, Tensor | None]:
        joined = self._sharding.gather(points, self.n_total)
        # every rank has residuals or none alike: all step, resample and load together
        if residuals is None:
            return joined, None
        return joined, self._sharding.gather(residuals, self.n_total)

    def total_points(self, points: Tensor) -> int:
        return self.n_total

    def sum_counts(self, counts: Sequence[int], device: torch.device) -> tuple[int, ...]:
        total = self.group.sum(torch.tensor(list(counts), dtype=torch.int64, device=device))
        return tuple(int(v) for v in total.tolist())

    def join(self, state: dict[str, Any]) -> dict[str, Any]:
        return join(state, self.group, self.per_rank)

    def split(self, state: dict[str, Any]) -> dict[str, Any]:
        self.n_total = int(state["points"].shape[0])  # the joined state holds every rank's
        return split(state, self.group, self.per_rank)
