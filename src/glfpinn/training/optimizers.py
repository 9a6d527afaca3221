"""The names a run may give an optimizer or a learning-rate scheduler, and what glfpinn adds
to torch's defaults.

Optimizers are any of ``torch.optim`` (``OPTIMIZERS``, by lower-case class name) and the dense
quasi-Newton ones of :mod:`.quasi_newton` (``bfgs``, ``ssbfgs``, ``ssbroyden``); schedulers any
of ``torch.optim.lr_scheduler`` (``SCHEDULERS``, by lower-case class name and short aliases).
To make another optimizer available by name, it suffices that it is a ``torch.optim.Optimizer``
subclass given as a class or factory to :class:`~glfpinn.training.stage.Stage`; a name in a
config needs an entry here.

L-BFGS runs one iteration per trainer step (``max_iter=1``) so the resampling schedule sees
every iteration, with a strong-Wolfe line search (torch's default of no line search and
``max_eval = max_iter * 5 // 4 = 1`` would leave none at all): ``LBFGS_DEFAULTS``.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from typing import Any

import torch
from torch.optim import Optimizer
from torch.optim import lr_scheduler as schedulers

from glfpinn._checks import unknown
from glfpinn.training.quasi_newton import BFGS, SSBFGS, QuasiNewton, SSBroyden

__all__ = [
    "DEFAULT_LR",
    "LBFGS_DEFAULTS",
    "OPTIMIZERS",
    "DENSE_QUASI_NEWTON",
    "QUASI_NEWTON",
    "SCHEDULERS",
    "OptimizerSpec",
    "SchedulerSpec",
    "arguments",
    "is_quasi_newton",
    "lookup",
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


#: The dense quasi-Newton optimizers of :mod:`.quasi_newton`, by name.
DENSE_QUASI_NEWTON: dict[str, type[Optimizer]] = {
    "bfgs": BFGS,
    "ssbfgs": SSBFGS,
    "ssbroyden": SSBroyden,
}
#: ``torch.optim`` optimizers by lower-case class name (``"adam"``, ``"adamw"``, ``"lbfgs"``,
#: ...) and the dense quasi-Newton ones.
OPTIMIZERS: dict[str, type[Optimizer]] = {
    **_subclasses(torch.optim, Optimizer),
    **DENSE_QUASI_NEWTON,
}
#: The stages whose curvature history a resample may keep or reset.
QUASI_NEWTON = ("lbfgs", *DENSE_QUASI_NEWTON)


def is_quasi_newton(cls: type) -> bool:
    """Whether ``cls`` keeps a curvature history (torch's L-BFGS or a dense quasi-Newton)."""
    return issubclass(cls, torch.optim.LBFGS | QuasiNewton)


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
LENGTH_ARGUMENT = {
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


def arguments(cls: type, skip: int) -> list[str]:
    """Keyword arguments of ``cls``'s constructor after the first ``skip`` (params, optimizer)."""
    params = list(inspect.signature(cls.__init__).parameters.values())[1 + skip :]
    plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p.name for p in params if p.kind in plain]


def lookup(kind: str, spec: str, table: Mapping[str, type]) -> type:
    key = spec.lower().replace("-", "").replace("_", "")
    if key not in table:
        raise unknown(kind, spec, sorted(table))
    return table[key]
