"""How a run compiles its training step: the mode, and where the compiled code is kept.

Training is compiled by default (``compile="auto"``), except a run shorter than
:data:`SHORT_RUN_STEPS` steps, which trains eagerly and says so in one info line (logger
``glfpinn``): compiling it would cost more start-up than its steps can save (docs/training.md,
"Compiled by default", has the measurement). ``compile=True`` compiles whatever the length and
picks the mode for the device: on CUDA
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
import re
from pathlib import Path

import torch

from glfpinn._checks import short_repr
from glfpinn._io import cache_dir

__all__ = [
    "COMPILE_MODES",
    "SHORT_RUN_STEPS",
    "check_compile",
    "compile_mode",
    "use_compile_cache",
    "uses_cuda_graphs",
    "record_cpu_compiled",
    "materialize_zero_tensors",
    "explain_compile_failure",
]

#: The compile cache folder the user set, if any (read at import, before torch sets its own).
_USER_CACHE_DIR = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
#: The modes of ``torch.compile`` a run may ask for by name.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
#: Under ``compile="auto"``, runs of fewer steps train eagerly. Compiling pays for itself after
#: (start-up it adds) / (time it saves per step) steps: with the compile cache filled, about
#: 3.3 s / 5.8 ms = 570 allen-cahn steps, 690 burgers steps, 1,070 reaction-diffusion-20d steps
#: (docs/results.md; with a cold cache 3,100 to 4,600); below 500 it cannot pay on any of them.
SHORT_RUN_STEPS = 500


def check_compile(compile: object) -> bool | str:
    """``compile`` if it is "auto", true, false or a mode by name; else a one-line error."""
    if isinstance(compile, bool) or compile == "auto" or compile in COMPILE_MODES:
        return compile  # type: ignore[return-value]
    raise ValueError(
        f"compile={short_repr(compile)} must be 'auto', true, false or a mode: "
        f"{', '.join(COMPILE_MODES)}"
    )


def short_run_note(compile: bool | str, total_steps: int | None) -> str | None:
    """Why ``"auto"`` trains a run eagerly (fewer than :data:`SHORT_RUN_STEPS` steps), or None.
    The trainer logs it at info level once it is built, so a run refused while it is being
    built says one line, its error."""
    if check_compile(compile) != "auto" or total_steps is None or total_steps >= SHORT_RUN_STEPS:
        return None
    return (
        f"training eagerly: {total_steps} steps are fewer than the {SHORT_RUN_STEPS} that "
        "compiling needs to pay for its start-up (--compile or compile=True compiles anyway)"
    )


def compile_mode(
    compile: bool | str, device: torch.device, total_steps: int | None = None
) -> str | None:
    """The ``torch.compile`` mode of a run (None: eager). ``"auto"`` is eager for a run of
    fewer than :data:`SHORT_RUN_STEPS` ``total_steps`` (:func:`short_run_note` says so), else
    ``True``."""
    compile = check_compile(compile)
    if compile == "auto":
        if short_run_note(compile, total_steps) is not None:
            return None
        compile = True
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


def materialize_zero_tensors() -> None:
    """Have inductor build the zero tangents of forward mode as ordinary zeros.

    Derivatives through a network the Taylor engine does not know go through ``torch.func``'s
    forward mode, whose tangent of every weight (a constant there) is an efficient zero
    tensor (``aten._efficientzerotensor``). Inductor (torch 2.13) keeps it as such, saves it for
    the backward and then writes into its buffer there, which fails with "ZeroTensors are
    immutable". Decomposing it into ``zeros`` before lowering avoids that (the result is the
    same). Idempotent; the table is torch's, so this applies to the whole process.
    """
    from torch._inductor.decomposition import decompositions

    op = torch.ops.aten._efficientzerotensor.default
    if op not in decompositions:
        decompositions[op] = _zeros


def _zeros(
    size: list[int],
    *,
    dtype: torch.dtype | None = None,
    layout: torch.layout | None = None,
    device: torch.device | None = None,
    pin_memory: bool | None = None,
) -> torch.Tensor:
    return torch.zeros(size, dtype=dtype, layout=layout, device=device, pin_memory=pin_memory)


def explain_compile_failure(err: BaseException, problem: object, model: torch.nn.Module) -> str:
    """The whole warning for a step that could not be compiled: the error's first line, where
    in the user's code it arose (when torch says), the model and what to do about it."""
    from glfpinn import ops  # the derivative engines, which the advice is about
    from glfpinn.nn import Constrained

    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    where = _user_frame(text)
    net = model.net if isinstance(model, Constrained) else model
    name = type(net).__name__
    problem_name = getattr(problem, "name", type(problem).__name__)
    message = f"torch.compile failed for problem {problem_name!r} with model {name} "
    message += f"({type(err).__name__}: {first})"
    if where:
        message += f", at {where}"
    if "double backward" in text:
        advice = (
            "the residual differentiates with torch.autograd.grad, whose double backward "
            "cannot be compiled: take its derivatives from glfpinn.ops (laplacian, "
            "gradient_and_axis_jet, axis_jet, ...), which compile"
        )
    elif not ops.supports_taylor(model):
        advice = (
            f"{name} is not a network the fast derivative engines follow (torch.fx must trace "
            "it into Linear layers, tanh/sin/silu/gelu, sums, products and concatenations; "
            "glfpinn.nn.ResidualMLP and ModifiedMLP are): build it from those"
        )
    else:
        advice = "this is likely a torch.compile limitation; please report it with this message"
    return (
        f"{message}. Training continues eagerly (same loss, slower). To fix: {advice}; or pass "
        "compile=False (--no-compile) to train eagerly without this warning."
    )


def _user_frame(text: str) -> str | None:
    """``file:line (code)`` of the innermost frame torch names under "from user code:"."""
    _, found, tail = text.partition("from user code:")
    if not found:
        return None
    frames = re.findall(r'File "([^"]+)", line (\d+), in (\S+)\n\s*(.*)', tail)
    if not frames:
        return None
    path, line, function, code = frames[-1]
    return f"{Path(path).name}:{line} in {function} ({code.strip()})"
