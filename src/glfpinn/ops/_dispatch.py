"""Which engine computes an operator, and row pieces for scoring without a graph."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from glfpinn.ops._common import SUPPORTED, Field, Plan, _taylor_plan
from glfpinn.ops._jvp import _generic_derivatives, _generic_lap
from glfpinn.ops._taylor import (
    MAX_TAYLOR_ORDER,
    _mlp_laplacian,
    _mlp_taylor,
    _taylor_jet,
    _taylor_lap,
)


def _resolve(fn: Field, method: str, order: int) -> Plan | None:
    """The plan when the "taylor" engine computes ``fn``'s derivatives, ``None`` for "jvp"."""
    if method not in ("auto", "taylor", "jvp"):
        raise ValueError(f"method={method!r}; allowed: 'auto', 'taylor', 'jvp'")
    if method == "jvp":
        return None
    plan = _taylor_plan(fn) if order <= MAX_TAYLOR_ORDER else None
    if method == "taylor" and plan is None:
        raise ValueError(
            f"method='taylor' needs {SUPPORTED}, with scalar output, and order <= "
            f"{MAX_TAYLOR_ORDER}; use 'jvp' or 'auto'"
        )
    return plan


def _resolve_outputs(fn: Field, method: str) -> Plan | None:
    """The plan when the "taylor" engine computes every output of ``fn`` in one propagation
    (the ``outputs_*`` operators), ``None`` when they go column by column."""
    if method not in ("auto", "taylor", "jvp"):
        raise ValueError(f"method={method!r}; allowed: 'auto', 'taylor', 'jvp'")
    if method == "jvp":
        return None
    plan = _taylor_plan(fn, any_width=True)
    if method == "taylor" and plan is None and _taylor_plan(fn) is None:
        raise ValueError(f"method='taylor' needs {SUPPORTED}; use 'jvp' or 'auto'")
    return plan


def _records_graph(fn: Field, x: Tensor) -> bool:
    """Whether autograd would record: if not (scoring), rows can be split."""
    if not torch.is_grad_enabled():
        return False
    ps = fn.parameters() if isinstance(fn, nn.Module) else ()
    return x.requires_grad or any(p.requires_grad for p in ps)


#: Directions x rows per piece when an operator runs without a graph (scoring) on CPU: the rows
#: are processed in pieces so that the ``(k, rows, width)`` buffers stay around 8 MiB, which
#: bounds memory independently of the caller's chunk size and of k, and keeps the buffers below
#: the size glibc serves with fresh (page-faulted) mappings. Measured 1.5-2x faster scoring.
NO_GRAD_PIECE = 32768


def _pieces(fn: Field, x: Tensor, dirs: list[int] | Tensor) -> list[slice]:
    k = dirs.shape[0] if isinstance(dirs, Tensor) else len(dirs)
    rows = max(1, NO_GRAD_PIECE // max(k, 1))
    n = x.shape[0]
    if n <= rows or x.device.type != "cpu" or _records_graph(fn, x):
        return [slice(0, n)]
    return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]


def _rows(dirs: list[int] | Tensor, sl: slice) -> list[int] | Tensor:
    if isinstance(dirs, Tensor) and dirs.shape[1] != 1:
        return dirs[:, sl]
    return dirs


def _jet(fn: Field, x: Tensor, dirs: list[int] | Tensor, order: int, method: str) -> list[Tensor]:
    """``[u (n,), D1 (k, n), ..., D_order (k, n)]``: derivatives along each direction."""
    plan = _resolve(fn, method, order)
    parts = [
        _generic_derivatives(fn, x[sl], _rows(dirs, sl), order)
        if plan is None
        else _taylor_jet(fn, plan, x[sl], _rows(dirs, sl), order)
        for sl in _pieces(fn, x, dirs)
    ]
    if len(parts) == 1:
        return parts[0]
    return [torch.cat(ts, dim=min(i, 1)) for i, ts in enumerate(zip(*parts, strict=True))]


def _lap_jet(
    fn: Field, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float, method: str
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, first derivatives ``(k, n)`` and ``scale * sum`` of the second derivatives
    along the first ``n_lap`` directions ``(n,)``."""
    plan = _resolve(fn, method, 2)
    parts = [
        _generic_lap(fn, x[sl], _rows(dirs, sl), n_lap, scale)
        if plan is None
        else _taylor_lap(fn, plan, x[sl], _rows(dirs, sl), n_lap, scale)
        for sl in _pieces(fn, x, dirs)
    ]
    if len(parts) == 1:
        return parts[0]
    u, d1, lap = zip(*parts, strict=True)
    return torch.cat(u), torch.cat(d1, dim=1), torch.cat(lap)


def _outputs_lap_jet(
    fn: Field, plan: Plan, x: Tensor, dirs: list[int], n_lap: int
) -> tuple[Tensor, Tensor, Tensor]:
    """As ``_lap_jet`` for every output at once: ``u (n, o)``, first derivatives ``(k, n, o)``
    and the sum of the second derivatives along the first ``n_lap`` directions ``(n, o)``."""
    parts = [_mlp_laplacian(plan, x[sl], dirs, n_lap, 1.0) for sl in _pieces(fn, x, dirs)]
    if len(parts) == 1:
        return parts[0]
    u, d1, lap = zip(*parts, strict=True)
    return torch.cat(u), torch.cat(d1, dim=1), torch.cat(lap)


def _outputs_gradient(fn: Field, plan: Plan, x: Tensor) -> tuple[Tensor, Tensor]:
    """``u (n, o)`` and the first derivatives along every axis ``(d, n, o)``, every output at
    once (forward mode: one propagation of the d directions)."""
    dirs = list(range(x.shape[1]))
    parts = [_mlp_taylor(plan, x[sl], dirs, 1) for sl in _pieces(fn, x, dirs)]
    if len(parts) == 1:
        return parts[0][0], parts[0][1][0]
    return torch.cat([p[0] for p in parts]), torch.cat([p[1][0] for p in parts], dim=1)
