"""`make demo`: robust GLF, paper GLF, RAD and fixed uniform points on Allen-Cahn, side by side.

Each run goes to runs/demo-<sampler>/ (result.json, metrics.jsonl, config.yaml); rerunning the
demo resumes or reuses finished runs. The budget is small on purpose (a few minutes on 2 cores):
the errors are far from the paper's 20,000-step figures, the costs already show the difference.
One seed is an anecdote: the multi-seed verdict is docs/results.md's medium profile, which on
Allen-Cahn has GLF beating the uniform baselines and RAD's cost, not RAD's error at equal steps.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from glfpinn.config import RunConfig
from glfpinn.runs import run

#: robust GLF first: the one to pick on a problem of your own (docs/samplers.md, "Robust GLF")
SAMPLERS = {"glf-robust": {}, "glf": {}, "rad": {}, "uniform": {}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2000, help="Adam steps")
    parser.add_argument("--lbfgs-steps", type=int, default=500)
    parser.add_argument("--out", default="runs")
    args = parser.parse_args()

    rows = []
    for name, params in SAMPLERS.items():
        cfg = RunConfig(
            problem="allen-cahn",
            sampler=name,
            sampler_params=params,
            steps=args.steps,
            lbfgs_steps=args.lbfgs_steps,
            resample_every=250,
            eval_every=100,
            seed=0,
        )
        print(f"training {name} on allen-cahn ({args.steps} Adam + {args.lbfgs_steps} L-BFGS)")
        out = f"{args.out}/demo-{name}"
        mode = "resume" if (Path(out) / "config.yaml").exists() else "new"
        rows.append(run(cfg, out, mode=mode, progress=sys.stderr.isatty()))

    header = f"{'sampler':<10} {'L2 rel. error':>14} {'wall s':>8} {'sampling s':>11} "
    header += f"{'scored pts':>11} {'peak MB':>8}"
    print("\n" + header)
    for r in rows:
        print(
            f"{r['sampler']:<10} {r['l2_relative_error']:>14.4e} {r['wall_time_s']:>8.1f} "
            f"{r['sampling_time_s']:>11.3f} {r['residual_evals']:>11d} {r['peak_memory_mb']:>8.0f}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
