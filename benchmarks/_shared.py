"""What several benchmark scripts need: a timing loop and the nested-autograd allen-cahn residual
(the reference every speed comparison is made against)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def seconds_per_call(fn: Callable[[], object], reps: int, warmup: int, sync) -> float:
    """Mean wall time of ``fn`` over ``reps`` calls after ``warmup`` calls, device synchronised."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t0) / reps


def allen_cahn_nested_autograd(model, x):
    """u_t - 0.001 u_xx + 5 (u^3 - u) with one torch.autograd.grad per derivative (the DeepXDE
    way, and what a careful user writes by hand)."""
    x = x.detach().requires_grad_(True)
    u = model(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
    return g[:, 1] - 0.001 * h[:, 0] + 5.0 * (u**3 - u)
