"""A trainer's checkpoint: the state's ``state_dict`` plus the callbacks', joined over the
processes by the strategy; and loading one back.

On K ranks both are collectives (every rank calls them): the joined checkpoint holds every
rank's points, sampler state and generator (:mod:`glfpinn.distributed.checkpoint`), and each
rank takes its own part back. A checkpoint of K ranks loads into a run on another number of
ranks (one process included) when its sampler draws from the whole set, and is refused when it
resamples per rank.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch.optim import Optimizer

from glfpinn.strategy import Strategy
from glfpinn.training.callbacks import Callback, ProgressBar
from glfpinn.training.plan import OptimizationPlan
from glfpinn.training.stage import Stage
from glfpinn.training.state import TrainState

__all__ = ["state_dict", "load_state_dict", "set_fused", "stateful"]


def stateful(callbacks: Sequence[Callback]) -> list[Callback]:
    """The callbacks whose state a checkpoint holds: the progress bar is rank 0's alone and
    keeps no state, so leaving it out lines up the callbacks of every rank."""
    return [cb for cb in callbacks if not isinstance(cb, ProgressBar)]


def state_dict(
    state: TrainState, callbacks: Sequence[Callback], strategy: Strategy
) -> dict[str, Any]:
    """Everything that evolves during training (the state's, plus callbacks'), of the whole
    run."""
    own = {**state.state_dict(), "callbacks": [cb.state_dict() for cb in stateful(callbacks)]}
    return strategy.join(own)


def load_state_dict(
    state: TrainState,
    callbacks: Sequence[Callback],
    strategy: Strategy,
    plan: OptimizationPlan,
    fused: bool,
    saved: dict[str, Any],
) -> None:
    """Load ``saved`` (from :func:`state_dict`): this process's part of it into ``state``, and
    the callbacks' states into ``callbacks``."""
    saved = strategy.split(saved)
    state.load_state_dict(saved)
    for stage, optimizer in zip(plan.all_stages, state.optimizers, strict=True):
        set_fused(optimizer, stage, fused)
    for cb, cb_state in zip(stateful(callbacks), saved.get("callbacks", [])):
        cb.load_state_dict(cb_state)


def set_fused(optimizer: Optimizer, stage: Stage, fused: bool | None) -> None:
    """A checkpoint's param groups carry the implementation the run used; the resuming run's
    mode decides (unless the stage's options chose one)."""
    if "fused" in stage.options or isinstance(stage.optimizer, Optimizer):
        return
    for group in optimizer.param_groups:
        if "fused" in group and not isinstance(optimizer, torch.optim.LBFGS):
            group["fused"] = fused or None
