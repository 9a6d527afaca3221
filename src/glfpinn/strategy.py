"""How a run is distributed: a strategy object the training loop calls, never an ``if`` on a
process group inside the loop (Lightning's ``Strategy`` / ``SingleDeviceStrategy`` are the
model).

A :class:`Strategy` owns everything that differs between one process and K ranks:

- the random streams (:meth:`~Strategy.seeds`), the initial points
  (:meth:`~Strategy.initial_points`) and the condition points every rank shares
  (:meth:`~Strategy.broadcast`);
- the reduction of a step's gradients and loss, and the stop decision
  (:meth:`~Strategy.reduce`, :meth:`~Strategy.stopping`, :meth:`~Strategy.any`);
- what a sampler sees at a resample and what this rank keeps of its draw
  (:meth:`~Strategy.resample_view`, :meth:`~Strategy.keep`), and the loss scale of unequal
  shares (:meth:`~Strategy.point_weights`);
- count sums, and joining and splitting checkpoints (:meth:`~Strategy.sum_counts`,
  :meth:`~Strategy.join`, :meth:`~Strategy.split`).

:class:`SingleProcess` is the null object: every method is the identity, and it never imports
:mod:`glfpinn.distributed` (except to redistribute a checkpoint written on K ranks).
``glfpinn.distributed.DataParallel(group)`` is the real one. This module sits beside both
``glfpinn.training`` and ``glfpinn.distributed``, so the dependency points one way: both import
it, and distributed/ never imports training/.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, final

import numpy as np
import torch
from torch import Tensor

if TYPE_CHECKING:
    from glfpinn.distributed import ProcessGroup
    from glfpinn.domains import Domain
    from glfpinn.samplers.base import Sampler, SamplerState

__all__ = ["Strategy", "SingleProcess", "ResampleView", "stream_seeds"]

#: What a sampler is handed at a resample: the points, their free residuals, the functions that
#: score new points, and the group a per-rank sampler reduces over (None: it sees the whole set).
ResampleView = tuple[
    Tensor,
    "Tensor | None",
    Callable[[Tensor], Tensor],
    Callable[[Tensor], tuple[Tensor, Tensor]],
    "ProcessGroup | None",
]


def stream_seeds(seed: int, rank: int = 0) -> tuple[int, int, int]:
    """Independent streams for the network's initialisation, for sampling and for the held-out
    validation points (a prefix of the same SeedSequence, so the first two never changed).

    On K ranks the initialisation and validation streams are shared (every rank builds the same
    network and measures it on the same points). So is sampling for a sampler that draws from
    the whole set (every rank makes the single-process draw, ``rank`` 0 here); a sampler that
    resamples per rank samples per rank: rank 0 keeps the single-process stream, and rank
    r > 0 samples from the SeedSequence's r-th spawned child
    (``SeedSequence(seed).spawn(r + 1)[r]``), which numpy makes independent of its parent's
    and its siblings' streams."""
    a, b, c = np.random.SeedSequence(seed).generate_state(3)
    if rank > 0:
        (b,) = np.random.SeedSequence(seed, spawn_key=(rank,)).generate_state(1)
    return int(a), int(b), int(c)


class Strategy(abc.ABC):
    """Where a run's processes differ, as one object the trainer calls.

    The trainer calls :meth:`setup` once, before anything else; every other method may be a
    collective on K ranks (every rank calls it, in the same order: the trainer calls them only
    on paths all ranks take).
    """

    #: the process group (None in a single process): what run directories and samplers read
    group: ProcessGroup | None = None

    @property
    def world_size(self) -> int:
        return 1

    @property
    def is_main(self) -> bool:
        """Whether this process writes the run's files and shows its progress."""
        return True

    @abc.abstractmethod
    def setup(self, sampler: Sampler, n_points: int, device: torch.device) -> torch.device:
        """Check the run can be distributed so; return the device this process trains on."""

    @abc.abstractmethod
    def seeds(self, seed: int) -> tuple[int, int, int]:
        """The initialisation, sampling and validation seeds of this process
        (:func:`stream_seeds`)."""

    @abc.abstractmethod
    def initial_points(
        self,
        sampler: Sampler,
        n_points: int,
        domain: Domain,
        generator: torch.Generator,
        dtype: torch.dtype,
        name: str,
    ) -> tuple[Tensor, SamplerState]:
        """This process's initial training points and the sampler's initial state."""

    @abc.abstractmethod
    def broadcast(self, condition_points: dict[str, Tensor]) -> dict[str, Tensor]:
        """The condition points every process trains on."""

    @abc.abstractmethod
    def reduce(self, params: Sequence[Tensor], loss: Tensor, stop: bool) -> Tensor:
        """After the backward pass: the gradients of ``params`` and ``loss`` over the whole
        run (in place for the gradients; the loss returned), with a ``stop`` request riding
        along for :meth:`stopping`."""

    @abc.abstractmethod
    def begin(self) -> None:
        """Forget the last stop decision (at the start of ``fit``)."""

    @abc.abstractmethod
    def stopping(self, stop: bool, step: int) -> bool:
        """Whether a signal stops training now (``stop``: one caught in this process)."""

    @abc.abstractmethod
    def any(self, flag: bool) -> bool:
        """Whether ``flag`` holds in any process."""

    @abc.abstractmethod
    def point_weights(self, weights: Tensor | None, points: Tensor) -> Tensor | None:
        """The loss weights of this process's ``points`` (the sampler's ``weights``, scaled
        when the processes' shares differ in size)."""

    @abc.abstractmethod
    def resample_view(
        self,
        points: Tensor,
        residuals: Tensor | None,
        score: Callable[[Tensor], Tensor],
        score_with_grad: Callable[[Tensor], tuple[Tensor, Tensor]],
    ) -> ResampleView:
        """What the sampler resamples from (see :data:`ResampleView`)."""

    @abc.abstractmethod
    def keep(
        self, points: Tensor, weights: Tensor | None, share: int, who: str
    ) -> tuple[Tensor, Tensor | None, int]:
        """This process's part of a resample's ``points`` and ``weights`` (``share``: its
        number of points before it), and the run's number of training points after it."""

    @abc.abstractmethod
    def gather(self, points: Tensor, residuals: Tensor | None) -> tuple[Tensor, Tensor | None]:
        """The training points and last residuals of every process, joined in rank order."""

    @abc.abstractmethod
    def sum_counts(self, counts: Sequence[int], device: torch.device) -> tuple[int, ...]:
        """``counts`` summed over the processes."""

    @abc.abstractmethod
    def total_points(self, points: Tensor) -> int:
        """The training points over every process, this process holding ``points`` (no
        collective: any rank may ask)."""

    @abc.abstractmethod
    def join(self, state: dict[str, Any]) -> dict[str, Any]:
        """The whole run's checkpoint from this process's ``state``."""

    @abc.abstractmethod
    def split(self, state: dict[str, Any]) -> dict[str, Any]:
        """This process's part of a whole run's checkpoint."""


@final
class SingleProcess(Strategy):
    """One process: the null strategy. Nothing is reduced, gathered, sliced or broadcast."""

    def __repr__(self) -> str:
        return "SingleProcess()"

    def setup(self, sampler: Sampler, n_points: int, device: torch.device) -> torch.device:
        return device

    def seeds(self, seed: int) -> tuple[int, int, int]:
        return stream_seeds(seed)

    def initial_points(self, sampler, n_points, domain, generator, dtype, name):
        points = sampler.initial_points(n_points, domain, generator, dtype)
        return points, sampler.init_state(points)

    def broadcast(self, condition_points: dict[str, Tensor]) -> dict[str, Tensor]:
        return condition_points

    def reduce(self, params: Sequence[Tensor], loss: Tensor, stop: bool) -> Tensor:
        return loss

    def begin(self) -> None:
        pass

    def stopping(self, stop: bool, step: int) -> bool:
        return stop

    def any(self, flag: bool) -> bool:
        return flag

    def point_weights(self, weights: Tensor | None, points: Tensor) -> Tensor | None:
        return weights

    def resample_view(self, points, residuals, score, score_with_grad) -> ResampleView:
        return points, residuals, score, score_with_grad, None

    def keep(self, points, weights, share, who):
        return points, weights, int(points.shape[0])

    def gather(self, points: Tensor, residuals: Tensor | None) -> tuple[Tensor, Tensor | None]:
        return points, residuals

    def sum_counts(self, counts: Sequence[int], device: torch.device) -> tuple[int, ...]:
        return tuple(counts)

    def total_points(self, points: Tensor) -> int:
        return int(points.shape[0])

    def join(self, state: dict[str, Any]) -> dict[str, Any]:
        return state

    def split(self, state: dict[str, Any]) -> dict[str, Any]:
        if int(state.get("world_size", 1)) <= 1:
            return state
        # a checkpoint of K ranks, redistributed onto one process (or refused)
        from glfpinn.distributed.checkpoint import split

        return split(state, None, False)
