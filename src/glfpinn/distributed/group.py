"""The process group of a data-parallel run and the few collectives the trainer and the samplers
need.

A run on K ranks is K processes started by ``torchrun`` (or ``glfpinn train --nproc K``), which
describe it in the environment: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR`` and
``MASTER_PORT``. :func:`init_from_env` reads it and joins ``torch.distributed``'s default group:
gloo on the CPU, NCCL on CUDA with each rank on its own ``cuda:LOCAL_RANK``.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, final

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = ["ProcessGroup", "init_from_env", "world_size_from_env"]

#: What torchrun sets for every rank, and what a rank needs to join the group.
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


def _env_int(name: str, default: int | None = None) -> int:
    text = os.environ.get(name)
    if text is None:
        if default is None:
            raise ValueError(f"{name} is not set; start the ranks with torchrun or --nproc")
        return default
    try:
        value = int(text)
    except ValueError:
        raise ValueError(f"{name}={text!r} in the environment is not an integer") from None
    if value < 0:
        raise ValueError(f"{name}={value} in the environment must be >= 0")
    return value


def world_size_from_env() -> int:
    """``WORLD_SIZE`` as torchrun sets it; 1 when unset (a single process)."""
    return max(_env_int("WORLD_SIZE", 1), 1)


@final
@dataclass(frozen=True)
class ProcessGroup:
    """This process's place in a run on ``world_size`` ranks, and its device.

    Every collective below must be called by every rank, in the same order: the trainer calls
    them only on paths all ranks take (a training step, a resample, the end of ``fit``).
    """

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0: the one that writes the run directory."""
        return self.rank == 0

    @property
    def backend(self) -> str:
        return "nccl" if self.device.type == "cuda" else "gloo"

    def average(self, tensors: list[Tensor], loss: Tensor, stop: bool) -> tuple[Tensor, Tensor]:
        """Replace every tensor of ``tensors`` (the gradients) by its mean over the ranks, in
        place; return the mean of ``loss`` (0-d) and whether any rank asked to ``stop`` (a 0-d
        bool tensor, left on the device: reading it waits for the device). One all-reduce of
        one flat buffer, the loss and the stop request riding along, so a step costs a single
        round of messages and every rank learns of a signal after the same step."""
        extra = torch.stack([loss.detach().reshape(()), torch.full_like(loss.detach(), stop)])
        flat = torch.cat([t.reshape(-1) for t in tensors] + [extra.reshape(-1)])
        dist.all_reduce(flat)
        stopping = flat[-1] > 0  # before the division: any rank's request counts
        flat /= self.world_size
        offset = 0
        for t in tensors:
            t.copy_(flat[offset : offset + t.numel()].view_as(t))
            offset += t.numel()
        return flat[offset], stopping

    def any(self, flag: bool) -> bool:
        """Whether ``flag`` is true on any rank."""
        return bool(self.sum(torch.tensor([int(flag)], device=self.device))[0] > 0)

    def sum(self, values: Tensor) -> Tensor:
        """The elementwise sum of ``values`` over the ranks (a new tensor)."""
        out = values.clone()
        dist.all_reduce(out)
        return out

    def all_gather(self, value: Tensor) -> Tensor:
        """Every rank's ``value`` (same shape on every rank), stacked: shape (K, *value.shape)."""
        out = [torch.empty_like(value) for _ in range(self.world_size)]
        dist.all_gather(out, value.contiguous())
        return torch.stack(out)

    def broadcast(self, tensors: dict[str, Tensor]) -> dict[str, Tensor]:
        """Rank 0's tensors on every rank (the keys and shapes must agree)."""
        out = {}
        for name in sorted(tensors):  # the same order on every rank
            t = tensors[name].contiguous().clone()
            dist.broadcast(t, src=0)
            out[name] = t
        return out

    def gather_rows(self, local: Tensor, sizes: list[int]) -> Tensor:
        """The rows of every rank's ``local`` (rank r holding ``sizes[r]`` of them), joined in
        rank order: the whole set, on every rank. Shares of unequal size are padded to the
        largest for the all-gather and trimmed after."""
        if local.shape[0] != sizes[self.rank]:
            raise ValueError(
                f"rank {self.rank} holds {local.shape[0]} rows, not {sizes[self.rank]}"
            )
        width = max(sizes)
        padded = local.new_zeros((width, *local.shape[1:]))
        padded[: local.shape[0]] = local
        parts = self.all_gather(padded)
        return torch.cat([parts[r, :n] for r, n in enumerate(sizes)])

    def broadcast_object(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (any picklable value; the others pass anything) on every rank."""
        box = [obj if self.is_main else None]
        dist.broadcast_object_list(box, src=0, device=self._object_device)
        return box[0]

    def all_gather_object(self, obj: Any) -> list[Any]:
        """Every rank's ``obj`` (any picklable value), by rank, on every rank."""
        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def on_main(self, fn: Callable[[], Any]) -> Any:
        """``fn()`` run on rank 0 alone and its value on every rank; a ValueError it raises
        (a one-line refusal) is raised on every rank, so no rank waits for a peer that
        failed."""
        outcome: tuple[str, Any] = ("", None)
        if self.is_main:
            try:
                outcome = ("value", fn())
            except ValueError as err:
                outcome = ("error", str(err))
        kind, value = self.broadcast_object(outcome)
        if kind == "error":
            raise ValueError(value)
        return value

    @property
    def _object_device(self) -> torch.device | None:
        # NCCL moves pickled objects through the card; gloo through host memory
        return self.device if self.device.type == "cuda" else None

    def barrier(self) -> None:
        """Wait until every rank gets here."""
        dist.barrier()

    def close(self) -> None:
        """Leave the group after a failure, tearing the connections down at once: the failed
        peers may never come to a barrier. An orderly end does not close the group: every
        rank meets the others at a :meth:`barrier` and ends its process (the CLI and
        ``python -m glfpinn``), since destroying gloo's objects while a peer still writes the
        run's last files can abort that peer ("terminate called without an active
        exception")."""
        if not dist.is_initialized():
            return
        dist.destroy_process_group()


def init_from_env(device: str | torch.device = "auto") -> ProcessGroup | None:
    """Join the group torchrun's environment describes; None when ``WORLD_SIZE`` is unset or 1
    (a single process: nothing distributed is initialised).

    ``device``: ``"cpu"`` (gloo), ``"cuda"`` (NCCL, this rank on ``cuda:LOCAL_RANK``) or
    ``"auto"`` (CUDA when present). A numbered CUDA device is refused: the ranks share the
    machine's cards by their local rank.
    """
    world_size = world_size_from_env()
    if world_size == 1:
        return None
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise ValueError(
            f"WORLD_SIZE={world_size} but {', '.join(missing)} not set; "
            "start the ranks with torchrun or glfpinn train --nproc K"
        )
    rank, local_rank = _env_int("RANK"), _env_int("LOCAL_RANK")
    if rank >= world_size:
        raise ValueError(f"RANK={rank} must be below WORLD_SIZE={world_size}")
    name = str(device)
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ValueError(
                f"LOCAL_RANK={local_rank} but this machine has {torch.cuda.device_count()} "
                "CUDA devices; start at most one rank per card"
            )
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    elif name == "cpu":
        dev = torch.device("cpu")
    else:
        raise ValueError(
            f"device={name!r} on {world_size} ranks is not allowed; allowed: cpu, cuda, auto "
            "(each rank takes cuda:LOCAL_RANK)"
        )
    group = ProcessGroup(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)
    # device_id binds NCCL's communicator to this rank's card at once (no lazy guess)
    dist.init_process_group(
        group.backend,
        rank=rank,
        world_size=world_size,
        device_id=dev if dev.type == "cuda" else None,
    )
    # every rank has connected before any can leave: a rank that fails at once must not
    # close its end while a peer still sets up its connection to it
    dist.barrier()
    return group
