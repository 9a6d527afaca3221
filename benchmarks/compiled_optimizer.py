"""Does compiling the optimizer's step on top of the compiled loss pay? allen-cahn, N = 2,000.

Two trainers of the default (compiled loss, fused Adam) in one process, one of them with
``torch.compile(optimizer.step)``, timed in alternating blocks of steps after a warm-up.

    python benchmarks/compiled_optimizer.py
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from glfpinn import Never, Uniform, problems
from glfpinn._allocator import retain_freed_memory
from glfpinn.training import make_trainer


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=5)
    parser.add_argument("--block-steps", type=int, default=100)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    trainers = {}
    for compiled_step in (False, True):
        retain_freed_memory()  # as glfpinn.train does: this script owns its process
        trainer = make_trainer(
            problems.get("allen-cahn"), Uniform(), steps=10**9, schedule=Never(), seed=0
        )
        if compiled_step:
            optimizer = trainer.state.optimizers[0]
            optimizer.step = torch.compile(optimizer.step)
        for _ in range(30):  # compiles, then warms up
            trainer.optimizer_step()
        trainers[compiled_step] = trainer
    times: dict[bool, list[float]] = {False: [], True: []}
    for _ in range(args.blocks):
        for compiled_step, trainer in trainers.items():
            t0 = time.perf_counter()
            for _ in range(args.block_steps):
                trainer.optimizer_step()
            times[compiled_step].append((time.perf_counter() - t0) / args.block_steps * 1e3)
    print(f"{args.threads} threads, median of {args.blocks} blocks of {args.block_steps} steps")
    print("| optimizer step | ms/step |")
    print("|---|---|")
    for compiled_step, label in ((False, "fused Adam (the default)"), (True, "compiled")):
        print(f"| {label} | {statistics.median(times[compiled_step]):.2f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
