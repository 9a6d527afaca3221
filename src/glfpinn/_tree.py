"""Moving every tensor of a nested value (dicts, lists, tuples) to a device: a checkpoint is read
on the CPU, and its sampler states may hold tensors."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["tree_to"]


def tree_to(obj: Any, device: torch.device | str) -> Any:
    """``obj`` with every tensor in it (through dicts, lists and tuples) moved to ``device``."""
    if isinstance(obj, Tensor):
        return obj.to(device)
    if isinstance(obj, dict):
        return {k: tree_to(v, device) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(tree_to(v, device) for v in obj)
    return obj
