"""Your own problem in a bench grid, from the command line: examples/own_bench.yaml names
examples/own_pde.py:Poisson2D by import path, and the bench's worker processes (or a Ray
cluster's tasks) load it from there.

    python examples/own_bench.py                 # the same as the two commands below
    glfpinn bench examples/own_bench.yaml --out runs/own-bench
    glfpinn report runs/own-bench
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import yaml

from glfpinn.cli import main as glfpinn

HERE = Path(__file__).parent


def main(tiny: bool = False, out: str = "runs/own-bench") -> dict:
    bench = yaml.safe_load((HERE / "own_bench.yaml").read_text())
    # the grid names the problem file relative to the repository's root; pin it to this folder
    for problem in bench["experiments"]["poisson"]["problems"].values():
        problem["problem"] = f"{HERE / 'own_pde.py'}:Poisson2D"
    if tiny:
        bench["base"].update(steps=20, lbfgs_steps=0, n_points=100, eval_every=10)
        bench["experiments"]["poisson"]["seeds"] = [0]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "own_bench.yaml"
        config.write_text(yaml.safe_dump(bench))
        code = glfpinn(["bench", str(config), "--out", out, "--workers", "1"])
    if code == 0:
        code = glfpinn(["report", out, "--no-plots"] if tiny else ["report", out])
    return {"code": code, "out": Path(out)}


if __name__ == "__main__":
    raise SystemExit(main()["code"])
