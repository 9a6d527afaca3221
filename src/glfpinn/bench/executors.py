"""Running a bench's cells: local worker processes by default, Ray tasks on request.

A finished cell (valid result.json) is never recomputed; an interrupted or failed one runs
again, from its checkpoint; an unfinished cell whose stored config differs from the bench's is
started again, and a directory holding finished cells of another grid is refused (bench.json
records the grid's hash) unless ``overwrite``. Local workers die with the bench process,
however it dies (SIGKILL included): an orphan would go on taking queued cells and write into
directories that a rerun of the bench is writing too. A worker that dies (a signal, os.abort,
an out-of-memory kill) fails its own cell alone, and another takes its place.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import multiprocessing as mp
import os
import shutil
import signal
import time
import traceback
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.connection import wait as mp_wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

import yaml

from glfpinn._io import atomic_write_bytes, atomic_write_json, atomic_write_text, read_limited
from glfpinn._lifeline import die_with_parent, watch_parent
from glfpinn.bench.grid import _LABEL, Bench, Cell
from glfpinn.config import yaml_load
from glfpinn.runs import CONFIG, METRICS, RESULT, read_result

__all__ = ["run_cell", "run_bench", "grid_hash", "EXECUTORS", "BENCH_JSON"]

EXECUTORS = ("local", "ray")
_SHIPPED = (CONFIG, METRICS, RESULT)
#: A failed cell's traceback, or how its worker process died.
ERROR = "error.txt"

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
    stored = _stored_config(out)
    done = read_result(out) if stored is not None and _same_run(stored, cfg.to_dict()) else None
    if done is None:
        if stored is not None and _same_run(stored, cfg.to_dict()):
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


#: The most bytes of a cell's config.yaml read back (a run's config is a few hundred).
_MAX_CONFIG_BYTES = 1 << 20


def _stored_config(cell_dir: Path) -> dict[str, Any] | None:
    """The config a cell's directory holds, or None (no run, or a damaged config.yaml: the
    cell is then run again)."""
    try:
        data = yaml_load(read_limited(cell_dir / CONFIG, _MAX_CONFIG_BYTES).decode("utf-8"))
    except (OSError, ValueError, yaml.YAMLError):
        return None
    return data if isinstance(data, dict) else None


def _same_run(stored: dict[str, Any], config: dict[str, Any]) -> bool:
    """Whether a cell's stored config is ``config``'s run; the device is where the executor
    put it (``cuda:1`` for ``cuda``), not what the run is. A setting added to glfpinn after the
    cell ran is missing from its config.yaml and ran at its default: an upgrade keeps the
    finished cells of an unchanged grid."""
    from glfpinn.config import RunConfig

    return {**RunConfig.defaults(), **stored, "device": None} == {**config, "device": None}


def _other_run(cell_dir: Path, config: dict[str, Any]) -> bool:
    """Whether ``cell_dir`` holds a finished run of settings other than ``config``'s."""
    stored = _stored_config(cell_dir)
    return (
        stored is not None and not _same_run(stored, config) and read_result(cell_dir) is not None
    )


def _finished(cell_dir: Path, config: dict[str, Any]) -> bool:
    """Whether ``cell_dir`` holds a finished run of ``config``."""
    stored = _stored_config(cell_dir)
    return stored is not None and _same_run(stored, config) and read_result(cell_dir) is not None


#: A bench directory's record of the grid whose results it holds.
BENCH_JSON = "bench.json"


def grid_hash(bench: Bench) -> str:
    """SHA-256 of what a bench's results depend on: every cell's path and run config (a
    comment or the note in the bench file may change; a setting, a seed or a label may not)."""
    cells = [[str(c.path), c.config.to_dict()] for c in bench.cells]
    text = json.dumps(cells, sort_keys=True, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _claim(root: Path, bench: Bench, source: str | None, overwrite: bool) -> None:
    """Make ``root`` this bench's directory, recording the grid in bench.json. A directory
    holding the results of another grid (the bench file was edited since) is refused, as
    mixing the two would report cells of different settings as one experiment; with
    ``overwrite`` its cells that are not this grid's are removed, and cells whose settings
    changed run again."""
    meta_path = root / BENCH_JSON
    digest = grid_hash(bench)
    try:  # a damaged bench.json records nothing: the cells' own configs still say
        previous = json.loads(read_limited(meta_path, _MAX_CONFIG_BYTES))
    except (OSError, ValueError):
        previous = None
    if not isinstance(previous, dict):
        previous = None
    stale = [c for c in bench.cells if _other_run(root / c.path, c.config.to_dict())]
    changed = previous is not None and previous.get("grid_sha256") not in (None, digest)
    if (changed or stale) and not overwrite:
        why = (
            f"cell {stale[0].path} was run with other settings"
            if stale
            else "the bench file has changed since (another grid hash)"
        )
        raise ValueError(
            f"bench directory {str(root)!r} holds the results of another grid: {why}; "
            "use a new --out, or --overwrite to replace them"
        )
    if overwrite and previous:
        keep = {str(c.path) for c in bench.cells}
        for name in previous.get("cells", []):
            _remove_cell(root, name, keep)
    atomic_write_json(
        meta_path,
        {
            "profile": bench.profile,
            "note": bench.note,
            "config": source,
            "grid_sha256": digest,
            "cells": [str(c.path) for c in bench.cells],
            **({"published": bench.published} if bench.published else {}),
        },
    )


def _remove_cell(root: Path, name: Any, keep: set[str]) -> None:
    """Remove the run directory of a previous grid's cell ``name`` (as bench.json lists it)
    that this grid lacks; anything that is not a cell's run directory is left alone."""
    if not isinstance(name, str) or name in keep:
        return
    parts = Path(name).parts
    if (
        len(parts) != 4
        or not all(_LABEL.match(p) for p in parts)
        or not parts[3].startswith("seed")
    ):
        return
    cell_dir = root / name
    if cell_dir.resolve() != root.resolve() / name:  # a symlink on the way: not the bench's
        return
    if cell_dir.is_dir() and (cell_dir / CONFIG).is_file():
        shutil.rmtree(cell_dir)
        for parent in cell_dir.parents:  # the sampler, problem and experiment folders, if empty
            if parent == root or any(parent.iterdir()):
                break
            parent.rmdir()


def _land(cell_dir: Path, files: dict[str, bytes]) -> None:
    """Write a remote cell's files where the driver sees them (no shared filesystem needed)."""
    for name, data in files.items():
        if not (cell_dir / name).exists():
            atomic_write_bytes(cell_dir / name, data)


def _record_failure(cell_dir: Path, err: BaseException | str) -> None:
    text = err if isinstance(err, str) else "".join(traceback.format_exception(err))
    atomic_write_text(cell_dir / ERROR, text)


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
    source: str | None = None,
    overwrite: bool = False,
    log: Callable[[str], None] = print,
) -> dict[str, int]:
    """Run every cell of ``bench`` into ``out``; returns counts of done/ran/failed cells.

    ``out``/bench.json records the grid (``source``: the bench file's name); a directory
    holding another grid's results is refused unless ``overwrite`` (see :func:`_claim`). A
    rerun reuses finished cells and runs the others, failed ones included."""
    if executor not in EXECUTORS:
        raise ValueError(f"executor={executor!r} is unknown; allowed: {', '.join(EXECUTORS)}")
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    _claim(root, bench, source, overwrite)
    todo = []
    counts = {"cells": len(bench.cells), "reused": 0, "ran": 0, "failed": 0}
    for cell in bench.cells:
        if _finished(root / cell.path, cell.config.to_dict()):
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
            (cell_dir / ERROR).unlink(missing_ok=True)  # an earlier attempt's
            res = outcome["result"]
            counts["ran"] += 1
            l2 = res["l2_relative_error"]
            measure = f"L2 {l2:.3e}" if l2 is not None else f"residual {res['residual_mean']:.3e}"
            log(f"[{finished}/{len(todo)}] {cell.path}: {measure}, {res['wall_time_s']:.1f} s")
        else:
            counts["failed"] += 1
            _record_failure(cell_dir, outcome)
            first = str(outcome).strip().splitlines()[-1] if isinstance(outcome, str) else ""
            log(
                f"[{finished}/{len(todo)}] {cell.path}: FAILED"
                + (f": {first[:200]}" if first else "")
                + f" (see {cell_dir / ERROR})"
            )

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
    # The kernel kills this worker the moment the bench exits, even by SIGKILL (Linux); the
    # bench starts its workers from the thread that runs the grid, which outlives them.
    die_with_parent(parent)
    _exit_if_orphaned()  # the bench may have closed the stop pipe already
    # where prctl is missing (macOS) or the bench stops its workers: end within _WATCH_S;
    # runs write atomically, so ending mid-cell leaves a resumable run
    watch_parent(parent, _WATCH_S, also=_stop_requested)


def _stop_requested(wait: float) -> bool:
    """Whether the bench closed the stop pipe (or died), waiting up to ``wait`` seconds."""
    assert _bench is not None, "called in a local bench worker only"
    try:
        return bool(_bench[1].poll(wait))  # True at end of file too
    except OSError:  # Windows: a named pipe whose other end closed raises instead
        return True


def _exit_if_orphaned() -> None:
    """End this worker at once if its bench died (another process adopted it) or closed the
    stop pipe: nothing may be written after it."""
    assert _bench is not None, "called in a local bench worker only"
    if _stop_requested(0.0) or os.getppid() != _bench[0]:
        os._exit(1)


def _worker_main(jobs: Connection, parent: int, stop: Connection, threads: int) -> None:
    """A local worker: run the cells the bench sends on ``jobs``, one at a time, and send back
    each outcome, ``("done", run_cell's dict)`` or ``("error", traceback text)``; end at None
    or when the bench is gone. A cell that kills this process (a signal, os.abort, an
    out-of-memory kill) sends nothing: the bench sees the process end and names the cause."""
    _worker_init(parent, stop)
    while True:
        try:
            job = jobs.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        config, path = job
        _exit_if_orphaned()  # never start a cell for a bench that is gone
        try:
            outcome: tuple[str, Any] = ("done", run_cell(config, path, threads))
        except BaseException as err:  # a failed cell must not end the worker
            outcome = ("error", "".join(traceback.format_exception(err)))
        jobs.send(outcome)


def _death(code: int | None) -> str:
    """How a worker process ended, for a cell's error.txt."""
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        why = " (the out-of-memory killer sends it, among others)" if -code == 9 else ""
        return f"was killed by {name}{why}"
    return f"exited with status {code} without reporting a result"


@dataclass
class _Worker:
    """One local worker process, the bench's end of its job pipe, and the cell it runs."""

    process: BaseProcess
    jobs: Connection
    cell: Cell | None = None


class _Pool:
    """Up to ``size`` worker processes, each running one cell at a time. A worker that dies
    fails its own cell alone, is replaced when a cell needs it, and the grid goes on (a
    ProcessPoolExecutor fails every queued cell once one worker dies)."""

    def __init__(self, size: int, threads: int) -> None:
        # spawn: a forked child would inherit the parent's torch thread pools in a broken state
        self.ctx = mp.get_context("spawn")
        self.size = size
        self.threads = threads
        self.workers: list[_Worker] = []
        self._stop_read, self._stop = self.ctx.Pipe(duplex=False)

    def _start(self) -> _Worker:
        ours, theirs = self.ctx.Pipe(duplex=True)
        process = self.ctx.Process(
            target=_worker_main,
            args=(theirs, os.getpid(), self._stop_read, self.threads),
            name="glfpinn-bench-worker",
        )
        process.start()
        theirs.close()  # the worker's end lives in the worker: its death reads as end of file
        worker = _Worker(process, ours)
        self.workers.append(worker)
        return worker

    def submit(self, cell: Cell, config: dict[str, Any], path: str) -> None:
        """Send a cell to an idle worker, starting one if none is idle (or the idle one has
        died since)."""
        for worker in [w for w in self.workers if w.cell is None]:
            try:
                worker.jobs.send((config, path))
            except OSError:  # it died while idle: the next one, or a new one
                self._drop(worker)
                continue
            worker.cell = cell
            return
        worker = self._start()
        worker.jobs.send((config, path))
        worker.cell = cell

    def _drop(self, worker: _Worker) -> None:
        worker.process.join()
        worker.jobs.close()
        self.workers.remove(worker)

    @property
    def busy(self) -> int:
        return sum(w.cell is not None for w in self.workers)

    def outcomes(self) -> list[tuple[Cell, tuple[str, Any]]]:
        """Wait until at least one busy worker has an outcome; return each cell that ended
        with it: its worker's message, or ``("died", how)`` for a worker that died."""
        waiting = {w.jobs: w for w in self.workers if w.cell is not None}
        sentinels = {w.process.sentinel: w for w in self.workers}
        ready = mp_wait([*waiting, *sentinels])
        ended: list[tuple[Cell, tuple[str, Any]]] = []
        for worker in list(self.workers):
            message, dead = None, worker.process.sentinel in ready
            if worker.cell is not None and (worker.jobs in ready or worker.jobs.poll()):
                try:
                    message = worker.jobs.recv()
                except (EOFError, OSError):  # it died before it could send
                    dead = True
            if message is not None:
                assert worker.cell is not None
                ended.append((worker.cell, message))
                worker.cell = None
            elif dead or not worker.process.is_alive():
                worker.process.join()
                if worker.cell is not None:
                    ended.append((worker.cell, ("died", _death(worker.process.exitcode))))
                self._drop(worker)
        return ended

    def close(self, wait: float) -> None:
        """Stop every worker: idle ones by the None they read, busy ones through the stop pipe
        (they end within _WATCH_S); killed after ``wait`` seconds. The idle ones are joined
        before the stop pipe closes: their watchdog would otherwise end them by os._exit in the
        middle of Python's exit, before torch's compile workers are shut down, and the semaphores
        those leave make the resource tracker warn at the bench's own exit."""
        for worker in self.workers:
            with contextlib.suppress(OSError):
                worker.jobs.send(None)
        deadline = time.monotonic() + wait
        for worker in self.workers:
            if worker.cell is None:
                worker.process.join(max(0.0, deadline - time.monotonic()))
        self._stop.close()
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                worker.process.kill()
                worker.process.join()
            worker.jobs.close()
        self._stop_read.close()
        self.workers.clear()


def _run_local(jobs, root: Path, n_workers: int, threads: int, report) -> None:
    if not jobs:
        return
    queue = deque(jobs)
    pool = _Pool(min(n_workers, len(jobs)), threads)
    try:
        while queue or pool.busy:
            while queue and pool.busy < pool.size:
                cell, cfg = queue.popleft()
                pool.submit(cell, cfg, str(root / cell.path))
            for cell, (kind, value) in pool.outcomes():
                if kind == "done":
                    report(cell, value)
                elif kind == "died" and read_result(root / cell.path) is not None:
                    # it wrote its result, then died before sending it: the cell is done
                    report(cell, {"result": read_result(root / cell.path), "files": {}})
                else:
                    report(cell, f"the cell's worker process {value}" if kind == "died" else value)
    finally:
        # Interrupted (Ctrl-C, or a result that could not be written): stop the running cells,
        # which resume on the next run, instead of working through the queue unseen.
        pool.close(wait=10 * _WATCH_S)


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
