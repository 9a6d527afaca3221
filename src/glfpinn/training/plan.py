"""The optimization plan: stages run one after the other, each an optimizer, an optional
learning-rate scheduler and a number of steps.

``OptimizationPlan([Stage("adamw", 5000, lr=1e-3, scheduler="cosine"), Stage("lbfgs", 500)])``.
Every optimizer is built once, before the first step, and lives for the whole run: resampling
the points never resets its state, and a stage that follows another starts from where the
parameters are.

The parts: the names of optimizers and schedulers (:mod:`.optimizers`), one stage
(:mod:`.stage`), this plan of stages, and one step of a stage with L-BFGS's retry
(:mod:`.step`).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, final

from torch import Tensor
from torch.optim import Optimizer

from glfpinn._checks import check_int
from glfpinn._params import Params
from glfpinn.training.optimizers import DEFAULT_LR, LBFGS_DEFAULTS, OPTIMIZERS, SCHEDULERS
from glfpinn.training.stage import Stage

__all__ = [
    "Stage",
    "OptimizationPlan",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DEFAULT_LR",
    "LBFGS_DEFAULTS",
]


@final
class OptimizationPlan(Params):
    """Stages run in order; a run's length is the sum of their steps.

    The default, ``OptimizationPlan.adam_then_lbfgs(steps, lbfgs_steps, lr)``, is the
    Adam -> L-BFGS schedule of the RAD authors' code (docs/results.md, "The strong plain
    baseline": with the L-BFGS stage a fixed uniform set matches most samplers at laptop budgets).
    """

    def __init__(self, stages: Iterable[Stage]) -> None:
        self.stages = list(stages)
        if not self.stages:
            raise ValueError("stages=[] is not allowed; a plan needs at least one Stage")
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise ValueError(f"{stage!r} is not a Stage")

    @classmethod
    def adam_then_lbfgs(
        cls, steps: int, lbfgs_steps: int = 0, lr: float = DEFAULT_LR
    ) -> OptimizationPlan:
        stages = [Stage("adam", steps, lr=lr)]
        if check_int("lbfgs_steps", lbfgs_steps) > 0:
            stages.append(Stage("lbfgs", lbfgs_steps))
        return cls(stages)

    @property
    def total_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

    def stage_at(self, step: int) -> int:
        """Index of the stage that makes optimizer step ``step`` (0-based)."""
        end = 0
        for index, stage in enumerate(self.stages):
            end += stage.steps
            if step < end:
                return index
        return len(self.stages) - 1

    def build(
        self,
        params: Sequence[Tensor],
        *,
        fused: bool | None = None,
        unknowns: Sequence[Tensor] = (),
    ) -> tuple[list[Optimizer], list[Any]]:
        """Every stage's optimizer and scheduler on the network's ``params`` and an inverse
        problem's ``unknowns``, built now so they all live for the run."""
        built = [stage.build(params, fused=fused, unknowns=unknowns) for stage in self.stages]
        return [opt for opt, _ in built], [sched for _, sched in built]

    def describe(self) -> list[dict[str, Any]]:
        return [stage.describe() for stage in self.stages]

    def __repr__(self) -> str:
        return f"OptimizationPlan({self.stages!r})"
