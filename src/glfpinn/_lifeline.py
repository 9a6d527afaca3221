"""Child processes that die with the process that started them: a bench's cell workers and the
ranks of ``glfpinn train --nproc K``. An orphan would go on training and writing into a
directory that a rerun is writing too.

On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG)``), even when the parent is killed by
SIGKILL or an out-of-memory kill; elsewhere (macOS) a watchdog thread polls the parent's pid.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
import threading
from collections.abc import Callable

__all__ = ["die_with_parent", "watch_parent", "PARENT_ENV"]

#: prctl(2) option: the signal the kernel sends this process when its parent exits.
_PR_SET_PDEATHSIG = 1
#: The environment variable in which a launcher hands its pid to the processes it starts.
PARENT_ENV = "GLFPINN_PARENT_PID"


def die_with_parent(parent: int) -> bool:
    """Have the kernel SIGKILL this process the moment ``parent`` (its parent now) exits;
    end it at once if ``parent`` is gone already (it died before the call took effect).
    Returns whether the kernel watches (Linux); elsewhere see :func:`watch_parent`.

    The kernel tracks the *thread* that started this process: the parent must start its
    children from a thread that lives as long as they should.
    """
    watched = False
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the watchdog remains
            libc = ctypes.CDLL(None, use_errno=True)
            watched = libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0
    if os.getppid() != parent:  # adopted by init (or a subreaper): the parent died already
        os._exit(1)
    return watched


def watch_parent(
    parent: int, interval: float, also: Callable[[float], bool] | None = None
) -> threading.Thread:
    """A daemon thread that ends this process (``os._exit(1)``) within ``interval`` seconds of
    ``parent`` dying, or of ``also(interval)`` returning True (a check that may wait up to
    ``interval``); for where :func:`die_with_parent` has no prctl, or a parent that stops its
    children by other means."""

    def watch() -> None:
        while True:
            if also is not None:
                if also(interval):
                    os._exit(1)
            else:
                threading.Event().wait(interval)
            if os.getppid() != parent:
                os._exit(1)

    thread = threading.Thread(target=watch, daemon=True, name="glfpinn-parent-watchdog")
    thread.start()
    return thread
