"""The shortcuts of a run, translated into the parts a :class:`~glfpinn.training.Trainer` takes.

``make_trainer(problem, sampler, steps=5000, lbfgs_steps=500, hidden=(64, 64), group=group)``
is ``Trainer(problem, sampler, plan=OptimizationPlan.adam_then_lbfgs(5000, 500),
model=MLPSpec((64, 64)), strategy=strategy_for(group))``. :func:`glfpinn.train` and the run
config (:func:`glfpinn.runs.build_trainer`) build their trainers here; the Trainer itself only
takes parts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from glfpinn import problems, samplers
from glfpinn.problems.base import Problem
from glfpinn.samplers.base import Sampler
from glfpinn.strategy import SingleProcess, Strategy
from glfpinn.training.callbacks import ProgressBar
from glfpinn.training.network import ModelSpec, network_spec
from glfpinn.training.plan import OptimizationPlan
from glfpinn.training.shortcuts import resolve_plan
from glfpinn.training.stage import Stage
from glfpinn.training.trainer import Trainer

if TYPE_CHECKING:  # a single-process run never imports glfpinn.distributed
    from glfpinn.distributed import ProcessGroup

__all__ = ["make_trainer", "strategy_from"]


def strategy_from(group: ProcessGroup | None, strategy: Strategy | None = None) -> Strategy:
    """``strategy``, or the one for ``group``: data-parallel on 2 ranks or more, else one
    process (a group of one rank runs exactly the single-process code)."""
    if group is None or group.world_size == 1:
        return SingleProcess() if strategy is None else strategy
    if strategy is not None:
        raise ValueError("give group or strategy, not both")
    from glfpinn.distributed import DataParallel

    return DataParallel(group)


def make_trainer(
    problem: Problem | str,
    sampler: Sampler | str,
    *,
    steps: int | None = None,
    lbfgs_steps: int | None = None,
    lr: float | None = None,
    plan: OptimizationPlan | Sequence[Stage] | None = None,
    model: ModelSpec | None = None,
    hidden: Sequence[int] | None = None,
    activation: str | None = None,
    fourier_features: int = 0,
    fourier_scale: float = 1.0,
    group: ProcessGroup | None = None,
    strategy: Strategy | None = None,
    progress: bool = False,
    **parts: Any,
) -> Trainer:
    """A :class:`Trainer` from the shortcuts and the parts.

    Args:
        problem, sampler: the parts, or their registry names (``"burgers"``, ``"glf-robust"``:
            the registered defaults, as ``glfpinn train --problem burgers`` builds them).
        steps, lbfgs_steps, lr: the default plan, ``steps`` Adam steps at ``lr`` then
            ``lbfgs_steps`` L-BFGS iterations; or give ``plan`` (not both; one rule for the
            builder and the run config: :func:`~glfpinn.training.shortcuts.resolve_plan`).
        hidden, activation, fourier_features, fourier_scale: the problem's MLP (widths,
            ``tanh``/``sin``/``silu``/``gelu``, random Fourier features); refused with ``model``.
        group: the process group of a data-parallel run (:func:`glfpinn.distributed.
            init_from_env`; None or one rank: a single process), or give ``strategy``.
        progress: show a progress bar (on rank 0 alone).
        **parts: the Trainer's own arguments (n_points, schedule, evaluator, loss_weights,
            callbacks, seed, device, dtype, compile, eval_every, n_condition, score_chunk,
            sampler_name).
    """
    if isinstance(problem, str):
        problem = problems.get(problem)
    if isinstance(sampler, str):
        parts.setdefault("sampler_name", sampler)
        sampler = samplers.get(sampler)
    strategy = strategy_from(group, strategy)
    callbacks = list(parts.pop("callbacks", ()))
    if progress and strategy.is_main:
        callbacks.append(ProgressBar())
    return Trainer(
        problem,
        sampler,
        plan=resolve_plan(plan, steps, lbfgs_steps, lr),
        model=network_spec(
            model,
            hidden=hidden,
            activation=activation,
            fourier_features=fourier_features,
            fourier_scale=fourier_scale,
        ),
        strategy=strategy,
        callbacks=callbacks,
        **parts,
    )
