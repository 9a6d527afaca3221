"""The device and the float precision a run trains on, by name."""

from __future__ import annotations

import torch

from glfpinn._checks import check_device

__all__ = ["DTYPES", "resolve_device", "resolve_dtype"]

DTYPES = {"float32": torch.float32, "float64": torch.float64}


def resolve_device(device: str | torch.device) -> torch.device:
    """``"auto"`` picks CUDA when present; anything else must be one of ``DEVICES``."""
    name = check_device(device)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} asked for, but CUDA is not available here; use cpu")
    return dev


def resolve_dtype(dtype: str | torch.dtype) -> torch.dtype:
    """A float precision by name (``"float32"``, ``"float64"``) or as a ``torch.dtype``."""
    if not isinstance(dtype, str):
        return dtype
    if dtype not in DTYPES:
        raise ValueError(f"dtype={dtype!r} is unknown; allowed: {', '.join(DTYPES)}")
    return DTYPES[dtype]
