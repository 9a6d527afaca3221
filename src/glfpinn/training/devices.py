"""The device and the float precision a run trains on, by name."""

from __future__ import annotations

import torch

from glfpinn._checks import check_device

__all__ = ["DTYPES", "resolve_device"]

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
