"""What compiling (the default) buys on every problem: eager and compiled training steps.

For each problem (default N, network and residual), trainers for each mode are built in one
process and timed in alternating blocks of steps after a warm-up, so that drift in the
machine's speed hits all modes alike; the table gives the median block and the time of the
first (compiling) step. Modes: ``eager`` (``compile=False``), ``compiled`` (the default), and
for the two 2-D evolution problems ``eager-taylor`` (the eager trainer with
``gradient_and_axis_jet`` forced to the Taylor stream engine that compilation uses, to separate
the engine from the compiler).

    python benchmarks/compile_speedup.py                       # CPU, all problems
    python benchmarks/compile_speedup.py --problems allen-cahn --blocks 15
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import statistics
import time
import warnings
from unittest import mock

import torch

from glfpinn import Never, Uniform, ops, problems
from glfpinn._allocator import retain_freed_memory
from glfpinn.training import make_trainer

TAYLOR_PROBLEMS = ("allen-cahn", "burgers")  # the residuals built on gradient_and_axis_jet


def _engine(mode: str):
    if mode != "eager-taylor":
        return contextlib.nullcontext()
    forced = functools.partial(ops.gradient_and_axis_jet, method="taylor")
    return mock.patch.object(ops, "gradient_and_axis_jet", forced)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--problems", default=",".join(problems.names()))
    parser.add_argument("--blocks", type=int, default=5, help="timed blocks per mode")
    parser.add_argument("--block-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    sync = torch.cuda.synchronize if args.device.startswith("cuda") else (lambda: None)
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    rows = []
    for name in args.problems.split(","):
        modes = ["eager", "compiled"] + (["eager-taylor"] if name in TAYLOR_PROBLEMS else [])
        trainers, first = {}, {}
        for mode in modes:
            retain_freed_memory()  # as glfpinn.train does: this script owns its process
            trainer = make_trainer(
                problems.get(name),
                Uniform(),
                steps=10**9,
                schedule=Never(),
                seed=0,
                device=args.device,
                compile=mode == "compiled",  # the default; eager-taylor and eager are not
            )
            with _engine(mode):
                t0 = time.perf_counter()
                trainer.optimizer_step()
                sync()
                first[mode] = time.perf_counter() - t0
                for _ in range(args.block_steps):  # warm-up
                    trainer.optimizer_step()
            trainers[mode] = trainer
        blocks: dict[str, list[float]] = {m: [] for m in modes}
        for _ in range(args.blocks):
            for mode in modes:
                with _engine(mode):
                    sync()
                    t0 = time.perf_counter()
                    for _ in range(args.block_steps):
                        trainers[mode].optimizer_step()
                    sync()
                blocks[mode].append((time.perf_counter() - t0) / args.block_steps)
        ms = {m: 1e3 * statistics.median(b) for m, b in blocks.items()}
        rows.append((name, ms, first))
        print(f"{name}: " + ", ".join(f"{m} {v:.2f} ms" for m, v in ms.items()), flush=True)

    print(
        f"\ndevice {args.device}, {args.threads} threads, torch {torch.__version__}; median of "
        f"{args.blocks} blocks of {args.block_steps} steps\n"
    )
    print(
        "| problem | eager ms/step | compiled ms/step | speed-up | first compiled step s "
        "| eager-taylor ms/step |"
    )
    print("|---|---|---|---|---|---|")
    for name, ms, first in rows:
        taylor = f"{ms['eager-taylor']:.2f}" if "eager-taylor" in ms else "-"
        print(
            f"| {name} | {ms['eager']:.2f} | {ms['compiled']:.2f} "
            f"| {ms['eager'] / ms['compiled']:.2f}x | {first['compiled']:.1f} | {taylor} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
