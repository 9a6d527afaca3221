"""Validation: how good the network is, with or without a reference solution.

Always: the mean and max |residual| on a held-out set of interior points, drawn once from the
run's seed (its own stream, so it changes neither the training points nor the network's
initialisation), and, for a problem with soft conditions, each condition's mean squared misfit
on held-out condition points drawn after them (``condition_misfit``: ``boundary``,
``initial``, ..., as :meth:`Problem.condition_misfits` names them). Where the problem has a
reference solution: the relative L2 error on its test set. And any user metrics, callables
``model -> float``.

A system of PDEs (several ``Problem.outputs``) reports ``l2_relative_error`` pooled as
PINNacle defines it, ``sqrt(sum over outputs and points of (u - u_ref)^2) / sqrt(sum of
u_ref^2)``, and each output's own ``l2_relative_error_<output>``; its residual statistics are
those of the per-point score (:mod:`.scores`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, final

import torch
from torch import Tensor, nn

from glfpinn import ops
from glfpinn._checks import check_int
from glfpinn._params import Params
from glfpinn.problems.base import Problem
from glfpinn.training.scorer import DEFAULT_CHUNK, Scorer

__all__ = [
    "Evaluator",
    "EvaluationSet",
    "predict",
    "l2_errors",
    "DEFAULT_N_VALIDATION",
    "CONDITIONS_KEY",
]

Metric = Callable[[nn.Module], float]
#: Held-out interior points for the residual validation.
DEFAULT_N_VALIDATION = 1000
#: Rows per forward pass when predicting: bounds memory on large test sets.
PREDICT_CHUNK = 65536


@torch.no_grad()
def predict(model: nn.Module, x: Tensor) -> Tensor:
    """``u`` at ``x`` (n, dim) as ``(n,)`` (a network of several outputs: ``(n, n_outputs)``),
    in chunks, without a graph."""

    def one(c: Tensor) -> Tensor:
        u = model(c)
        return u if u.ndim == 2 and u.shape[1] > 1 else u.reshape(-1)

    return ops.chunked(one, x, PREDICT_CHUNK)


@final
class Evaluator(Params):
    """What a run measures at each evaluation.

    Args:
        n_validation: held-out interior points for the residual statistics, and condition
            points for the condition misfits (>= 1).
        metrics: optional ``{name: metric}``, each ``metric(model) -> float``, reported under
            its name in metrics.jsonl and result.json.
        chunk_size: rows per residual evaluation on the held-out set.
    """

    def __init__(
        self,
        n_validation: int = DEFAULT_N_VALIDATION,
        metrics: Mapping[str, Metric] | None = None,
        chunk_size: int = DEFAULT_CHUNK,
    ) -> None:
        self.n_validation = check_int("n_validation", n_validation, minimum=1)
        self.metrics = dict(metrics or {})
        self.chunk_size = check_int("chunk_size", chunk_size, minimum=1)
        reserved = {"step", "loss", "elapsed_s", "l2_relative_error", "unknowns", CONDITIONS_KEY}
        reserved |= set(RESIDUAL_KEYS)
        for name, fn in self.metrics.items():
            if name in reserved or not callable(fn):
                raise ValueError(
                    f"metric {name!r} must be a callable under a name other than {sorted(reserved)}"
                )

    def prepare(
        self,
        problem: Problem,
        model: nn.Module,
        generator: torch.Generator,
        dtype: torch.dtype,
        device: torch.device,
        score: object = "l2",
    ) -> EvaluationSet:
        """The fixed sets the run is measured on: held-out interior and condition points from
        ``generator`` and, with a reference, the problem's reference set (a reference
        file's points, else its test set). ``score``: how a system's residual columns reduce
        to the per-point score (:mod:`.scores`)."""
        held_out = problem.domain.sample(self.n_validation, generator, dtype=dtype).to(device)
        conditions = {
            key: value.to(device)
            for key, value in problem.condition_points(self.n_validation, generator, dtype).items()
        }
        x_test = u_test = None
        if problem.has_reference:
            x, u = problem.reference_set()
            x_test = torch.as_tensor(x, dtype=dtype, device=device)
            u_test = torch.as_tensor(u, dtype=torch.float64, device=device)
        scorer = Scorer(lambda x: problem.residual(model, x), self.chunk_size, score=score)
        misfits = _ConditionMisfits(problem, model, conditions)
        outputs = tuple(getattr(problem, "outputs", ("u",)))
        return EvaluationSet(
            model, scorer, held_out, x_test, u_test, self.metrics, misfits, outputs
        )

    def __repr__(self) -> str:
        return (
            f"Evaluator(n_validation={self.n_validation}, metrics={sorted(self.metrics)}, "
            f"chunk_size={self.chunk_size})"
        )


RESIDUAL_KEYS = ("residual_mean", "residual_max")
#: The evaluation's entry holding each soft condition's misfit on held-out points.
CONDITIONS_KEY = "condition_misfit"


@final
@dataclass(frozen=True)
class _ConditionMisfits:
    """A problem's soft conditions measured on fixed held-out condition points."""

    problem: Problem
    model: nn.Module
    points: dict[str, Tensor]

    def __call__(self) -> dict[str, float]:
        if not self.points:
            return {}
        with torch.enable_grad():  # a Neumann condition differentiates the network
            misfits = self.problem.condition_misfits(self.model, self.points)
        return {name: float(value.detach()) for name, value in misfits.items()}


@final
@dataclass(frozen=True)
class EvaluationSet:
    """An :class:`Evaluator` bound to a run's model and fixed point sets."""

    model: nn.Module
    scorer: Scorer
    held_out: Tensor
    x_test: Tensor | None
    u_test: Tensor | None
    metrics: Mapping[str, Metric]
    condition_misfits: _ConditionMisfits
    outputs: tuple[str, ...] = ("u",)

    def __call__(self) -> dict[str, Any]:
        """``l2_relative_error`` (None without a reference), ``residual_mean``,
        ``residual_max``, ``condition_misfit`` (``{condition: mean squared misfit}``, for a
        problem with soft conditions) and the user metrics."""
        out: dict[str, Any] = {"l2_relative_error": self.l2_relative_error()}
        if len(self.outputs) > 1:
            for name, value in self.l2_relative_errors().items():
                out[f"l2_relative_error_{name}"] = value
        r = self.scorer(self.held_out)
        out["residual_mean"] = float(r.mean())
        out["residual_max"] = float(r.max())
        misfits = self.condition_misfits()
        if misfits:
            out[CONDITIONS_KEY] = misfits
        for name, metric in self.metrics.items():
            out[name] = float(metric(self.model))
        return out

    def l2_relative_error(self) -> float | None:
        """The relative L2 error; over several outputs, pooled (:func:`l2_errors`)."""
        if self.x_test is None or self.u_test is None:
            return None
        u = predict(self.model, self.x_test).to(torch.float64)
        if self.u_test.ndim == 1:
            err = torch.linalg.vector_norm(u - self.u_test)
            return float(err / torch.linalg.vector_norm(self.u_test))
        return l2_errors(u, self.u_test, self.outputs)["pooled"]

    def l2_relative_errors(self) -> dict[str, float | None]:
        """Each output's relative L2 error, by output name (None without a reference)."""
        if self.x_test is None or self.u_test is None:
            return dict.fromkeys(self.outputs)
        u = predict(self.model, self.x_test).to(torch.float64)
        errors = l2_errors(u.reshape(self.u_test.shape), self.u_test, self.outputs)
        errors.pop("pooled")
        return errors


def l2_errors(u: Tensor, u_ref: Tensor, outputs: tuple[str, ...]) -> dict[str, float]:
    """Relative L2 errors of ``u`` against ``u_ref`` (both (n, n_outputs)): each output's,
    ``||u_k - u_ref_k|| / ||u_ref_k||``, by name, and ``"pooled"``, PINNacle's
    ``sqrt(sum_k sum_i (u - u_ref)^2) / sqrt(sum_k sum_i u_ref^2)``."""
    if u.shape != u_ref.shape or u.ndim != 2 or u.shape[1] != len(outputs):
        raise ValueError(
            f"predictions {tuple(u.shape)} and reference {tuple(u_ref.shape)} must both be "
            f"(n, {len(outputs)}), one column per output ({', '.join(outputs)})"
        )
    diff = (u - u_ref).to(torch.float64)
    ref = u_ref.to(torch.float64)
    out = {
        name: float(torch.linalg.vector_norm(diff[:, k]) / torch.linalg.vector_norm(ref[:, k]))
        for k, name in enumerate(outputs)
    }
    out["pooled"] = float(torch.linalg.vector_norm(diff) / torch.linalg.vector_norm(ref))
    return out
