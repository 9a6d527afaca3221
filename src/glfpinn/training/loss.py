"""The training loss, eager or under ``torch.compile`` with a fallback to eager.

loss = w_residual * mean(weights * r^2) + w_conditions * condition_loss + w_data * data_loss,
where ``weights`` are a sampler's per-point loss weights (None: all 1), ``condition_loss`` the
problem's soft initial and boundary terms (None under hard constraints) and ``data_loss`` the
misfit to the problem's observations, summed over the measured outputs (inverse problems;
none otherwise; :mod:`.observations`).

A system of PDEs (``Problem.equations``, a residual of one column per equation) has
``mean(weights * sum_e w_e r_e^2)`` as its residual term, ``w_e`` the ``equation_weights`` (1
by default), and hands the samplers the per-point score of :mod:`.scores` instead of ``r``.
"""

from __future__ import annotations

import types
import warnings
from collections.abc import Callable, Mapping
from typing import TypeVar, final

import torch
from torch import Tensor, nn

from glfpinn._checks import check_keys, check_positive
from glfpinn.problems.base import Problem
from glfpinn.training.compiling import (
    explain_compile_failure,
    materialize_zero_tensors,
    record_cpu_compiled,
    use_compile_cache,
)
from glfpinn.training.observations import Measured, data_loss, read_observations
from glfpinn.training.scores import Score, check_score, equation_weight_list, reduce_residual

__all__ = ["TrainingLoss", "NonFiniteLossError", "LOSS_TERMS"]

T = TypeVar("T")
#: ``(points, weights, condition points) -> (loss, residuals)``
LossFn = Callable[[Tensor, "Tensor | None", dict[str, Tensor]], tuple[Tensor, Tensor]]
#: The terms a ``loss_weights`` mapping may weight.
LOSS_TERMS = ("residual", "conditions", "data")


class NonFiniteLossError(FloatingPointError):
    """The loss or a residual became NaN or Inf; the last good checkpoint is kept."""


def _own_code(function: Callable[..., T], instance: object) -> Callable[..., T]:
    """``function`` bound to ``instance`` through a copy of its code object.

    torch.compile keeps its compiled entries per code object, at most ``recompile_limit`` (8)
    of them: in a process that builds many trainers (a bench worker, a sweep in a notebook), the
    ninth distinct configuration (another problem class, dtype or shape) would silently train
    eagerly. A code object of its own gives each loss its own entries.
    """
    copy = types.FunctionType(
        function.__code__.replace(),
        function.__globals__,
        function.__name__,
        function.__defaults__,
        function.__closure__,
    )
    return types.MethodType(copy, instance)


@final
class TrainingLoss:
    """The loss of ``problem`` for ``model``.

    Args:
        loss_weights: optional ``{"residual": w_r, "conditions": w_c, "data": w_d}`` (each
            >= 0, 1 by default); a problem's own weights between its conditions are its
            parameters.
        compile_mode: compute it under ``torch.compile`` in this mode (see
            :mod:`.compiling`; None: eagerly). Forward and backward are fused; residuals built
            on :func:`glfpinn.ops.gradient_and_axis_jet` then take its first-order Taylor
            engine. If compiling fails, in the forward or, when the compiler builds it lazily,
            in the backward, a warning says why, where and what to do, and this and every
            later step run eagerly.
        equation_weights: a system's equations' weights in the residual term, ``{name: w}``
            (1 for the others); an equation the problem does not have is a one-line error.
        score: how a system's residual columns reduce to the per-point score the closure
            returns (:mod:`.scores`: ``"l2"``, ``"max"``, ``{"weights": ...}``).
    """

    def __init__(
        self,
        problem: Problem,
        model: nn.Module,
        loss_weights: Mapping[str, float] | None = None,
        compile_mode: str | None = None,
        equation_weights: Mapping[str, float] | None = None,
        score: object = "l2",
    ) -> None:
        equations = tuple(getattr(problem, "equations", ("residual",)))
        self.equation_weights = dict(equation_weights or {})
        self._equation_weights = equation_weight_list(self.equation_weights, equations)
        self.score: Score = check_score(score, equations)
        weights = dict(loss_weights or {})
        check_keys("loss term", weights, LOSS_TERMS)
        for name, value in weights.items():
            check_positive(f"loss_weights.{name}", value, allow_zero=True)
        self.problem = problem
        self.model = model
        self.residual_weight = float(weights.get("residual", 1.0))
        self.conditions_weight = float(weights.get("conditions", 1.0))
        self.data_weight = float(weights.get("data", 1.0))
        param = next(iter(model.parameters()))
        self.observed: list[Measured] = read_observations(problem, param.dtype, param.device)
        self.compile_mode = compile_mode
        self.compiled: LossFn | None = None
        self._compiled_ran = False
        if compile_mode is not None:
            use_compile_cache()
            materialize_zero_tensors()
            self.compiled = torch.compile(_own_code(TrainingLoss.eager, self), mode=compile_mode)

    def weights(self) -> dict[str, float]:
        """The loss weights that differ from 1, as ``loss_weights`` takes them."""
        pairs = (
            ("residual", self.residual_weight),
            ("conditions", self.conditions_weight),
            ("data", self.data_weight),
        )
        return {name: value for name, value in pairs if value != 1.0}

    def eager(
        self, points: Tensor, weights: Tensor | None, condition_points: dict[str, Tensor]
    ) -> tuple[Tensor, Tensor]:
        r = self.problem.residual(self.model, points)
        sq = r**2
        if r.ndim == 2:  # a system: one column per equation
            if self._equation_weights is not None:
                sq = sq * r.new_tensor(self._equation_weights)
            sq = sq.sum(dim=1)
            r = reduce_residual(r, self.score)
        loss = (sq * weights).mean() if weights is not None else sq.mean()
        # weights of 1 multiply nothing, so default runs keep their exact floating-point results
        if self.residual_weight != 1.0:
            loss = self.residual_weight * loss
        cond = self.problem.condition_loss(self.model, condition_points)
        if cond is not None:
            loss = loss + (cond if self.conditions_weight == 1.0 else self.conditions_weight * cond)
        if self.observed:
            loss = loss + self.data_weight * data_loss(self.model, self.observed)
        return loss, r

    def run(self, work: Callable[[LossFn], T]) -> T:
        """``work(loss function)``, compiled when asked and while compiling works."""
        if self.compiled is not None:
            try:
                out = work(self.compiled)
                if not self._compiled_ran:
                    self._compiled_ran = True
                    if next(iter(self.model.parameters())).device.type == "cpu":
                        record_cpu_compiled()
                return out
            except (NonFiniteLossError, torch.OutOfMemoryError):
                raise
            except Exception as err:  # noqa: BLE001 - any compiler failure: go on eagerly
                self.compiled = None
                warnings.warn(
                    explain_compile_failure(err, self.problem, self.model),
                    RuntimeWarning,
                    stacklevel=3,
                )
        return work(self.eager)
