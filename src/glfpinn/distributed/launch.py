"""``glfpinn train --nproc K``: start K ranks of the same command on this machine, with the
environment torchrun would give them, and fail the whole job when one rank fails.

torchrun does the same (``torchrun --nproc-per-node K -m glfpinn train ...``); this launcher
exists so the common case needs no second tool, and so a failure is one line naming the rank,
not torch's elastic agent's report.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from typing import Any

from glfpinn._lifeline import PARENT_ENV

__all__ = ["launch"]

#: Seconds a rank gets to unwind after SIGTERM before it is killed.
GRACE_S = 10.0
#: Seconds the ranks get to finish their step and write the checkpoint after a forwarded signal.
STOP_GRACE_S = 120.0
#: Seconds between polls of the ranks.
POLL_S = 0.05
#: Seconds to let the other ranks notice a failed one before naming the cause.
SETTLE_S = 0.5
#: What the launcher passes on to its ranks.
_FORWARDED = (signal.SIGINT, signal.SIGTERM)
#: The exit statuses of a rank that stopped cleanly on SIGINT or SIGTERM.
_INTERRUPTED = (130, 143)


def _free_port() -> int:
    """A TCP port free now on the loopback interface, for rank 0's rendezvous store."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rank_env(rank: int, nproc: int, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        RANK=str(rank),
        LOCAL_RANK=str(rank),
        WORLD_SIZE=str(nproc),
        LOCAL_WORLD_SIZE=str(nproc),
        MASTER_ADDR="127.0.0.1",
        MASTER_PORT=str(port),
    )
    # each rank ties its life to this process (glfpinn.cli): a launcher killed by SIGKILL or
    # the out-of-memory killer, which cannot stop its ranks, takes them with it all the same
    env[PARENT_ENV] = str(os.getpid())
    # K ranks each running torch's default of one thread per core would oversubscribe the
    # CPU K-fold (torchrun sets 1); a share of the cores keeps each rank's matmuls parallel.
    env.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // nproc)))
    return env


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"exited with status {code}"


def _stop(procs: list[subprocess.Popen]) -> None:
    """SIGTERM to every rank still running (it unwinds like Ctrl-C), SIGKILL after GRACE_S."""
    running = [p for p in procs if p.poll() is None]
    for p in running:
        p.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + GRACE_S
    for p in running:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def launch(argv: Sequence[str], nproc: int, program: Sequence[str] = ("-m", "glfpinn")) -> int:
    """Run ``python *program *argv`` as ``nproc`` ranks (by default the glfpinn command; a
    script of your own with ``program=(path,)``, which then calls
    :func:`~glfpinn.distributed.init_from_env` on each rank); return 0 when every rank
    succeeds.

    When a rank fails (a non-zero status or a signal), the others are stopped, one line on
    stderr names the rank, and its status is returned (1 for a signal). Rank 0's output is the
    command's; the other ranks print only their errors.

    SIGINT or SIGTERM to the launcher is passed on, once, to every rank: the ranks stop
    together after the same step (the trainer's all-reduce carries the request), rank 0
    writes the checkpoint, and rank 0's status (130 or 143) is returned. The ranks run in their
    own session, so a terminal's Ctrl-C reaches them only this way, once. A second signal
    stops them at once.
    """
    if nproc < 2:
        raise ValueError(f"nproc={nproc} must be >= 2 to launch ranks")
    port = _free_port()
    command = [sys.executable, *program, *argv]
    procs: list[subprocess.Popen] = []
    caught: list[int] = []

    def forward(signum: int, frame: Any) -> None:
        if caught:  # a second signal: no more waiting for a clean stop
            interrupt = KeyboardInterrupt()
            interrupt.signum = signum  # type: ignore[attr-defined] # the CLI's status: 130/143
            raise interrupt
        caught.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    # the handlers first: a signal while the ranks start still reaches every one started
    previous = {signum: signal.signal(signum, forward) for signum in _FORWARDED}
    try:
        for r in range(nproc):
            env = _rank_env(r, nproc, port)
            procs.append(subprocess.Popen(command, env=env, start_new_session=True))
            if caught:  # a rank started after the signal was passed on gets it too
                procs[-1].send_signal(caught[0])
        while True:
            codes = [p.poll() for p in procs]
            # a rank that stopped on a signal (its own, or passed on): the others stop after
            # the same step and rank 0 writes the checkpoint; wait for them, do not kill them
            if any(c is not None for c in codes) and (caught or _interrupted(codes)):
                return _stopped(procs)
            if any(c not in (None, 0) for c in codes):
                return _failed(procs, codes)
            if all(c == 0 for c in codes):
                return 0
            time.sleep(POLL_S)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        _stop(procs)  # the launcher interrupted again, or failed: no rank outlives it


def _interrupted(codes: list[int | None]) -> bool:
    """Whether a rank has exited as glfpinn does after SIGINT (130) or SIGTERM (143)."""
    return any(c in _INTERRUPTED for c in codes)


def _stopped(procs: list[subprocess.Popen]) -> int:
    """The ranks asked to stop: wait for all of them (they finish the step and rank 0 writes
    the checkpoint), and return rank 0's status (its line is already printed)."""
    deadline = time.monotonic() + STOP_GRACE_S
    for p in procs:
        try:
            p.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            break
    code = procs[0].returncode
    return 1 if code is None or code < 0 else code


def _failed(procs: list[subprocess.Popen], first: list[int | None]) -> int:
    """A rank failed (``first``: the statuses when that was first seen). Its peers'
    collectives fail a moment later, and a peer may then die of that (gloo aborts some); the
    cause is a rank that had failed when the failure was first seen (one killed by a signal
    first, else the lowest). Wait for the peers, stop every rank, and name the cause."""
    failed = [(c >= 0, r, c) for r, c in enumerate(first) if c not in (None, 0)]
    _, rank, code = min(failed)
    others = any(c is None for c in first)  # running when the cause was seen: stopped now
    time.sleep(SETTLE_S)
    _stop(procs)
    if others or code < 0:
        stopped = "; stopped the other ranks" if others else ""
        print(f"glfpinn: rank {rank} {_describe(code)}{stopped}", file=sys.stderr)
    return code if code > 0 else 1
