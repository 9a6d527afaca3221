"""Mapping every tensor of a nested value (dicts, lists, tuples): a checkpoint is read on the CPU
and moved to the run's device, a stage's precision switch casts the run's floats, and sampler
states may hold tensors."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

__all__ = ["tree_map_tensors", "tree_to", "tree_cast_floats"]


def tree_map_tensors(obj: Any, fn: Callable[[Tensor], Tensor]) -> Any:
    """``obj`` with ``fn`` applied to every tensor in it (through dicts, lists and tuples)."""
    if isinstance(obj, Tensor):
        return fn(obj)
    if isinstance(obj, dict):
        return {k: tree_map_tensors(v, fn) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(tree_map_tensors(v, fn) for v in obj)
    return obj


def tree_to(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor in it moved to ``device``."""
    return tree_map_tensors(obj, lambda t: t.to(device))


def tree_cast_floats(obj: Any, dtype: torch.dtype) -> Any:
    """``obj`` with every floating-point tensor in it cast to ``dtype``."""
    return tree_map_tensors(obj, lambda t: t.to(dtype) if t.is_floating_point() else t)
