"""Running a bench's cells: local worker processes by default, Ray tasks on request.

A finished cell (valid result.json) is never recomputed; an interrupted one resumes from its
checkpoint; a cell whose stored config differs from the bench's is started again. Local workers
die with the bench process, however it dies (SIGKILL included): an orphan would go on taking
queued cells and write into directories that a rerun of the bench is writing too.
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from glfpinn._io import atomic_write_bytes, atomic_write_text
from glfpinn.bench.grid import Bench, Cell
from glfpinn.config import yaml_load
from glfpinn.runs import CONFIG, METRICS, RESULT, read_result

__all__ = ["run_cell", "run_bench", "EXECUTORS"]

EXECUTORS = ("local", "ray")
_SHIPPED = (CONFIG, METRICS, RESULT)

#: prctl(2) option: the signal the kernel sends this process when its parent exits.
_PR_SET_PDEATHSIG = 1
#: Seconds between a local worker's checks that its bench is alive and not stopping.
_WATCH_S = 0.5
#: In a local worker: its bench's process id and the stop pipe's read end (``_worker_init``).
_bench: tuple[int, Connection] | None = None


def run_cell(config: dict[str, Any], path: str, threads: int) -> dict[str, Any]:
    """Run (or resume, or reuse) one cell; returns its result and its small files' bytes."""
    import torch

    from glfpinn.config import RunConfig
    from glfpinn.runs import run

    torch.set_num_threads(threads)
    out = Path(path)
    cfg = RunConfig.from_dict(config)
    done = read_result(out)
    if done is None:
        stored = out / CONFIG
        if stored.exists() and yaml_load(stored.read_text()) == cfg.to_dict():
            mode = "resume"
        else:
            mode = "overwrite" if out.exists() else "new"
        t0 = time.perf_counter()
        # trusted: the code a cell's config names is the bench file's (a stored config that
        # differs from it is overwritten, never resumed)
        done = run(cfg, out, mode=mode, trust=True)
        done = {**done, "_ran_s": time.perf_counter() - t0}
    files = {name: (out / name).read_bytes() for name in _SHIPPED if (out / name).exists()}
    return {"result": done, "files": files}


def _land(cell_dir: Path, files: dict[str, bytes]) -> None:
    """Write a remote cell's files where the driver sees them (no shared filesystem needed)."""
    for name, data in files.items():
        if not (cell_dir / name).exists():
            atomic_write_bytes(cell_dir / name, data)


def _record_failure(cell_dir: Path, err: BaseException | str) -> None:
    text = err if isinstance(err, str) else "".join(traceback.format_exception(err))
    atomic_write_text(cell_dir / "error.txt", text)


def _device_for(cfg: dict[str, Any], index: int) -> dict[str, Any]:
    """Spread CUDA cells over the visible GPUs, one GPU per worker slot."""
    import torch

    if cfg.get("device") in ("cuda", "auto") and torch.cuda.is_available():
        return {**cfg, "device": f"cuda:{index % torch.cuda.device_count()}"}
    return cfg


def _default_workers(cells: Sequence[Cell]) -> int:
    import torch

    if any(c.config.device in ("cuda", "auto") for c in cells) and torch.cuda.is_available():
        return torch.cuda.device_count()
    return os.cpu_count() or 1


def run_bench(
    bench: Bench,
    out: str | os.PathLike,
    *,
    executor: str = "local",
    workers: int | None = None,
    threads_per_worker: int = 1,
    ray_address: str | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Run every cell of ``bench`` into ``out``; returns counts of done/ran/failed cells."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    todo = []
    counts = {"cells": len(bench.cells), "reused": 0, "ran": 0, "failed": 0}
    for cell in bench.cells:
        if read_result(root / cell.path) is not None:
            counts["reused"] += 1
        else:
            todo.append(cell)
    log(
        f"bench '{bench.profile}': {len(bench.cells)} cells, {counts['reused']} already done, "
        f"{len(todo)} to run ({executor})" + (f"; note: {bench.note}" if bench.note else "")
    )
    n_workers = workers or bench.workers or _default_workers(todo)
    jobs = [
        (cell, _device_for(cell.config.to_dict(), i % n_workers)) for i, cell in enumerate(todo)
    ]
    finished = 0

    def report(cell: Cell, outcome: dict[str, Any] | BaseException | str) -> None:
        nonlocal finished
        finished += 1
        cell_dir = root / cell.path
        if isinstance(outcome, dict):
            _land(cell_dir, outcome["files"])
            res = outcome["result"]
            counts["ran"] += 1
            l2 = res["l2_relative_error"]
            measure = f"L2 {l2:.3e}" if l2 is not None else f"residual {res['residual_mean']:.3e}"
            log(f"[{finished}/{len(todo)}] {cell.path}: {measure}, {res['wall_time_s']:.1f} s")
        else:
            counts["failed"] += 1
            _record_failure(cell_dir, outcome)
            log(f"[{finished}/{len(todo)}] {cell.path}: FAILED (see {cell_dir / 'error.txt'})")

    if executor == "local":
        _run_local(jobs, root, n_workers, threads_per_worker, report)
    else:
        _run_ray(jobs, root, threads_per_worker, ray_address, report)
    return counts


def _worker_init(parent: int, stop: Connection) -> None:
    """Tie a local worker's life to the bench process ``parent`` that started it. ``stop`` is
    the read end of a pipe whose write end only the bench holds: it reads as closed once the
    bench died, or closed it to stop its workers."""
    global _bench
    _bench = (parent, stop)
    # Ctrl-C reaches the whole process group: the bench alone decides, and stops its workers
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if sys.platform.startswith("linux"):
        # The kernel kills this worker the moment the bench exits, even by SIGKILL. It tracks
        # the thread that forked the worker: _run_local's, which outlives the pool.
        with contextlib.suppress(OSError, AttributeError):  # no prctl: the watchdog remains
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    _exit_if_orphaned()  # the bench may have died before prctl took effect
    threading.Thread(target=_watch, daemon=True, name="glfpinn-bench-watchdog").start()


def _exit_if_orphaned(wait: float = 0.0) -> None:
    """End this worker at once if its bench died (another process adopted it) or closed the
    stop pipe, waiting up to ``wait`` seconds for that: nothing may be written after it."""
    assert _bench is not None, "called in a local bench worker only"
    parent, stop = _bench
    try:
        closed = stop.poll(wait)  # True at end of file too
    except OSError:  # Windows: a named pipe whose other end closed raises instead
        closed = True
    if closed or os.getppid() != parent:
        os._exit(1)


def _watch() -> None:
    """Where prctl is missing (macOS) or the bench stops its workers, end this one within
    _WATCH_S; runs write atomically, so ending mid-cell leaves a resumable run."""
    while True:
        _exit_if_orphaned(wait=_WATCH_S)


def _run_cell_here(config: dict[str, Any], path: str, threads: int) -> dict[str, Any]:
    """``run_cell`` in a local worker, which never starts a cell for a bench that is gone."""
    _exit_if_orphaned()
    return run_cell(config, path, threads)


def _run_local(jobs, root: Path, n_workers: int, threads: int, report) -> None:
    if not jobs:
        return
    # spawn: a forked child would inherit the parent's torch thread pools in a broken state.
    ctx = mp.get_context("spawn")
    stop_read, stop = ctx.Pipe(duplex=False)
    try:
        with cf.ProcessPoolExecutor(
            max_workers=min(n_workers, len(jobs)),
            mp_context=ctx,
            initializer=_worker_init,
            initargs=(os.getpid(), stop_read),
        ) as pool:
            try:
                futures = {
                    pool.submit(_run_cell_here, cfg, str(root / cell.path), threads): cell
                    for cell, cfg in jobs
                }
                for fut in cf.as_completed(futures):
                    cell = futures[fut]
                    try:
                        report(cell, fut.result())
                    except Exception as err:  # a failed cell must not stop the others
                        report(cell, err)
            except BaseException:
                # Interrupted (Ctrl-C, or a result that could not be written): stop the running
                # cells, which resume on the next run, instead of working through the queue
                # unseen.
                stop.close()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
    finally:
        stop.close()
        stop_read.close()


def _run_ray(jobs, root: Path, threads: int, address: str | None, report) -> None:
    try:
        import ray
    except ImportError:
        raise ValueError("--executor ray needs Ray: pip install 'glfpinn[ray]'") from None
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=address, log_to_driver=False, include_dashboard=False)
    try:
        remote = ray.remote(run_cell)
        refs = {}
        for cell, cfg in jobs:
            gpus = 1 if str(cfg.get("device", "")).startswith("cuda") else 0
            ref = remote.options(num_cpus=threads, num_gpus=gpus).remote(
                {**cfg, "device": "cuda" if gpus else cfg["device"]}, str(root / cell.path), threads
            )
            refs[ref] = cell
        pending = list(refs)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            cell = refs[ready[0]]
            try:
                report(cell, ray.get(ready[0]))
            except Exception as err:
                report(cell, f"{type(err).__name__}: {err}")
    finally:
        if started_here:
            ray.shutdown()
