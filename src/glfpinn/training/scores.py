"""Systems of PDEs: one score per point from a residual of several equations.

A problem with several equations (``Problem.equations``) returns one residual column per
equation, shape ``(n, n_eq)``; the samplers need one score per point, shape ``(n,)``. The
run's ``score`` option says how the columns reduce to it:

- ``"l2"`` (default): ``sqrt(sum_e r_e^2)``, the norm of the residual vector: a point where
  several equations are off scores above one where a single one is;
- ``"max"``: ``max_e |r_e|``, the worst equation at the point;
- ``{"weights": {name: w_e}}`` (or a list, one weight per equation, in order): the weighted
  norm ``sqrt(sum_e w_e r_e^2)``; a weight of 0 leaves an equation out of the score.

A scalar residual ``(n,)`` scores ``|r|`` whatever the option, exactly as before. The loss
weights its equations apart (``equation_weights``, :func:`equation_weight_list`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from glfpinn._checks import short_repr

__all__ = [
    "SCORES",
    "check_score",
    "reduce_residual",
    "squared_score",
    "equation_weight_list",
    "expected_residual_shape",
]

#: The score reductions by name (or ``{"weights": ...}``).
SCORES = ("l2", "max")

#: A checked score: ``"l2"``, ``"max"`` or a tuple of one weight per equation.
Score = str | tuple[float, ...]


def _weights_by_name(
    what: str, weights: Mapping[str, Any] | Sequence[Any], names: Sequence[str]
) -> tuple[float, ...]:
    if isinstance(weights, Mapping):
        for key in weights:
            if key not in names:
                raise ValueError(
                    f"{what}: no equation {short_repr(key)}; the problem's equations: "
                    f"{', '.join(names)}"
                )
        values = [weights.get(name, 1.0) for name in names]
    elif isinstance(weights, list | tuple):
        if len(weights) != len(names):
            raise ValueError(
                f"{what}={short_repr(weights)} must give {len(names)} weights, one per equation "
                f"({', '.join(names)})"
            )
        values = list(weights)
    else:
        raise ValueError(f"{what}={short_repr(weights)} must be a mapping or a list of numbers")
    for name, value in zip(names, values, strict=True):
        if isinstance(value, bool) or not isinstance(value, int | float) or not value >= 0:
            raise ValueError(f"{what}.{name}={short_repr(value)} must be a number >= 0")
    return tuple(float(v) for v in values)


def check_score(score: Any, equations: Sequence[str] | None = ("residual",)) -> Score:
    """``score`` checked against the problem's ``equations``: ``"l2"``, ``"max"`` or the
    tuple of weights ``{"weights": ...}`` gives (with ``equations`` None, a list of weights
    is taken as it is); anything else is a one-line ValueError."""
    if score is None:
        return "l2"
    if isinstance(score, tuple):
        score = {"weights": list(score)}
    if equations is None and isinstance(score, Mapping):  # no problem to name the equations
        weights = score.get("weights")
        if isinstance(weights, list | tuple):
            equations = [f"equation {i}" for i in range(len(weights))]
        elif isinstance(weights, Mapping):
            equations = [str(key) for key in weights]
        else:
            equations = ()
    if isinstance(score, str):
        if score in SCORES:
            return score
        raise ValueError(f"score={short_repr(score)} must be 'l2', 'max' or {{weights: ...}}")
    if isinstance(score, Mapping) and set(score) == {"weights"}:
        return _weights_by_name("score.weights", score["weights"], equations)
    raise ValueError(f"score={short_repr(score)} must be 'l2', 'max' or {{weights: ...}}")


def equation_weight_list(
    weights: Mapping[str, Any] | None, equations: Sequence[str]
) -> tuple[float, ...] | None:
    """The loss weight of each equation (``{name: w}``, 1 for the others), or None when all
    are 1 (the loss then multiplies nothing)."""
    if not weights:
        return None
    if not isinstance(weights, Mapping):
        raise ValueError(f"equation_weights={short_repr(weights)} must be a mapping name: weight")
    values = _weights_by_name("equation_weights", weights, equations)
    return None if all(v == 1.0 for v in values) else values


def reduce_residual(r: Tensor, score: Score = "l2") -> Tensor:
    """The per-point score of residual ``r``: ``|r|`` for ``(n,)``; for ``(n, n_eq)`` the
    reduction ``score`` over the equations (see the module). Shape ``(n,)``, >= 0."""
    if r.ndim == 1:
        return r.abs()
    if score == "l2":
        return torch.linalg.vector_norm(r, dim=1)
    if score == "max":
        return r.abs().amax(dim=1)
    return squared_score(r, score).sqrt()


def squared_score(r: Tensor, score: Score = "l2") -> Tensor:
    """The square of :func:`reduce_residual`, formed without a square root (so that its
    gradient stays finite where the residual vanishes)."""
    if r.ndim == 1:
        return r**2
    sq = r**2
    if score == "l2":
        return sq.sum(dim=1)
    if score == "max":
        return sq.amax(dim=1)
    return (sq * r.new_tensor(score)).sum(dim=1)


def expected_residual_shape(n: int, equations: Sequence[str]) -> tuple[int, ...]:
    """``(n,)`` for one equation, ``(n, n_eq)`` for several."""
    return (n,) if len(equations) == 1 else (n, len(equations))
