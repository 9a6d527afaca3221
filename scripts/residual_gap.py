"""The residual gap of finished bench runs: mean r^2 at fresh uniform points over mean r^2 at
the run's own final training points, beside its L2 error.

A gap near 1 says the set stands for the whole domain; a large gap says the network fits its
points far better than the rest. Robust GLF's design round 5 (docs/results.md) used it to ask
whether a sampler could tell from residuals alone when a fixed set would serve better.

    python scripts/residual_gap.py runs/robust-design --samplers uniform,glf-robust,rad
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

from glfpinn.runs import load_run


def mean_square_residual(run, x: torch.Tensor) -> float:
    x = x.detach().clone().requires_grad_(True)
    return float((run.problem.residual(run.model, x).detach() ** 2).mean())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="a bench output folder")
    parser.add_argument("--samplers", default="uniform,uniform-resample,glf-robust,rad,r3")
    parser.add_argument("--fresh", type=int, default=20000, help="fresh uniform points")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh points")
    args = parser.parse_args()
    wanted = args.samplers.split(",")
    print("experiment,problem,sampler,seed,gap,l2_relative_error")
    for result in sorted(args.bench.glob("*/*/*/seed*/result.json")):
        folder = result.parent
        experiment, problem, sampler = folder.parts[-4:-1]
        if sampler not in wanted:
            continue
        run = load_run(folder)
        generator = torch.Generator().manual_seed(args.seed)
        fresh = run.problem.domain.sample(args.fresh, generator, dtype=run.points.dtype)
        gap = mean_square_residual(run, fresh) / mean_square_residual(run, run.points)
        l2 = json.loads(result.read_text())["l2_relative_error"]
        seed = folder.name.removeprefix("seed")
        print(f"{experiment},{problem},{sampler},{seed},{gap:.3g},{l2:.3g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
