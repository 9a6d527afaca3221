"""The command line's first second, before ``glfpinn.cli.main`` holds the program: Ctrl-C or
running out of memory while the package imports (torch alone takes a second or more) ends in
one line, as every other failure of the command does, not in an import traceback.

Imported first by the package, so it is in place before the heavy imports; it changes
nothing in a program that merely imports glfpinn.
"""

from __future__ import annotations

import os
import sys
from types import TracebackType

__all__: list[str] = []

#: What ``sys.argv[0]`` is while ``python -m NAME`` imports NAME's package.
_FINDING_MODULE = "-m"


def _module_run() -> str | None:
    """The NAME of ``python -m NAME`` (None for a script or ``-c``), from the interpreter's
    own arguments."""
    args = getattr(sys, "orig_argv", [])
    for i, arg in enumerate(args[1:], start=1):
        if arg == "-m":
            return args[i + 1] if i + 1 < len(args) else None
        if arg.startswith("-m"):
            return arg[2:]
    return None


def _is_command_line() -> bool:
    """Whether this process is the ``glfpinn`` command (the console script, or
    ``python -m glfpinn``) starting up."""
    argv0 = sys.argv[0] if sys.argv else ""
    if argv0 == _FINDING_MODULE:
        return _module_run() == "glfpinn"
    return os.path.basename(argv0).removesuffix(".exe") == "glfpinn"


#: How the loader words a shared library it had no memory to map (an ImportError).
_NO_MEMORY = ("failed to map segment", "cannot allocate memory", "out of memory")


def _one_line(
    kind: type[BaseException], value: BaseException, traceback: TracebackType | None
) -> None:
    """The exception hook while the command starts: Ctrl-C, running out of memory and any
    other failure to start in one line, with the statuses ``main`` gives them (130, 1)."""
    text = " ".join(str(value).split())
    if issubclass(kind, KeyboardInterrupt):
        line, status = "glfpinn: interrupted", 130
    elif issubclass(kind, MemoryError) or any(s in text.lower() for s in _NO_MEMORY):
        line, status = "glfpinn: out of memory: while starting (importing its modules)", 1
    else:  # a broken installation, say: still the command's one line
        line, status = f"glfpinn: failed: {kind.__name__}: {text}"[:500], 1
    sys.stdout.flush()
    print(line, file=sys.stderr, flush=True)
    os._exit(status)  # Python would otherwise end an uncaught Ctrl-C by SIGINT, not 130


if _is_command_line():
    sys.excepthook = _one_line
