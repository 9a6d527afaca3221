"""The data term of an inverse problem: the problem's measurements, read once, per output.

``Problem.observations()`` gives the measurements in one of three forms:

- ``(points (m, dim), values (m,))``: a problem of one output;
- ``(points (m, dim), values (m, k))``: every output of a k-output system at the same points;
- ``{output name: (points (m_o, dim), values (m_o,))}``: each output measured at its own
  points, and only the outputs named (a flow's velocity, say, but not its pressure).

The data term is the sum over the measured outputs of each one's mean squared misfit, so an
output measured at few points weighs as much as one measured at many; for one output it is the
plain mean squared misfit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, final

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn.problems.base import Problem

__all__ = ["Measured", "read_observations", "data_loss"]


@final
@dataclass
class Measured:
    """Values of the outputs ``columns`` at ``x`` (m, dim): ``u`` is (m,) for a problem of one
    output (``columns`` None), else (m, len(columns))."""

    x: Tensor
    u: Tensor
    columns: tuple[int, ...] | None

    def to(self, dtype: torch.dtype) -> Measured:
        return Measured(self.x.to(dtype), self.u.to(dtype), self.columns)


def read_observations(problem: Problem, dtype: torch.dtype, device: torch.device) -> list[Measured]:
    """The problem's measurements as tensors of ``dtype`` on ``device`` (none: an empty list);
    a form or shape other than the module's is a one-line ValueError naming what came."""
    observed = problem.observations()
    if observed is None:
        return []
    outputs = tuple(problem.outputs)
    groups: list[tuple[Any, Any, tuple[int, ...] | None]] = []
    if isinstance(observed, Mapping):
        for name, pair in observed.items():
            column = problem.output_index(name)
            x, u = _pair(problem, pair, f"observations()[{name!r}]")
            groups.append((x, u, (column,)))
    else:
        x, u = _pair(problem, observed, "observations()")
        if u.ndim == 2 and u.shape[1] == len(outputs) and len(outputs) > 1:
            groups.append((x, u, tuple(range(len(outputs)))))
        elif u.ndim == 1 and len(outputs) == 1:
            groups.append((x, u, None))
        else:
            want = "(m,)" if len(outputs) == 1 else f"(m, {len(outputs)}) or a mapping by output"
            raise ValueError(
                f"problem {problem.name!r}: observations() gave values of shape {u.shape} for "
                f"{len(outputs)} output(s) {outputs}; allowed: {want}"
            )
    measured = []
    for x, u, columns in groups:
        if columns is not None and u.ndim == 1:
            u = u[:, None]
        if u.shape[0] != x.shape[0]:
            raise ValueError(
                f"problem {problem.name!r}: observations() gave {x.shape[0]} points and "
                f"{u.shape[0]} values; allowed: one value (row) per point"
            )
        measured.append(
            Measured(
                torch.as_tensor(x, dtype=dtype, device=device),
                torch.as_tensor(u, dtype=dtype, device=device),
                columns,
            )
        )
    return measured


def _pair(problem: Problem, pair: Any, what: str) -> tuple[np.ndarray, np.ndarray]:
    try:
        x, u = (np.asarray(a, dtype=np.float64) for a in pair)
    except (TypeError, ValueError):
        raise ValueError(
            f"problem {problem.name!r}: {what} must be (points, values); got {type(pair).__name__}"
        ) from None
    if x.ndim != 2 or x.shape[1] != problem.dim or u.ndim not in (1, 2):
        raise ValueError(
            f"problem {problem.name!r}: {what} must give points (m, {problem.dim}) and values "
            f"(m,) or (m, k); got {x.shape} and {u.shape}"
        )
    if not (np.isfinite(x).all() and np.isfinite(u).all()):
        raise ValueError(f"problem {problem.name!r}: {what} has NaN or infinite entries")
    return x, u


def data_loss(model: nn.Module, measured: list[Measured]) -> Tensor:
    """Sum over the measured outputs of each one's mean squared misfit (see the module)."""
    terms = []
    for group in measured:
        predicted = model(group.x)
        if group.columns is None:
            terms.append(((predicted.reshape(-1) - group.u) ** 2).mean())
        else:
            misfit = predicted[:, list(group.columns)] - group.u
            terms.append((misfit**2).mean(dim=0).sum())
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total
