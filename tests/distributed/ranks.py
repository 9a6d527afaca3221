"""Run a function on 2 CPU ranks (gloo), each a spawned process joining the group the way
torchrun's environment makes it join, and collect what each rank returns."""

from __future__ import annotations

import faulthandler
import os
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from helpers import Poisson1D

from glfpinn import Evaluator, Sampler, Trainer
from glfpinn.training import Every, make_trainer


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank(rank: int, fn: Callable, nproc: int, port: int, out: str, args: tuple) -> None:
    os.environ.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(nproc),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    torch.set_num_threads(1)
    faulthandler.enable(all_threads=True)  # a rank that aborts in C++ shows where it was
    from glfpinn.distributed import init_from_env

    group = init_from_env("cpu")
    try:
        torch.save(fn(group, *args), Path(out) / f"rank{rank}.pt")
    except BaseException:
        group.close()
        raise
    # as glfpinn's own ranks do (cli.py, __main__.py): leave together, then end the process
    # without destroying gloo's objects, which can abort a rank that succeeded
    if dist.is_initialized():  # fn may have closed the group itself
        group.barrier()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def run_ranks(fn: Callable, tmp: Path, *args: Any, nproc: int = 2) -> list[Any]:
    """``fn(group, *args)`` on each of ``nproc`` ranks; their return values, by rank.
    ``fn`` must live at a module's top level (a spawned process imports it by name)."""
    mp.spawn(_rank, args=(fn, nproc, _free_port(), str(tmp), args), nprocs=nproc, join=True)
    return [torch.load(tmp / f"rank{r}.pt", weights_only=False) for r in range(nproc)]


def poisson_trainer(sampler: Sampler, group: Any = None, **options: Any) -> Trainer:
    """A small float64 run on Poisson1D, resampling every 2 steps: what the distributed tests
    train on 1 and 2 ranks alike (``options`` are the Trainer's: plan, n_points, seed, ...)."""
    return make_trainer(
        Poisson1D(),
        sampler,
        schedule=Every(2),
        hidden=(8,),
        dtype="float64",
        compile=False,
        evaluator=Evaluator(n_validation=16),
        group=group,
        **options,
    )
