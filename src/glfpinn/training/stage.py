"""One stage of an optimization plan: an optimizer, an optional learning-rate scheduler and a
number of steps, checked when it is made and built once before the first step.

``Stage("adamw", 5000, lr=1e-3, scheduler="cosine")``. Names are looked up in
:mod:`.optimizers`; the stepping itself (and L-BFGS's retry) is :mod:`.step`'s.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, final

import torch
from torch import Tensor
from torch.optim import Optimizer

from glfpinn._checks import check_int, check_keys, check_positive
from glfpinn._io import is_plain_data
from glfpinn._params import Params
from glfpinn.training.devices import DTYPES
from glfpinn.training.optimizers import (
    LBFGS_DEFAULTS,
    LENGTH_ARGUMENT,
    OPTIMIZERS,
    QUASI_NEWTON,
    SCHEDULERS,
    OptimizerSpec,
    SchedulerSpec,
    arguments,
    is_quasi_newton,
    lookup,
)
from glfpinn.training.quasi_newton import QuasiNewton, dense_bytes

__all__ = ["Stage", "STAGE_DTYPES", "CURVATURE", "UNKNOWNS_LR"]

_log = logging.getLogger("glfpinn")

#: The precisions a stage may switch the run to.
STAGE_DTYPES = tuple(DTYPES)
#: What a quasi-Newton stage does with its curvature history at a resample.
CURVATURE = ("keep", "reset")
#: The stage option that gives an inverse problem's unknowns a learning rate of their own (a
#: second parameter group); the network keeps ``lr``.
UNKNOWNS_LR = "unknowns_lr"


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
        dtype: the float precision of the run from this stage on (``"float32"`` or
            ``"float64"``; None: as before). The model, the points, the condition points and
            every optimizer's state are promoted when the stage starts (:mod:`.precision`).
        curvature: what a quasi-Newton stage (``lbfgs``, ``bfgs``, ``ssbfgs``, ``ssbroyden``)
            does with its curvature history at a resample: ``"keep"`` it (the default) or
            ``"reset"`` it to the identity. Either way the gradient of the old points is not
            paired with one of the new (:func:`glfpinn.training.step.after_resample`).
        **options: keyword arguments of the optimizer (``lr``, ``weight_decay``, ...). L-BFGS
            defaults to one iteration per step with a strong-Wolfe line search
            (``LBFGS_DEFAULTS``); options override them. The dense quasi-Newton optimizers
            (:mod:`.quasi_newton`) take ``max_params``, the model size above which they refuse.
            ``unknowns_lr``: an inverse problem's unknowns train in a parameter group of their
            own at this learning rate (not with a quasi-Newton stage, which takes one group).

    Names and option keys are checked here, so a typo fails before any training.
    """

    def __init__(
        self,
        optimizer: OptimizerSpec = "adam",
        steps: int = 1000,
        *,
        scheduler: SchedulerSpec | None = None,
        scheduler_options: Mapping[str, Any] | None = None,
        dtype: str | None = None,
        curvature: str = "keep",
        **options: Any,
    ) -> None:
        self.optimizer = optimizer
        self.steps = check_int("steps", steps, minimum=1)
        if dtype is not None and dtype not in STAGE_DTYPES:
            raise ValueError(f"dtype={dtype!r} is not allowed; allowed: {', '.join(STAGE_DTYPES)}")
        self.dtype = dtype
        if curvature not in CURVATURE:
            raise ValueError(
                f"curvature={curvature!r} is not allowed; allowed: {', '.join(CURVATURE)}"
            )
        self.curvature = curvature
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
            check_keys(f"{cls.__name__} option", options, [*arguments(cls, 1), UNKNOWNS_LR])
        if curvature != "keep" and cls is not None and not is_quasi_newton(cls):
            raise ValueError(
                f"curvature={curvature!r} applies to quasi-Newton stages "
                f"({', '.join(QUASI_NEWTON)}), not {cls.__name__}"
            )
        if UNKNOWNS_LR in options:
            check_positive(UNKNOWNS_LR, options[UNKNOWNS_LR])
            if (cls is not None and is_quasi_newton(cls)) or isinstance(optimizer, Optimizer):
                raise ValueError(
                    f"{UNKNOWNS_LR} is not allowed with {self.name}: it needs an optimizer "
                    "built here that takes parameter groups (a quasi-Newton stage takes one)"
                )
        sched = self._scheduler_class()
        if sched is not None:
            check_keys(f"{sched.__name__} option", self.scheduler_options, arguments(sched, 1))
        elif scheduler is None and self.scheduler_options:
            raise ValueError("scheduler_options given without a scheduler")

    def _optimizer_class(self) -> type[Optimizer] | None:
        if isinstance(self.optimizer, str):
            return lookup("optimizer", self.optimizer, OPTIMIZERS)
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
            return lookup("scheduler", self.scheduler, SCHEDULERS)
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
        self,
        params: Sequence[Tensor],
        *,
        fused: bool | None = None,
        unknowns: Sequence[Tensor] = (),
    ) -> tuple[Optimizer, Any]:
        """The stage's optimizer on ``params`` and an inverse problem's ``unknowns`` (in a
        group of their own with the ``unknowns_lr`` option), and its scheduler (or None).

        ``fused`` is passed to optimizers that take it unless the options set it (the compiled
        training mode uses the single-kernel implementations).
        """
        optimizer = self._build_optimizer(params, unknowns, fused)
        return optimizer, self._build_scheduler(optimizer)

    def _param_groups(
        self, params: Sequence[Tensor], unknowns: Sequence[Tensor], unknowns_lr: float | None
    ) -> list[Tensor] | list[dict[str, Any]]:
        if unknowns_lr is None:
            return [*params, *unknowns]
        if not unknowns:
            raise ValueError(
                f"stage {self.name}: {UNKNOWNS_LR}={unknowns_lr!r} given, but the problem has "
                "no unknowns"
            )
        return [{"params": list(params)}, {"params": list(unknowns), "lr": unknowns_lr}]

    def _build_optimizer(
        self, params: Sequence[Tensor], unknowns: Sequence[Tensor], fused: bool | None
    ) -> Optimizer:
        if isinstance(self.optimizer, Optimizer):
            held = {id(p) for g in self.optimizer.param_groups for p in g["params"]}
            if held != {id(p) for p in [*params, *unknowns]}:
                raise ValueError(
                    f"the {type(self.optimizer).__name__} instance given as a stage does not "
                    "hold exactly the model's parameters (and the problem's unknowns)"
                )
            return self.optimizer
        cls = self._optimizer_class()
        options = dict(self.options)
        groups = self._param_groups(params, unknowns, options.pop(UNKNOWNS_LR, None))
        if cls is torch.optim.LBFGS:
            options = {**LBFGS_DEFAULTS, **options}
        elif fused and cls is not None and "fused" in arguments(cls, 1):
            options.setdefault("fused", True)
        factory = cls if cls is not None else self.optimizer
        try:
            optimizer = factory(groups, **options)  # type: ignore[operator]
        except (TypeError, ValueError) as err:
            raise ValueError(f"optimizer {self.name}: {err}") from None
        if isinstance(optimizer, QuasiNewton):  # its memory, said before any training
            dtype = DTYPES[self.dtype] if self.dtype else params[0].dtype
            n = optimizer.n_params
            _log.info(
                f"{self.name} stage: a dense inverse Hessian of {n:,}^2 "
                f"{str(dtype).removeprefix('torch.')} numbers, "
                f"{dense_bytes(n, dtype) / 1e6:,.1f} MB (max_params="
                f"{optimizer.defaults['max_params']:,})"
            )
        return optimizer

    def _build_scheduler(self, optimizer: Optimizer) -> Any:
        if self.scheduler is None:
            return None
        if hasattr(self.scheduler, "optimizer") and not isinstance(self.scheduler, type):
            if self.scheduler.optimizer is not optimizer:
                raise ValueError("the scheduler instance given is not on this stage's optimizer")
            return self.scheduler
        cls = self._scheduler_class()
        options = dict(self.scheduler_options)
        if cls in LENGTH_ARGUMENT:
            options.setdefault(LENGTH_ARGUMENT[cls], self.steps)
        factory = cls if cls is not None else self.scheduler
        try:
            return factory(optimizer, **options)
        except (TypeError, ValueError, KeyError) as err:
            raise ValueError(f"scheduler {self.scheduler!r}: {err}") from None

    def describe(self) -> dict[str, Any]:
        """What the stage is, as plain data (for result.json)."""
        sched = self._scheduler_class()
        scheduler = sched.__name__ if sched is not None else self.scheduler
        out = {
            "optimizer": self.name,
            "steps": self.steps,
            "options": {k: v for k, v in self.options.items() if is_plain_data(v)},
            "scheduler": None
            if scheduler is None
            else str(getattr(scheduler, "__name__", scheduler)),
        }
        if self.dtype is not None:
            out["dtype"] = self.dtype
        if self.curvature != "keep":
            out["curvature"] = self.curvature
        return out

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
        if self.dtype is not None:
            args.append(f"dtype={self.dtype!r}")
        if self.curvature != "keep":
            args.append(f"curvature={self.curvature!r}")
        args += [f"{k}={v!r}" for k, v in self.options.items()]
        return f"Stage({', '.join(args)})"
