"""The optimization plan: stages run one after the other, each an optimizer, an optional
learning-rate scheduler and a number of steps.

``OptimizationPlan([Stage("adamw", 5000, lr=1e-3, scheduler="cosine"), Stage("lbfgs", 500)])``.
Optimizers are any of ``torch.optim`` (by name, class, factory or instance); schedulers any of
``torch.optim.lr_scheduler`` (by name, alias, class, factory or instance). Every optimizer is
built once, before the first step, and lives for the whole run: resampling the points never
resets its state, and a stage that follows another starts from where the parameters are.

L-BFGS runs one iteration per trainer step (``max_iter=1``) so the resampling schedule sees
every iteration, with a strong-Wolfe line search (torch's default of no line search and
``max_eval = max_iter * 5 // 4 = 1`` would leave none at all).
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, final

import torch
from torch import Tensor
from torch.optim import Optimizer
from torch.optim import lr_scheduler as schedulers

from glfpinn._checks import check_int, check_keys, unknown
from glfpinn._io import is_plain_data
from glfpinn._params import Params
from glfpinn.training.loss import NonFiniteLossError

__all__ = [
    "Stage",
    "OptimizationPlan",
    "take_step",
    "skips_on_device",
    "OPTIMIZERS",
    "SCHEDULERS",
    "DEFAULT_LR",
]

#: Adam's learning rate in the default plan.
DEFAULT_LR = 1e-3


def _subclasses(module: Any, base: type) -> dict[str, type]:
    out = {}
    for name in getattr(module, "__all__", dir(module)):
        obj = getattr(module, name, None)
        if isinstance(obj, type) and issubclass(obj, base) and obj is not base:
            out[name.lower()] = obj
    return out


#: ``torch.optim`` optimizers by lower-case class name (``"adam"``, ``"adamw"``, ``"lbfgs"``, ...).
OPTIMIZERS: dict[str, type[Optimizer]] = _subclasses(torch.optim, Optimizer)
#: Schedulers that wrap other schedulers or take Python callables: built from Python only.
_PYTHON_ONLY = (
    schedulers.SequentialLR,
    schedulers.ChainedScheduler,
    schedulers.LambdaLR,
    schedulers.MultiplicativeLR,
)
#: ``torch.optim.lr_scheduler`` schedulers by lower-case class name, plus short aliases.
SCHEDULERS: dict[str, type] = {
    "cosine": schedulers.CosineAnnealingLR,
    "exponential": schedulers.ExponentialLR,
    "step": schedulers.StepLR,
    "linear": schedulers.LinearLR,
    "onecycle": schedulers.OneCycleLR,
    "plateau": schedulers.ReduceLROnPlateau,
    **{
        name: cls
        for name, cls in _subclasses(schedulers, schedulers.LRScheduler).items()
        if cls not in _PYTHON_ONLY
    },
    "reducelronplateau": schedulers.ReduceLROnPlateau,
}
#: The scheduler argument that a stage's step count fills in when it is not given.
_LENGTH_ARGUMENT = {
    schedulers.CosineAnnealingLR: "T_max",
    schedulers.OneCycleLR: "total_steps",
    schedulers.LinearLR: "total_iters",
    schedulers.PolynomialLR: "total_iters",
    schedulers.ConstantLR: "total_iters",
}
#: One iteration per trainer step with a real line search; tolerances 0 so that L-BFGS never
#: stops on its own before the plan says so.
LBFGS_DEFAULTS: dict[str, Any] = {
    "lr": 1.0,
    "max_iter": 1,
    "max_eval": 25,
    "history_size": 50,
    "line_search_fn": "strong_wolfe",
    "tolerance_grad": 0.0,
    "tolerance_change": 0.0,
}

OptimizerSpec = str | type[Optimizer] | Optimizer | Callable[..., Optimizer]
SchedulerSpec = str | type | Callable[[Optimizer], Any] | Any


def _arguments(cls: type, skip: int) -> list[str]:
    """Keyword arguments of ``cls``'s constructor after the first ``skip`` (params, optimizer)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1 + skip :]
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in plain]


def _lookup(kind: str, spec: str, table: Mapping[str, type]) -> type:
    key = spec.lower().replace("-", "").replace("_", "")
    if key not in table:
        raise unknown(kind, spec, sorted(table))
    return table[key]


@final
class Stage(Params):
    """``steps`` steps of one optimizer, its learning rate optionally driven by a scheduler.

    Args:
        optimizer: a ``torch.optim`` name (``"adam"``, ``"adamw"``, ``"sgd"``, ``"lbfgs"``, ...),
            an optimizer class or a factory ``params -> optimizer`` (called with ``options``),
            or an optimizer instance already built on the model's parameters.
        steps: optimizer steps (L-BFGS: iterations) in this stage, >= 1.
        scheduler: optional; a ``torch.optim.lr_scheduler`` name or alias (``"cosine"``,
            ``"exponential"``, ``"step"``, ``"linear"``, ``"onecycle"``, ``"plateau"``), a class
            or factory ``optimizer -> scheduler`` (called with ``scheduler_options``), or a
            scheduler instance on this stage's optimizer instance. It steps once per optimizer
            step; a cosine, one-cycle, linear, polynomial or constant schedule spans the stage
            unless its length is given. ``"plateau"`` steps on the training loss.
        scheduler_options: keyword arguments of the scheduler.
        **options: keyword arguments of the optimizer (``lr``, ``weight_decay``, ...). L-BFGS
            defaults to one iteration per step with a strong-Wolfe line search
            (``LBFGS_DEFAULTS``); options override them.

    Names and option keys are checked here, so a typo fails before any training.
    """

    def __init__(
        self,
        optimizer: OptimizerSpec = "adam",
        steps: int = 1000,
        *,
        scheduler: SchedulerSpec | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        **options: Any,
    ) -> None:
        self.optimizer = optimizer
        self.steps = check_int("steps", steps, minimum=1)
        self.scheduler = scheduler
        self.scheduler_options = dict(scheduler_options or {})
        self.options = dict(options)
        if isinstance(optimizer, Optimizer) and options:
            raise ValueError(
                f"options {sorted(options)} given with an optimizer instance; "
                "set them when building the instance"
            )
        cls = self._optimizer_class()
        if cls is not None:
            check_keys(f"{cls.__name__} option", options, _arguments(cls, 1))
        sched = self._scheduler_class()
        if sched is not None:
            check_keys(f"{sched.__name__} option", self.scheduler_options, _arguments(sched, 1))
        elif scheduler is None and self.scheduler_options:
            raise ValueError("scheduler_options given without a scheduler")

    def _optimizer_class(self) -> type[Optimizer] | None:
        if isinstance(self.optimizer, str):
            return _lookup("optimizer", self.optimizer, OPTIMIZERS)
        if isinstance(self.optimizer, type) and issubclass(self.optimizer, Optimizer):
            return self.optimizer
        if isinstance(self.optimizer, Optimizer) or callable(self.optimizer):
            return None
        raise ValueError(
            f"optimizer={self.optimizer!r} is not allowed; give a torch.optim name, class, "
            "factory or instance"
        )

    def _scheduler_class(self) -> type | None:
        if isinstance(self.scheduler, str):
            return _lookup("scheduler", self.scheduler, SCHEDULERS)
        if isinstance(self.scheduler, type):
            return self.scheduler
        return None

    @property
    def name(self) -> str:
        """The optimizer's class name (``"Adam"``), or the factory's repr."""
        cls = self._optimizer_class()
        if cls is not None:
            return cls.__name__
        if isinstance(self.optimizer, Optimizer):
            return type(self.optimizer).__name__
        return getattr(self.optimizer, "__name__", repr(self.optimizer))

    def build(
        self, params: Sequence[Tensor], *, fused: bool | None = None
    ) -> tuple[Optimizer, Any]:
        """The stage's optimizer on ``params`` and its scheduler (or None).

        ``fused`` is passed to optimizers that take it unless the options set it (the compiled
        training mode uses the single-kernel implementations).
        """
        optimizer = self._build_optimizer(params, fused)
        return optimizer, self._build_scheduler(optimizer)

    def _build_optimizer(self, params: Sequence[Tensor], fused: bool | None) -> Optimizer:
        if isinstance(self.optimizer, Optimizer):
            held = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
            if held != {id(p) for p in params}:
                raise ValueError(
                    f"the {type(self.optimizer).__name__} instance given as a stage does not "
                    "hold exactly the model's parameters (and the problem's unknowns)"
                )
            return self.optimizer
        cls = self._optimizer_class()
        options = dict(self.options)
        if cls is torch.optim.LBFGS:
            options = {**LBFGS_DEFAULTS, **options}
        elif fused and cls is not None and "fused" in _arguments(cls, 1):
            options.setdefault("fused", True)
        factory = cls if cls is not None else self.optimizer
        try:
            return factory(params, **options)  # type: ignore[operator]
        except (TypeError, ValueError) as err:
            raise ValueError(f"optimizer {self.name}: {err}") from None

    def _build_scheduler(self, optimizer: Optimizer) -> Any:
        if self.scheduler is None:
            return None
        if hasattr(self.scheduler, "optimizer") and not isinstance(self.scheduler, type):
            if self.scheduler.optimizer is not optimizer:
                raise ValueError("the scheduler instance given is not on this stage's optimizer")
            return self.scheduler
        cls = self._scheduler_class()
        options = dict(self.scheduler_options)
        if cls in _LENGTH_ARGUMENT:
            options.setdefault(_LENGTH_ARGUMENT[cls], self.steps)
        factory = cls if cls is not None else self.scheduler
        try:
            return factory(optimizer, **options)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"scheduler {self.scheduler!r}: {err}") from None

    def describe(self) -> dict[str, Any]:
        """What the stage is, as plain data (for result.json)."""
        sched = self._scheduler_class()
        scheduler = sched.__name__ if sched is not None else self.scheduler
        return {
            "optimizer": self.name,
            "steps": self.steps,
            "options": {k: v for k, v in self.options.items() if is_plain_data(v)},
            "scheduler": None
            if scheduler is None
            else str(getattr(scheduler, "__name__", scheduler)),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Stage:
        """A stage from config data: ``{optimizer: adamw, steps: 2000, lr: 1e-3,
        scheduler: cosine}`` or with ``scheduler: {name: cosine, eta_min: 1e-5}``."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a stage must be a mapping, got {data!r}")
        options = dict(data)
        if "optimizer" not in options or "steps" not in options:
            raise ValueError(f"stage {dict(data)!r} needs an optimizer and steps")
        optimizer, steps = options.pop("optimizer"), options.pop("steps")
        if not isinstance(optimizer, str):
            raise ValueError(f"optimizer={optimizer!r} must be a name in a config")
        scheduler = options.pop("scheduler", None)
        scheduler_options: dict[str, Any] = {}
        if isinstance(scheduler, Mapping):
            scheduler_options = dict(scheduler)
            scheduler = scheduler_options.pop("name", None)
            if not isinstance(scheduler, str):
                raise ValueError(f"scheduler {dict(data['scheduler'])!r} needs a name")
        elif scheduler is not None and not isinstance(scheduler, str):
            raise ValueError(f"scheduler={scheduler!r} must be a name or a mapping with a name")
        return cls(
            optimizer, steps, scheduler=scheduler, scheduler_options=scheduler_options, **options
        )

    def __repr__(self) -> str:
        args = [repr(self.optimizer), str(self.steps)]
        if self.scheduler is not None:
            args.append(f"scheduler={self.scheduler!r}")
        if self.scheduler_options:
            args.append(f"scheduler_options={self.scheduler_options!r}")
        args += [f"{k}={v!r}" for k, v in self.options.items()]
        return f"Stage({', '.join(args)})"


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
        self, params: Sequence[Tensor], *, fused: bool | None = None
    ) -> tuple[list[Optimizer], list[Any]]:
        """Every stage's optimizer and scheduler, built now so they all live for the run."""
        built = [stage.build(params, fused=fused) for stage in self.stages]
        return [opt for opt, _ in built], [sched for _, sched in built]

    def describe(self) -> list[dict[str, Any]]:
        return [stage.describe() for stage in self.stages]

    def __repr__(self) -> str:
        return f"OptimizationPlan({self.stages!r})"


def set_fused(optimizer: Optimizer, stage: Stage, fused: bool | None) -> None:
    """A checkpoint's param groups carry the implementation the run used; the resuming run's
    mode decides (unless the stage's options chose one)."""
    if "fused" in stage.options or isinstance(stage.optimizer, Optimizer):
        return
    for group in optimizer.param_groups:
        if "fused" in group and not isinstance(optimizer, torch.optim.LBFGS):
            group["fused"] = fused or None


#: Optimizers whose fused implementation skips an update on the device when told that the
#: gradients are not finite (``found_inf``, the flag ``torch.amp.GradScaler`` sets).
_SKIP_ON_FOUND_INF = (torch.optim.Adam, torch.optim.AdamW, torch.optim.SGD)


def skips_on_device(optimizer: Optimizer) -> bool:
    """Whether ``optimizer`` can skip a diverged step without the host reading the loss."""
    return type(optimizer) in _SKIP_ON_FOUND_INF and all(
        group.get("fused") for group in optimizer.param_groups
    )


def take_step(
    optimizer: Optimizer,
    scheduler: Any,
    closure: Callable[[], Tensor],
    on_restart: Callable[[], None],
    step: int,
) -> Tensor:
    """Optimizer step ``step`` (its closure computes loss and gradients), then the scheduler's.

    L-BFGS: if a line-search probe meets a non-finite loss (the closure raises), the parameters
    go back to the iteration's start and the iteration is redone without the curvature history
    (which can belong to points that a resample has since replaced); ``on_restart`` is told. A
    second failure is a real divergence and propagates.
    """
    if isinstance(optimizer, torch.optim.LBFGS):
        loss = _lbfgs_step(optimizer, closure, on_restart, step)
    else:
        loss = closure()
        if skips_on_device(optimizer):
            # a non-finite loss leaves parameters and moments as they were (and NaN gradients
            # where it is finite are caught by the checkpoint's finiteness check)
            optimizer.found_inf = (~torch.isfinite(loss.detach())).to(torch.float32)
        optimizer.step()
    if scheduler is not None:
        if isinstance(scheduler, schedulers.ReduceLROnPlateau):
            scheduler.step(float(loss.detach()))
        else:
            scheduler.step()
    return loss


def _lbfgs_step(
    optimizer: torch.optim.LBFGS,
    closure: Callable[[], Tensor],
    on_restart: Callable[[], None],
    step: int,
) -> Tensor:
    params = [p for group in optimizer.param_groups for p in group["params"]]
    start = [p.detach().clone() for p in params]
    try:
        return optimizer.step(closure)
    except NonFiniteLossError:
        with torch.no_grad():
            for p, p0 in zip(params, start, strict=True):
                p.copy_(p0)
        optimizer.state.clear()
        on_restart()
        warnings.warn(
            f"an L-BFGS line search met a non-finite loss at step {step}; the iteration is "
            "redone from its start without the curvature history",
            RuntimeWarning,
            stacklevel=4,
        )
        return optimizer.step(closure)
