"""Running a bench's cells: local worker processes by default, Ray tasks on request.

A finished cell (valid result.json) is never recomputed; an interrupted one resumes from its
checkpoint; a cell whose stored config differs from the bench's is started again.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing as mp
import os
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from glfpinn._io import atomic_write_bytes, atomic_write_text
from glfpinn.bench.grid import Bench, Cell
from glfpinn.config import yaml_load
from glfpinn.runs import CONFIG, METRICS, RESULT, read_result

__all__ = ["run_cell", "run_bench", "EXECUTORS"]

EXECUTORS = ("local", "ray")
_SHIPPED = (CONFIG, METRICS, RESULT)


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
        done = run(cfg, out, mode=mode)
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


def _run_local(jobs, root: Path, n_workers: int, threads: int, report) -> None:
    if not jobs:
        return
    # spawn: a forked child would inherit the parent's torch thread pools in a broken state.
    ctx = mp.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=min(n_workers, len(jobs)), mp_context=ctx) as pool:
        futures = {
            pool.submit(run_cell, cfg, str(root / cell.path), threads): cell for cell, cfg in jobs
        }
        for fut in cf.as_completed(futures):
            cell = futures[fut]
            try:
                report(cell, fut.result())
            except Exception as err:  # a failed cell must not stop the others
                report(cell, err)


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
