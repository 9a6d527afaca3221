"""Your own forward PDE, from a file of your own: define it, train it into a run directory,
reload it, predict at new points and plot it.

-Laplace(u) = 2 pi^2 sin(pi x) sin(pi y) on the unit square, u = 0 on its boundary (a soft
condition), whose solution is u = sin(pi x) sin(pi y). The same class trains from the command
line, resumes after a kill and runs in a bench grid (examples/own_bench.py):

    python examples/own_pde.py
    glfpinn train --problem examples/own_pde.py:Poisson2D --sampler glf-robust --out runs/p2
    glfpinn plot runs/p2 --trust      # its problem is code from a file: trust the folder
"""

from __future__ import annotations

import math

import numpy as np
import torch

import glfpinn
from glfpinn import Box, Problem, RobustGLF, ops


class Poisson2D(Problem):
    name = "poisson-2d"
    defaults = {"n_points": 1000, "resample_every": 250, "hidden": (32, 32)}

    def __init__(self, boundary_weight: float = 10.0) -> None:
        self.boundary_weight = boundary_weight  # stored under its own name: runs record it
        self.dim = 2
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def residual(self, model, x):
        # ops.laplacian propagates derivatives through the network in one pass (Taylor mode):
        # several times cheaper than nested autograd as the dimension grows
        _, lap = ops.laplacian(model, x)
        source = 2 * math.pi**2 * torch.sin(math.pi * x[:, 0]) * torch.sin(math.pi * x[:, 1])
        return -lap - source

    def condition_points(self, n, generator, dtype):
        return {"boundary": self.domain.sample_boundary(n, generator, dtype=dtype)}

    def condition_loss(self, model, points):
        return self.boundary_weight * (model(points["boundary"]) ** 2).mean()

    def solution(self, x):  # optional: with it, runs report the L2 error
        x = np.asarray(x, dtype=np.float64)
        return np.sin(math.pi * x[:, 0]) * np.sin(math.pi * x[:, 1])

    def test_points(self):
        g = np.linspace(0, 1, 101)
        return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


def main(tiny: bool = False, out: str = "runs/own-pde") -> dict:
    result = glfpinn.train(
        Poisson2D(),
        RobustGLF(),
        steps=100 if tiny else 3000,
        lbfgs_steps=20 if tiny else 500,
        lr=1e-2,
        n_points=300 if tiny else None,
        eval_every=50 if tiny else 250,
        out=out,
        mode="overwrite",
    )
    # problem, network, config and result, from the directory; its problem is this file's
    # class, code, which loading imports only from a directory you trust (your own, here)
    run = glfpinn.load_run(out, trust=True)
    x = np.array([[0.5, 0.5], [0.25, 0.75]])
    u = run.predict(x)
    plots = glfpinn.plot_run(out, trust=True)  # solution, error, residual, points, curves
    print(f"L2 error {result.l2_relative_error:.2e}; u{x.tolist()} = {u.round(4).tolist()} ")
    print(f"(exact {run.problem.solution(x).round(4).tolist()}); plots: {[p.name for p in plots]}")
    return {"result": result, "run": run, "u": u, "x": x, "plots": plots}


if __name__ == "__main__":
    main()
