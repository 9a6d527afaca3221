"""Stopping a run cleanly on SIGINT or SIGTERM: at the end of the current step, so the state a
checkpoint captures is a whole step's (a resume from it is exact), then :class:`Interrupted`.

A second signal while the step finishes interrupts at once (the previous handler is back).
Only the main thread can take signals; elsewhere (a thread, a worker pool's thread) nothing is
installed and an interrupt behaves as Python's default.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

__all__ = ["Interrupted", "deferred_signals", "stop_on_signals"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """Training stopped at a step boundary on a signal (``signum``); its run directory holds
    a checkpoint of that step."""

    def __init__(self, signum: int) -> None:
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
        self.signum = signum


@contextmanager
def deferred_signals() -> Iterator[list[int]]:
    """Within the block, SIGINT and SIGTERM are recorded in the yielded list instead of
    interrupting; the caller checks it between steps."""
    caught: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield caught
        return
    previous = {signum: signal.getsignal(signum) for signum in SIGNALS}

    def record(signum: int, frame: Any) -> None:
        caught.append(signum)
        for other, handler in previous.items():  # a second signal acts at once
            signal.signal(other, handler)

    for signum in SIGNALS:
        signal.signal(signum, record)
    try:
        yield caught
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@contextmanager
def stop_on_signals(any_rank: Callable[[bool], bool]) -> Iterator[list[int]]:
    """:func:`deferred_signals` for a training loop: the loop checks the yielded list between
    steps, and a block that ends with a signal caught (on any rank: ``any_rank`` is the
    strategy's all-reduced "or", so every rank stops after the same step) raises
    :class:`Interrupted`."""
    with deferred_signals() as caught:
        yield caught
    if any_rank(bool(caught)):
        raise Interrupted(caught[0] if caught else signal.SIGTERM)
