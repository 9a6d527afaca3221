"""Your own system of two PDEs on a plate with a hole, each part of the boundary with its own
conditions, trained with a sampler that scores points by the worst equation.

    -Laplace(u) + v = f1,   -Laplace(v) + u = f2   on [-1, 1]^2 minus a disk of radius 0.4,

manufactured from u = sin(pi x / 2) cos(pi y / 2), v = exp(x / 2) cos(y), so the run reports
true errors. On the plate's edge ("outer") both outputs are given (Dirichlet); on the hole's
circle ("hole") u is given and v's flux through it (Neumann, along the domain's outward normal,
which points into the hole).

    python examples/system_with_hole.py
"""

from __future__ import annotations

import math

import numpy as np
import torch

from glfpinn import Disk, Problem, Rectangle, RobustGLF, ops
from glfpinn.training import make_trainer

A = math.pi / 2


def exact(x):  # (n, 2) -> u, v: torch in, torch out; numpy in, numpy out
    lib = torch if isinstance(x, torch.Tensor) else np
    u = lib.sin(A * x[:, 0]) * lib.cos(A * x[:, 1])
    v = lib.exp(x[:, 0] / 2) * lib.cos(x[:, 1])
    return u, v


class PlateWithHole(Problem):
    name = "plate-with-hole"
    outputs = ("u", "v")
    equations = ("u", "v")  # one residual column each: -Lap u + v - f1, -Lap v + u - f2
    defaults = {"n_points": 1000, "resample_every": 250, "hidden": (32, 32, 32)}

    def __init__(self) -> None:
        self.dim = 2
        # named pieces: sample_boundary_tagged tells each boundary point which one it lies on
        self.domain = Rectangle((-1, -1), (1, 1), name="outer") - Disk((0.2, 0), 0.4, name="hole")

    def residual(self, model, x):
        # the outputs_* operators differentiate every output of the network at once
        out, lap = ops.outputs_laplacian(model, x)  # (n, 2) each: one column per output
        u, v = self.output(out, "u"), self.output(out, "v")
        lap_u, lap_v = self.output(lap, "u"), self.output(lap, "v")
        u0, v0 = exact(x)
        f1 = 2 * A**2 * u0 + v0  # -Lap u0 = 2 A^2 u0 and -Lap v0 = 3/4 v0
        f2 = 0.75 * v0 + u0
        return torch.stack([-lap_u + v - f1, -lap_v + u - f2], dim=1)

    def condition_points(self, n, generator, dtype):
        # one draw, uniform in arc length over the whole boundary, split by the pieces' tags
        x, tags = self.domain.sample_boundary_tagged(n, generator, dtype=dtype)
        return {name: x[tags == i] for i, name in enumerate(self.domain.boundary_pieces)}

    def condition_misfits(self, model, points):
        outer, hole = points["outer"], points["hole"]
        u0, v0 = exact(outer)
        out = model(outer)
        misfits = {
            "outer u": ((self.output(out, "u") - u0) ** 2).mean(),
            "outer v": ((self.output(out, "v") - v0) ** 2).mean(),
            "hole u": ((self.output(model(hole), "u") - exact(hole)[0]) ** 2).mean(),
        }
        # Neumann for v: grad v . n, n the domain's outward normal (into the hole, here)
        n = self.domain.outward_normal(hole)
        _, grad = ops.outputs_value_and_gradient(model, hole)  # (n, 2, 2): grad[:, :, output]
        grad_v = grad[:, :, self.output_index("v")]
        v0 = exact(hole)[1]  # grad v0 = (v0 / 2, -exp(x / 2) sin(y))
        dv0 = torch.stack([v0 / 2, -torch.exp(hole[:, 0] / 2) * torch.sin(hole[:, 1])], dim=1)
        misfits["hole dv/dn"] = (((grad_v - dv0) * n).sum(dim=1) ** 2).mean()
        return misfits

    def condition_loss(self, model, points):
        return 10.0 * sum(self.condition_misfits(model, points).values())

    def solution(self, x):  # (n, 2): one column per output
        return np.stack(exact(np.asarray(x, dtype=np.float64)), axis=1)

    def test_points(self):  # a grid, the points inside the plate with its hole
        g = np.linspace(-1, 1, 81)
        x = np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)
        return x[self.domain.contains(torch.from_numpy(x)).numpy()]


def main(tiny: bool = False) -> dict:
    problem = PlateWithHole()
    trainer = make_trainer(
        problem,
        RobustGLF(),
        steps=60 if tiny else 2000,
        lbfgs_steps=10 if tiny else 200,
        lr=1e-2,
        n_points=300 if tiny else None,
        hidden=(16, 16) if tiny else None,
        eval_every=30 if tiny else 500,
        score="max",  # a point scores its worst equation: |r_u| or |r_v|, whichever is larger
        seed=0,
    )
    result = trainer.fit()
    # both outputs on the test grid, and their errors by hand: each output's, then pooled
    x = problem.test_points()
    with torch.no_grad():
        pred = trainer.model(torch.as_tensor(x, dtype=torch.float32)).double().numpy()
    ref = problem.solution(x)
    errors = {
        name: float(np.linalg.norm(pred[:, k] - ref[:, k]) / np.linalg.norm(ref[:, k]))
        for k, name in enumerate(problem.outputs)
    }
    pooled = float(np.linalg.norm(pred - ref) / np.linalg.norm(ref))  # PINNacle's definition
    print(
        f"L2 error u {errors['u']:.2e}, v {errors['v']:.2e}, pooled {pooled:.2e} "
        f"(from {result.initial_l2_relative_error:.2e} at step 0)"
    )
    print(
        "boundary misfits: " + ", ".join(f"{k} {v:.1e}" for k, v in result.condition_misfit.items())
    )
    return dict(problem=problem, result=result, x=x, pred=pred, errors=errors, pooled=pooled)


if __name__ == "__main__":
    main()
