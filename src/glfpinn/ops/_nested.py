"""Nested reverse mode, as ``gradient_and_axis_jet`` uses it: one ``torch.autograd.grad`` for
the gradient, then one per extra order and axis. Any order, any row-wise field."""

from __future__ import annotations

import torch
from torch import Tensor

from glfpinn.ops._common import Field, _flat


def _nested_gradient_and_jet(
    fn: Field, x: Tensor, order: int, axes: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    u = _flat(fn(x), x.shape[0])
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    current = [grad[:, i] for i in axes]
    higher = []
    for _ in range(2, order + 1):
        current = [
            torch.autograd.grad(c.sum(), x, create_graph=True)[0][:, i]
            for c, i in zip(current, axes, strict=True)
        ]
        higher.append(torch.stack(current, dim=1) if current else u.new_zeros(u.shape[0], 0))
    return u, grad, torch.stack(higher)
