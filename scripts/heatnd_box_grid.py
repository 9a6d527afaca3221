"""Heat-ND runs scored on PINNacle's first test set: a grid over the bounding box, not the ball.

PINNacle's first code (commit 91a3aca, src/utils/callbacks.py, until commit 8bc6e20 of
2023-08-08) measured a case with an exact solution on int(1e4^(1/d)) points per axis of the
bounding box: for Heat-ND, 4^6 = 4,096 points of [-1, 1]^5 x [0, 1], of which 128 lie in the unit
ball the problem is posed on, carrying 0.2% of the solution's squared norm (u = exp(|x|^2/2 + t)
reaches e^3.5 at the box's corners). That error measures extrapolation outside the domain. This
prints it beside each run's own error (in the ball), for the bench folders given
(docs/results.md, "PINNacle's cases").

    python scripts/heatnd_box_grid.py runs/pinnacle
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from pathlib import Path

import numpy as np

from glfpinn.runs import load_run

#: Points per axis of PINNacle's first test grid for a 6-input case: int(1e4 ** (1 / 6)).
PER_AXIS = int(1e4 ** (1 / 6))


def box_grid(space_dim: int = 5) -> np.ndarray:
    """PINNacle's first test grid for Heat-ND: PER_AXIS points per axis of [-1, 1]^d x [0, 1]."""
    space, time = np.linspace(-1.0, 1.0, PER_AXIS), np.linspace(0.0, 1.0, PER_AXIS)
    return np.array([(*x, t) for x in itertools.product(space, repeat=space_dim) for t in time])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="a bench output folder with heat-5d runs")
    args = parser.parse_args()
    grid = box_grid()
    print("sampler,seed,l2_in_ball,l2_box_grid")
    for result in sorted(args.bench.glob("*/heat-5d/*/seed*/result.json")):
        run = load_run(result.parent)
        u = run.problem.solution(grid)  # exp(|x|^2 / 2 + t): a formula, defined off the ball too
        predicted = np.asarray(run.predict(grid.astype(np.float32)), dtype=np.float64).reshape(-1)
        box = np.linalg.norm(predicted - u) / np.linalg.norm(u)
        in_ball = json.loads(result.read_text())["l2_relative_error"]
        sampler, seed = result.parts[-3], result.parent.name.removeprefix("seed")
        print(f"{sampler},{seed},{in_ball:.4g},{box:.4g}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
