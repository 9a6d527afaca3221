"""How a run compiles its training step: the mode, and where the compiled code is kept.

Training is compiled by default. ``compile=True`` picks the mode for the device: on CUDA
``"reduce-overhead"`` (the step is replayed as a CUDA graph; a resample changes the points'
values, not their shape, so it is copied into the graph's input and nothing is recaptured), on
the CPU torch's default mode. A string is any ``torch.compile`` mode; ``False`` trains eagerly.
``TORCH_COMPILE_DISABLE=1`` (torch's own switch) turns compiling into a no-op everywhere.

Compiled kernels are kept on disk in ``<glfpinn cache>/torch-compile`` (unless
``TORCHINDUCTOR_CACHE_DIR`` was set before glfpinn was imported), so a machine pays the compile
once per configuration instead of once per boot, as torch's default folder under /tmp would.
"""

from __future__ import annotations

import hashlib
import os
import platform
from pathlib import Path

import torch

from glfpinn._checks import short_repr
from glfpinn._io import cache_dir

__all__ = [
    "COMPILE_MODES",
    "check_compile",
    "compile_mode",
    "use_compile_cache",
    "uses_cuda_graphs",
    "record_cpu_compiled",
]

#: The compile cache folder the user set, if any (read at import, before torch sets its own).
_USER_CACHE_DIR = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
#: The modes of ``torch.compile`` a run may ask for by name.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def check_compile(compile: object) -> bool | str:
    """``compile`` if it is true, false or a mode by name; else a one-line error."""
    if isinstance(compile, bool) or compile in COMPILE_MODES:
        return compile  # type: ignore[return-value]
    raise ValueError(
        f"compile={short_repr(compile)} must be true, false or a mode: {', '.join(COMPILE_MODES)}"
    )


def compile_mode(compile: bool | str, device: torch.device) -> str | None:
    """The ``torch.compile`` mode of a run (None: eager)."""
    compile = check_compile(compile)
    if compile is True:
        return "reduce-overhead" if device.type == "cuda" else "default"
    return compile or None


def uses_cuda_graphs(mode: str | None, device: torch.device) -> bool:
    """Whether ``mode`` replays the step as CUDA graphs (whose outputs the next replay reuses)."""
    return device.type == "cuda" and mode in ("reduce-overhead", "max-autotune")


def use_compile_cache() -> str:
    """Point torch's compile cache at glfpinn's cache folder unless the user chose one (torch
    fills the variable in with its /tmp default when its compiler is imported, so what the
    user chose is what it held when glfpinn was imported).

    On the CPU, torch also probes the vector instruction sets anew in every process, each in a
    child Python (about 1 s in all): once a compiled step has run on this machine and torch
    (:func:`record_cpu_compiled`), later processes reuse that outcome instead.
    """
    if _USER_CACHE_DIR is None:
        os.environ["TORCHINDUCTOR_CACHE_DIR"] = str(cache_dir() / "torch-compile")
    folder = os.environ["TORCHINDUCTOR_CACHE_DIR"]
    if _cpu_marker(folder).exists():
        import torch._inductor.config as inductor

        if inductor.cpp.vec_isa_ok is None:  # the user's own setting wins
            inductor.cpp.vec_isa_ok = True
    return folder


def record_cpu_compiled() -> None:
    """Note that compiled CPU kernels built and ran here (see :func:`use_compile_cache`)."""
    marker = _cpu_marker(os.environ.get("TORCHINDUCTOR_CACHE_DIR", ""))
    if marker.parent.is_dir() and not marker.exists():
        marker.touch()


def _cpu_marker(folder: str) -> Path:
    """A file named after what the probe's outcome depends on: torch, the CPU's flags and the
    C++ compiler torch uses."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            flags = next((line for line in fh if line.startswith("flags")), "")
    except OSError:
        flags = platform.processor()
    key = "|".join([torch.__version__, platform.machine(), flags, os.environ.get("CXX", "c++")])
    digest = hashlib.sha256(key.encode()).hexdigest()[:16]
    return Path(folder) / f"glfpinn-cpu-compiled-{digest}"
