"""What compiling by default costs at start-up: the first training step, cold and cached, and
the run length from which compiling pays for itself.

For each problem, fresh processes time the Trainer's first optimizer step (everything from the
compiler's tracing to the first update) in three states: ``eager`` (``compile=False``),
``cold`` (compiled, with an empty compile cache folder) and ``cached`` (compiled again, in a
new process, with the folder the cold run filled: what every later run on the machine pays).
The start-up compiling adds is the first step's time minus the eager first step's. Each process
then times ``--steps`` more steps; the break-even run length is the start-up compiling adds
over the time it saves per step (cached and cold): below it, a run is faster eager, which is
what ``compile="auto"`` (glfpinn.training.compiling.SHORT_RUN_STEPS) is set from.

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


def first_step(problem: str, compile: bool, threads: int, steps: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    from glfpinn import Uniform, problems
    from glfpinn._allocator import retain_freed_memory
    from glfpinn.training import make_trainer

    name, params = PROBLEMS[problem]
    retain_freed_memory()  # as glfpinn.train does: this script owns its process
    trainer = make_trainer(
        problems.get(name, **params), Uniform(), steps=steps + 1, compile=compile
    )
    t0 = time.perf_counter()
    trainer.optimizer_step()
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    for _ in range(steps):
        trainer.optimizer_step()
    return {"first_s": first, "step_s": (time.perf_counter() - t0) / steps}


def _child(problem: str, compile: bool, cache: str, threads: int, steps: int) -> dict:
    env = {**os.environ, "TORCHINDUCTOR_CACHE_DIR": cache}
    env.pop("TORCH_COMPILE_DISABLE", None)
    args = [sys.executable, __file__, "--child", problem, "--threads", str(threads)]
    args += ["--steps", str(steps)]
    if compile:
        args.append("--compiled")
    out = subprocess.run(args, env=env, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _steps(added_s: float, saved_s: float) -> str:
    """The run length from which compiling pays for the start-up it adds."""
    return f"{added_s / saved_s:.0f}" if saved_s > 0 else "never"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--problems", default="allen-cahn,burgers", help="names or 'all'")
    parser.add_argument("--repeats", type=int, default=2, help="cached runs per problem")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20, help="steps timed after the first")
    parser.add_argument("--child")
    parser.add_argument("--compiled", action="store_true")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(first_step(args.child, args.compiled, args.threads, args.steps)))
        return 0
    names = list(PROBLEMS) if args.problems == "all" else args.problems.split(",")
    print(
        f"threads: {args.threads}; first optimizer step in a new process, seconds; then the "
        f"mean of {args.steps} steps, ms; break-even: steps from which compiling "
        "pays for itself"
    )
    print()
    print(
        "| problem | eager first step | cold compile | cached compile | cached adds "
        "| eager ms/step | compiled ms/step | break-even cached | break-even cold |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for name in names:
        with tempfile.TemporaryDirectory(prefix="glfpinn-compile-cache-") as cache:
            eager = _child(name, False, cache, args.threads, args.steps)
            cold = _child(name, True, cache, args.threads, args.steps)
            cached_runs = [
                _child(name, True, cache, args.threads, args.steps) for _ in range(args.repeats)
            ]
        cached = statistics.median(r["first_s"] for r in cached_runs)
        compiled_step = statistics.median([cold["step_s"], *(r["step_s"] for r in cached_runs)])
        saved = eager["step_s"] - compiled_step

        print(
            f"| {name} | {eager['first_s']:.2f} | {cold['first_s']:.1f} | {cached:.2f} "
            f"| {cached - eager['first_s']:+.2f} | {1e3 * eager['step_s']:.2f} "
            f"| {1e3 * compiled_step:.2f} | {_steps(cached - eager['first_s'], saved)} "
            f"| {_steps(cold['first_s'] - eager['first_s'], saved)} |",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
