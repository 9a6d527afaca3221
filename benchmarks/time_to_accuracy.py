"""Wall time until the L2 relative error first drops below a target, per sampler.

allen-cahn and burgers, GLF against RAD and uniform resampling, N = 2000, 3 x 64 tanh, Adam
(lr 1e-3) then L-BFGS, resampling every 500 steps, L2 checked every 50 steps (evaluation time
included in the wall time, as a user would see it). A run stops at the target or at its step or
time budget, and the table says which.

    python benchmarks/time_to_accuracy.py                     # CPU, target 1e-2
    python benchmarks/time_to_accuracy.py --compile          # Trainer(compile=True)
    python benchmarks/time_to_accuracy.py --device cuda --max-seconds 120

With ``--compile`` the compilation (seconds) counts in the wall time, as a user waits for it.
"""

from __future__ import annotations

import argparse
import math

import torch

from glfpinn import Callback, Every, NonFiniteLossError, problems, samplers
from glfpinn._allocator import retain_freed_memory
from glfpinn.training import make_trainer


class StopAtTarget(Callback):
    def __init__(self, target: float, max_seconds: float) -> None:
        self.target = target
        self.max_seconds = max_seconds
        self.reached: tuple[int, float] | None = None

    def on_validation_end(self, trainer, metrics) -> None:
        if metrics["l2_relative_error"] < self.target:
            self.reached = (metrics["step"], metrics["elapsed_s"])
            trainer.should_stop = True
        elif metrics["elapsed_s"] > self.max_seconds:
            trainer.should_stop = True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--target", type=float, default=1e-2)
    parser.add_argument("--problems", default="burgers,allen-cahn")
    parser.add_argument("--samplers", default="glf,rad,uniform-resample")
    parser.add_argument("--steps", type=int, default=10_000, help="Adam steps")
    parser.add_argument("--lbfgs-steps", type=int, default=5_000)
    parser.add_argument("--max-seconds", type=float, default=300.0, help="per run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="Trainer(compile=True)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    rows = []
    for p in args.problems.split(","):
        for s in args.samplers.split(","):
            stop = StopAtTarget(args.target, args.max_seconds)
            retain_freed_memory()  # as glfpinn.train does: this script owns its process
            trainer = make_trainer(
                problems.get(p),
                samplers.get(s),
                steps=args.steps,
                lbfgs_steps=args.lbfgs_steps,
                schedule=Every(500),
                eval_every=50,
                seed=args.seed,
                device=args.device,
                compile=args.compile,
                callbacks=[stop],
            )
            try:
                result = trainer.fit()
            except NonFiniteLossError:  # reported as such: a diverged run is a result too
                rows.append((p, s, stop.reached, None, trainer))
                print(f"{p} {s}: diverged at step {trainer.state.step}", flush=True)
                continue
            rows.append((p, s, stop.reached, result, trainer))
            print(
                f"{p} {s}: {'reached' if stop.reached else 'not reached'} "
                f"({result.steps} steps, {result.wall_time_s:.0f} s, L2 "
                f"{result.l2_relative_error:.2e})",
                flush=True,
            )

    print(
        f"\nTime to L2 < {args.target:g}; device {args.device}, {args.threads} threads, "
        f"seed {args.seed}, budget {args.steps} Adam + {args.lbfgs_steps} L-BFGS steps or "
        f"{args.max_seconds:.0f} s per run{', compiled' if args.compile else ''}\n"
    )
    print("| problem | sampler | reached at step | time s | final L2 | steps run | sampling s |")
    print("|---|---|---|---|---|---|---|")
    for p, s, reached, r, trainer in rows:
        step, secs = reached if reached else ("not reached", math.nan)
        if r is None:
            step = f"diverged (non-finite loss at step {trainer.state.step})"
            l2, at = trainer.state.metrics["l2_relative_error"], trainer.state.step
            print(f"| {p} | {s} | {step} | nan | {l2:.2e} | {at} | - |")
            continue
        print(
            f"| {p} | {s} | {step} | {secs:.1f} | {r.l2_relative_error:.2e} | {r.steps} "
            f"| {r.sampling_time_s:.1f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
