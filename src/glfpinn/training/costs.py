"""What a run spends: residual evaluations, time in sampling and scoring, and peak memory.

Peak memory is the run's own: :func:`reset_peak_memory` at the start of a run, then
:func:`peak_memory_mb`. A bench reuses worker processes, so a process-wide peak would report,
for every run after a worker's first, the largest peak seen so far.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import resource
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, final

import torch

__all__ = ["Costs", "own_process", "reset_peak_memory", "peak_memory_mb"]

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


@final
@dataclass
class Costs:
    """Counters that only grow during a run; saved in checkpoints."""

    #: residual evaluations at points other than the training points (RAD's candidates, ...)
    residual_evals: int = 0
    #: residual evaluations made by training steps (free for the samplers)
    train_residual_evals: int = 0
    sampling_time_s: float = 0.0
    scoring_time_s: float = 0.0
    resamples: int = 0
    #: L-BFGS steps redone from their start without curvature history after a non-finite probe
    lbfgs_restarts: int = 0

    def state_dict(self) -> dict[str, Any]:
        return asdict(self)

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key, value in state.items():
            setattr(self, key, type(getattr(self, key))(value))


def _release_freed_memory() -> None:
    """Hand memory the allocator keeps (``glfpinn._allocator``) back to the system, so that
    the high-water mark restarts from what the process really uses."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        pass


def reset_peak_memory(device: torch.device) -> None:
    """Start measuring a new peak: CUDA's allocator statistics, or on Linux the process's
    resident high-water mark (``/proc/self/clear_refs``; elsewhere the process-wide peak
    stays, and :func:`peak_memory_mb` says so by returning it)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return
    _release_freed_memory()
    with contextlib.suppress(OSError):  # not Linux, or /proc mounted read-only
        _CLEAR_REFS.write_text("5")


def peak_memory_mb(device: torch.device) -> float:
    """CUDA: the peak allocated by torch on ``device`` since the last reset. CPU: the peak
    resident memory of the process since the last reset (``VmHWM``), or the peak since the
    process started where Linux's ``/proc`` is not available."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        for line in _STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def own_process(device: torch.device, *, retain_memory: bool = True) -> None:
    """The process-wide switches of a process that trains a run (the entry points call it:
    :func:`glfpinn.train`, the command line's and the bench worker's :func:`glfpinn.runs.run`;
    a Trainer built by hand leaves the process alone): on the CPU, have the allocator keep
    freed memory for reuse (``glfpinn._allocator``) unless ``retain_memory`` is False; then
    start measuring the run's own peak memory (:func:`reset_peak_memory`)."""
    if retain_memory and device.type == "cpu":
        from glfpinn._allocator import retain_freed_memory

        retain_freed_memory()
    reset_peak_memory(device)
