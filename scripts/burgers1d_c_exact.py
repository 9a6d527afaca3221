"""Burgers1d-C runs scored against the exact solution as well as against PINNacle's file.

PINNacle's COMSOL export for Burgers1d-C (a 0.02 mesh) differs from the exact Cole-Hopf solution
by 1.33e-2 relative L2 on its own 1,111 points (docs/problems.md): a floor under any error
measured against the file. This prints, for each burgers1d-c run of the bench folders given, the
run's error against the file (what the bench reports), against the exact solution at the file's
points, and against the exact solution on `burgers`' own 256 x 100 test grid
(docs/results.md, "PINNacle's cases at the accuracy frontier").

    python scripts/burgers1d_c_exact.py runs/pinnacle-frontier
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from glfpinn import problems
from glfpinn.runs import load_run


def relative_l2(run, x: np.ndarray, exact: np.ndarray) -> float:
    """The run's relative L2 error at ``x`` against ``exact``."""
    predicted = np.asarray(run.predict(x), dtype=np.float64).reshape(-1)
    return float(np.linalg.norm(predicted - exact) / np.linalg.norm(exact))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, nargs="+", help="bench output folders")
    args = parser.parse_args()
    burgers = problems.get("burgers")  # the same PDE, with the exact Cole-Hopf solution
    file_points, _ = problems.get("burgers1d-c").test_set()
    grid, grid_exact = burgers.test_set()
    file_exact = burgers.solution(file_points)
    print("sampler,seed,l2_file,l2_exact_at_file_points,l2_exact_on_grid")
    for folder in args.bench:
        for result in sorted(folder.glob("*/burgers1d-c/*/seed*/result.json")):
            run = load_run(result.parent)
            errors = (
                run.result["l2_relative_error"],
                relative_l2(run, file_points, file_exact),
                relative_l2(run, grid, grid_exact),
            )
            sampler, seed = result.parts[-3], result.parent.name.removeprefix("seed")
            print(f"{sampler},{seed}," + ",".join(f"{e:.4g}" for e in errors), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
