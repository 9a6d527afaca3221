"""Time and peak memory of Laplacian residuals: glfpinn.ops against nested reverse-mode autograd.

Two workloads on a 3x64 tanh MLP with input (x_1..x_d, t) (time last):

train  one optimisation step on a batch: residual ``u_t - Lap_x u - f``, mean square, backward.
score  the same residual on many points in chunks under ``torch.no_grad`` (what adaptive
       samplers do to rank candidates); no parameter gradients.

Methods: ``naive`` is the DeepXDE way (one ``torch.autograd.grad`` for the gradient, then one per
space axis with ``create_graph=True``; for scoring the second-order calls skip ``create_graph``);
``ops`` is ``glfpinn.ops.value_grad_laplacian`` with ``method="auto"`` (the layer-wise Taylor
engine for an MLP); ``jvp`` is the same operator forced onto its generic ``torch.func`` path
(in the train table by default; scoring it at large d takes minutes, ask with ``--methods``).

Each (workload, d, method) runs in a fresh subprocess, so that

* memory: on CPU, the growth of the process's peak resident set size (``ru_maxrss``) while the
  case runs, over its value after the model, the data and a tiny warm-up exist. It therefore
  counts everything the case makes resident (tensors, autograd graph, allocator slack) and
  nothing that existed before. On CUDA, ``torch.cuda.max_memory_allocated`` over the allocation
  before the case (tensors only, not the caching allocator's reserve).
* time: one case, the minimum over ``--repeats`` runs, the first of which is the memory run
  (the minimum because other load on the machine can only add time). ``--clock cpu`` (the
  default on CPU) is the process's CPU time (user + system, all threads), which on a shared
  machine leaves out the time the scheduler gave to other processes; with one thread on an idle
  machine it equals the wall clock. ``--clock wall`` is the wall clock (the default on CUDA,
  after synchronising).

Usage: ``python benchmarks/derivatives.py [--quick] [--device cpu|cuda] [--threads N]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from collections.abc import Callable

import torch
from torch import Tensor

from glfpinn import ops
from glfpinn.nn import MLP

METHODS = ("naive", "ops", "jvp")


def source(x: Tensor) -> Tensor:
    """A smooth forcing term, only so the residual is not trivially the operator itself."""
    return torch.sin(x.sum(dim=1))


def naive_residual(model: MLP, x: Tensor, create_graph: bool) -> Tensor:
    """``u_t - Lap_x u - f`` by nested reverse mode, one backward pass per space axis."""
    x = x.detach().requires_grad_(True)
    u = model(x).reshape(-1)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = torch.zeros_like(u)
    for i in range(x.shape[1] - 1):
        (second,) = torch.autograd.grad(
            grad[:, i].sum(), x, create_graph=create_graph, retain_graph=True
        )
        lap = lap + second[:, i]
    return grad[:, -1] - lap - source(x)


def ops_residual(model: MLP, x: Tensor, method: str) -> Tensor:
    _, grad, lap = ops.value_grad_laplacian(model, x, dims=slice(0, -1), method=method)
    return grad[:, -1] - lap - source(x)


def residual_fn(method: str, create_graph: bool) -> Callable[[MLP, Tensor], Tensor]:
    if method == "naive":
        return lambda m, x: naive_residual(m, x, create_graph)
    return lambda m, x: ops_residual(m, x, "auto" if method == "ops" else "jvp")


def train_step(model: MLP, x: Tensor, method: str) -> None:
    model.zero_grad(set_to_none=True)
    residual = residual_fn(method, create_graph=True)(model, x)
    residual.square().mean().backward()


def score(model: MLP, x: Tensor, method: str, chunk: int) -> Tensor:
    fn = residual_fn(method, create_graph=False)
    with torch.no_grad():
        if method == "naive":  # reverse mode needs a graph, chunk by chunk

            def one(c: Tensor) -> Tensor:
                with torch.enable_grad():
                    return fn(model, c).detach()

            return ops.chunked(one, x, chunk)
        return ops.chunked(lambda c: fn(model, c), x, chunk)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_bytes(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device)
    scale = 1 if platform.system() == "Darwin" else 1024  # ru_maxrss is KiB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * scale


def run_case(spec: dict) -> dict:
    """Worker: one (workload, d, method) in this process; returns time and memory."""
    torch.set_num_threads(spec["threads"])
    device = torch.device(spec["device"])
    gen = torch.Generator().manual_seed(spec["d"])
    torch.manual_seed(spec["d"])  # MLP init uses the global RNG; this process is throwaway
    model = MLP(spec["d"] + 1, hidden=(64, 64, 64), activation="tanh").to(device)
    n = spec["batch"] if spec["task"] == "train" else spec["points"]
    x = torch.rand(n, spec["d"] + 1, generator=gen).to(device)

    def case() -> None:
        if spec["task"] == "train":
            train_step(model, x, spec["method"])
        else:
            score(model, x, spec["method"], spec["chunk"])

    # warm-up on a few points: loads kernels and lazy modules outside the measurement
    if spec["task"] == "train":
        train_step(model, x[:8], spec["method"])
    else:
        score(model, x[:8], spec["method"], spec["chunk"])
    _sync(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    base = torch.cuda.memory_allocated(device) if device.type == "cuda" else _peak_bytes(device)

    clock = time.process_time if spec["clock"] == "cpu" else time.perf_counter
    times = []
    for _ in range(spec["repeats"]):
        start = clock()
        case()
        _sync(device)
        times.append(clock() - start)
        if len(times) == 1:
            peak = _peak_bytes(device) - base
    return {"seconds": min(times), "peak_mib": peak / 2**20}


#: glibc settings for ``--malloc-tuned``: keep freed memory in the heap instead of returning it
#: to the OS, so that a case's large buffers are not page-faulted in afresh on every step.
TUNED_MALLOC = {"MALLOC_MMAP_THRESHOLD_": str(32 * 2**20), "MALLOC_TRIM_THRESHOLD_": str(2**34)}


def spawn(spec: dict, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--case", json.dumps(spec)],
        check=True,
        capture_output=True,
        text=True,
        env=None if env is None else {**os.environ, **env},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def fmt_time(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--quick", action="store_true", help="small sizes, about a minute")
    p.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--clock", choices=("cpu", "wall"), help="default: cpu on CPU, wall on CUDA")
    p.add_argument("--dims", type=int, nargs="*", help="space dimensions (default by mode)")
    p.add_argument("--batch", type=int, default=1024, help="training batch")
    p.add_argument("--points", type=int, default=None, help="points to score")
    p.add_argument("--chunk", type=int, default=4096, help="scoring chunk size")
    p.add_argument("--repeats", type=int, default=None)
    p.add_argument(
        "--methods",
        nargs="*",
        choices=METHODS,
        help="default: naive and ops, plus jvp for train unless --quick (jvp scoring is slow)",
    )
    p.add_argument(
        "--malloc-tuned",
        action="store_true",
        help="run the cases with glibc's heap trimming off (all methods alike); see TUNED_MALLOC",
    )
    p.add_argument("--tasks", nargs="*", default=["train", "score"], choices=("train", "score"))
    p.add_argument("--case", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.case:
        print(json.dumps(run_case(json.loads(args.case))))
        return

    clock = args.clock or ("cpu" if args.device == "cpu" else "wall")
    dims = args.dims or ([2, 5, 20] if args.quick else [2, 5, 10, 20, 50, 100])
    points = args.points or (20_000 if args.quick else 100_000)
    repeats = args.repeats or (6 if args.quick else 8)
    base = args.methods or ["naive", "ops"]
    print(
        f"# torch {torch.__version__}, device {args.device}, threads {args.threads}; "
        f"3x64 tanh MLP, in_dim = d + 1; train batch {args.batch}; "
        f"score {points} points in chunks of {args.chunk}; time = {clock} clock, "
        f"min of {repeats} runs (train) / {max(1, repeats // 3)} (score); "
        "memory = peak RSS growth (CPU) / peak allocated growth (CUDA)"
        f"{'; glibc heap trimming off' if args.malloc_tuned else ''}\n"
    )
    for task in args.tasks:
        methods = base if args.methods or args.quick or task == "score" else list(METHODS)
        rows = []
        for d in dims:
            res = {}
            for method in methods:
                spec = dict(
                    task=task,
                    d=d,
                    method=method,
                    device=args.device,
                    threads=args.threads,
                    clock=clock,
                    repeats=repeats if task == "train" else max(1, repeats // 3),
                    batch=args.batch,
                    points=points,
                    chunk=args.chunk,
                )
                res[method] = spawn(spec, TUNED_MALLOC if args.malloc_tuned else None)
            rows.append((d, res))
        header = ["d"]
        for m in methods:
            header += [f"{m} time", f"{m} MiB"]
        ratios = [m for m in methods if m != "naive"] if "naive" in methods else []
        header += [f"naive/{m} time" for m in ratios] + [f"naive/{m} mem" for m in ratios]
        title = (
            f"train step, batch {args.batch}"
            if task == "train"
            else f"score {points} points, no_grad"
        )
        print(f"## {title}\n")
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for d, res in rows:
            cells = [str(d)]
            for m in methods:
                cells += [fmt_time(res[m]["seconds"]), f"{res[m]['peak_mib']:.0f}"]
            for m in ratios:
                cells.append(f"{res['naive']['seconds'] / res[m]['seconds']:.1f}x")
            for m in ratios:
                mem = res[m]["peak_mib"]
                cells.append(f"{res['naive']['peak_mib'] / mem:.1f}x" if mem > 0.5 else "n/a")
            print("| " + " | ".join(cells) + " |")
        print(flush=True)


if __name__ == "__main__":
    main()
