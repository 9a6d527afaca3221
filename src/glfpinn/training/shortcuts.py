"""The short form of the default plan, ``steps`` / ``lbfgs_steps`` / ``lr``, or stages: the one
rule and its one default, for the trainer, ``glfpinn.train`` and the run config alike."""

from __future__ import annotations

from collections.abc import Sequence

from glfpinn._checks import check_positive
from glfpinn.training.plan import DEFAULT_LR, OptimizationPlan, Stage

__all__ = ["DEFAULT_ADAM_STEPS", "resolve_plan"]

#: Adam steps of a run given neither ``steps`` nor a plan.
DEFAULT_ADAM_STEPS = 20_000


def resolve_plan(
    plan: OptimizationPlan | Sequence[Stage] | None = None,
    steps: int | None = None,
    lbfgs_steps: int | None = None,
    lr: float | None = None,
) -> OptimizationPlan:
    """``plan`` (an :class:`OptimizationPlan` or its stages), or else the default plan:
    ``steps`` Adam steps (:data:`DEFAULT_ADAM_STEPS`) at ``lr`` (``DEFAULT_LR``), then
    ``lbfgs_steps`` L-BFGS iterations (0). The short form given with a plan is refused."""
    if plan is None:
        lr = DEFAULT_LR if lr is None else lr
        check_positive("lr", lr)
        steps = DEFAULT_ADAM_STEPS if steps is None else steps
        return OptimizationPlan.adam_then_lbfgs(steps, lbfgs_steps or 0, lr)
    given = [
        k for k, v in (("steps", steps), ("lbfgs_steps", lbfgs_steps), ("lr", lr)) if v is not None
    ]
    if given:
        raise ValueError(
            f"{', '.join(given)} given with stages (a plan); put them in the stages instead"
        )
    return plan if isinstance(plan, OptimizationPlan) else OptimizationPlan(plan)
