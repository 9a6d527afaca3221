"""What compiling by default costs at start-up: the first training step, cold and cached.

For each problem, fresh processes time the Trainer's first optimizer step (everything from the
compiler's tracing to the first update) in three states: ``eager`` (``compile=False``),
``cold`` (compiled, with an empty compile cache folder) and ``cached`` (compiled again, in a
new process, with the folder the cold run filled: what every later run on the machine pays).
The start-up compiling adds is the first step's time minus the eager first step's.

    python benchmarks/compile_startup.py                         # allen-cahn and burgers
    python benchmarks/compile_startup.py --problems all --repeats 3
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

PROBLEMS = {
    "allen-cahn": ("allen-cahn", {}),
    "burgers": ("burgers", {}),
    "laplace": ("laplace", {}),
    "dispersive-10d": ("dispersive-10d", {}),
    "reaction-diffusion-20d": ("reaction-diffusion-20d", {}),
}


def first_step(problem: str, compile: bool, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from glfpinn import Uniform, problems
    from glfpinn._allocator import retain_freed_memory
    from glfpinn.training import make_trainer

    name, params = PROBLEMS[problem]
    retain_freed_memory()  # as glfpinn.train does: this script owns its process
    trainer = make_trainer(problems.get(name, **params), Uniform(), steps=10, compile=compile)
    t0 = time.perf_counter()
    trainer.optimizer_step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    trainer.optimizer_step()
    return {"first_s": first, "second_s": time.perf_counter() - t0}


def _child(problem: str, compile: bool, cache: str, threads: int) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    env.pop("TORCH_COMPILE_DISABLE", None)
    args = [sys.executable, __file__, "--child", problem, "--threads", str(threads)]
    if compile:
        args.append("--compiled")
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="allen-cahn,burgers", help="names or 'all'")
    parser.add_argument("--repeats", type=int, default=2, help="cached runs per problem")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child")
    parser.add_argument("--compiled", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(first_step(args.child, args.compiled, args.threads)))
        return 0
    names = list(PROBLEMS) if args.problems == "all" else args.problems.split(",")
    print(f"threads: {args.threads}; first optimizer step in a new process, seconds")
    print()
    print("| problem | eager first step | cold compile | cached compile | cached adds |")
    print("|---|---|---|---|---|")
    for name in names:
        with tempfile.TemporaryDirectory(prefix="glfpinn-compile-cache-") as cache:
            eager = _child(name, False, cache, args.threads)["first_s"]
            cold = _child(name, True, cache, args.threads)["first_s"]
            cached = statistics.median(
                _child(name, True, cache, args.threads)["first_s"] for _ in range(args.repeats)
            )
        print(
            f"| {name} | {eager:.2f} | {cold:.1f} | {cached:.2f} | {cached - eager:+.2f} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
