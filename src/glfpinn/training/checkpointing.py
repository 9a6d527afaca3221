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
from torch import Tensor
from torch.optim import Optimizer

from glfpinn.strategy import Strategy
from glfpinn.training.callbacks import Callback, ProgressBar
from glfpinn.training.plan import OptimizationPlan
from glfpinn.training.stage import Stage
from glfpinn.training.state import TrainState

__all__ = ["state_dict", "load_state_dict", "check_fits", "set_fused", "stateful"]


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
    conserves_population: bool = False,
) -> None:
    """Load ``saved`` (from :func:`state_dict`): this process's part of it into ``state``, and
    the callbacks' states into ``callbacks``. A state that does not fit the run (another
    dtype, dimension or, for a sampler that ``conserves_population``, number of points) is
    refused in one line before anything is loaded."""
    saved = strategy.split(saved)
    check_fits(saved, state, conserves_population)
    state.load_state_dict(saved)
    for stage, optimizer in zip(plan.all_stages, state.optimizers, strict=True):
        set_fused(optimizer, stage, fused)
    for cb, cb_state in zip(stateful(callbacks), saved.get("callbacks", [])):
        cb.load_state_dict(cb_state)


def check_fits(saved: dict[str, Any], state: TrainState, conserves_population: bool) -> None:
    """Refuse ``saved`` (this process's part) where it cannot be ``state``'s: loading a float64
    state into a float32 run, or points of another dimension or count, would fail (or
    silently change the run) steps later."""
    points = saved.get("points") if isinstance(saved, dict) else None
    if not isinstance(points, Tensor) or points.ndim != 2:
        raise ValueError("the state holds no training points of shape (n, dim)")
    run = state.points
    if points.dtype != run.dtype:
        raise ValueError(
            f"the state's points are {str(points.dtype).removeprefix('torch.')}, this run "
            f"trains in {str(run.dtype).removeprefix('torch.')}; give it the state's dtype"
        )
    if points.shape[1] != run.shape[1]:
        raise ValueError(
            f"the state's points have {points.shape[1]} coordinates, this run's problem "
            f"{run.shape[1]}"
        )
    if conserves_population and points.shape[0] != run.shape[0]:
        raise ValueError(
            f"the state holds {points.shape[0]} training points, this run {run.shape[0]} "
            "(its sampler keeps the number of points): give it the state's n_points"
        )
    for name in ("weights", "last_residuals"):
        value = saved.get(name)
        if isinstance(value, Tensor) and value.shape[:1] != points.shape[:1]:
            raise ValueError(
                f"the state's {name} has {value.shape[0] if value.ndim else 0} rows for "
                f"{points.shape[0]} points; the state is damaged"
            )


def set_fused(optimizer: Optimizer, stage: Stage, fused: bool | None) -> None:
    """A checkpoint's param groups carry the implementation the run used; the resuming run's
    mode decides (unless the stage's options chose one)."""
    if "fused" in stage.options or isinstance(stage.optimizer, Optimizer):
        return
    for group in optimizer.param_groups:
        if "fused" in group and not isinstance(optimizer, torch.optim.LBFGS):
            group["fused"] = fused or None
