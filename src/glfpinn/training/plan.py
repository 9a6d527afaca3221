"""The optimization plan: stages run one after the other, each an optimizer, an optional
learning-rate scheduler and a number of steps.

``OptimizationPlan([Stage("adamw", 5000, lr=1e-3, scheduler="cosine"), Stage("lbfgs", 500)])``.
Every optimizer is built once, before the first step, and lives for the whole run: resampling
the points never resets its state, and a stage that follows another starts from where the
parameters are.

**Rounds.** ``OptimizationPlan(warm_up, rounds=Rounds([Stage("adam", 1000),
Stage("ssbroyden", 1000)], repeat=100))`` runs the warm-up stages, then the round's stages
``repeat`` times (the protocol of Wu et al. 2023: resample, a first-order stage, a quasi-Newton
stage, repeated). A round's stages are built once and serve every repetition (a dense
quasi-Newton stage keeps one inverse Hessian, not one per round); the run's schedule resamples at
each round's start (:meth:`OptimizationPlan.round_schedule`).

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
from glfpinn.training.schedules import Every
from glfpinn.training.stage import Stage

__all__ = [
    "Stage",
    "Rounds",
    "OptimizationPlan",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DEFAULT_LR",
    "LBFGS_DEFAULTS",
]


def _check_stages(stages: list[Stage]) -> None:
    for stage in stages:
        if not isinstance(stage, Stage):
            raise ValueError(f"{stage!r} is not a Stage")


@final
class Rounds(Params):
    """``stages`` run in order ``repeat`` times, a resample before each repetition."""

    def __init__(self, stages: Iterable[Stage], repeat: int) -> None:
        self.stages = list(stages)
        if not self.stages:
            raise ValueError("rounds with stages=[] are not allowed; a round needs a Stage")
        _check_stages(self.stages)
        self.repeat = check_int("rounds repeat", repeat, minimum=1)

    @property
    def steps(self) -> int:
        """Steps of one round."""
        return sum(stage.steps for stage in self.stages)

    def describe(self) -> dict[str, Any]:
        return {"repeat": self.repeat, "stages": [stage.describe() for stage in self.stages]}

    def __repr__(self) -> str:
        return f"Rounds({self.stages!r}, repeat={self.repeat})"


@final
class OptimizationPlan(Params):
    """Stages run in order, then the ``rounds`` if any; a run's length is the sum of their
    steps.

    The default, ``OptimizationPlan.adam_then_lbfgs(steps, lbfgs_steps, lr)``, is the
    Adam -> L-BFGS schedule of the RAD authors' code (docs/results.md, "The strong plain
    baseline": with the L-BFGS stage a fixed uniform set matches most samplers at laptop budgets).
    """

    def __init__(self, stages: Iterable[Stage] = (), rounds: Rounds | None = None) -> None:
        self.stages = list(stages)
        self.rounds = rounds
        if not self.stages and rounds is None:
            raise ValueError("stages=[] is not allowed; a plan needs at least one Stage")
        _check_stages(self.stages)
        if rounds is not None and not isinstance(rounds, Rounds):
            raise ValueError(f"rounds={rounds!r} is not a Rounds")

    @property
    def all_stages(self) -> list[Stage]:
        """Every distinct stage, the warm-up's then a round's: one optimizer each."""
        return [*self.stages, *(self.rounds.stages if self.rounds is not None else [])]

    @property
    def warm_up_steps(self) -> int:
        return sum(stage.steps for stage in self.stages)

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
        rounds = 0 if self.rounds is None else self.rounds.steps * self.rounds.repeat
        return self.warm_up_steps + rounds

    def stage_at(self, step: int) -> int:
        """Index in :attr:`all_stages` of the stage that makes optimizer step ``step``
        (0-based)."""
        end = 0
        for index, stage in enumerate(self.stages):
            end += stage.steps
            if step < end:
                return index
        if self.rounds is None:
            return len(self.stages) - 1
        within = min(step - end, self.rounds.steps * self.rounds.repeat - 1) % self.rounds.steps
        for index, stage in enumerate(self.rounds.stages):
            within -= stage.steps
            if within < 0:
                return len(self.stages) + index
        raise AssertionError("unreachable: a round's steps cover it")

    def dtype_at(self, step: int, base: str) -> str:
        """The precision of optimizer step ``step``: that of the last stage up to it that
        set one (in the order the steps run), else ``base``."""
        dtype, start = base, 0
        for stage in self._runs():
            if start > step:
                break
            dtype = stage.dtype or dtype
            start += stage.steps
        return dtype

    def _runs(self) -> list[Stage]:
        """The stages in the order they run (a round's repeated)."""
        repeat = 0 if self.rounds is None else self.rounds.repeat
        return [*self.stages, *(self.rounds.stages * repeat if self.rounds else [])]

    def round_schedule(self) -> Every | None:
        """Resampling at each round's start (the warm-up's points are the initial ones)."""
        if self.rounds is None:
            return None
        return Every(self.rounds.steps, start=self.warm_up_steps)

    def build(
        self,
        params: Sequence[Tensor],
        *,
        fused: bool | None = None,
        unknowns: Sequence[Tensor] = (),
    ) -> tuple[list[Optimizer], list[Any]]:
        """Every stage's optimizer and scheduler on the network's ``params`` and an inverse
        problem's ``unknowns``, built now so they all live for the run."""
        built = [stage.build(params, fused=fused, unknowns=unknowns) for stage in self.all_stages]
        return [opt for opt, _ in built], [sched for _, sched in built]

    def describe(self) -> list[dict[str, Any]]:
        """The stages as they run, as plain data (a round's stages once each, marked with
        ``round``; ``rounds`` in result.json says how many)."""
        out = [stage.describe() for stage in self.stages]
        if self.rounds is not None:
            out += [{**stage.describe(), "round": True} for stage in self.rounds.stages]
        return out

    def __repr__(self) -> str:
        rounds = "" if self.rounds is None else f", rounds={self.rounds!r}"
        return f"OptimizationPlan({self.stages!r}{rounds})"
