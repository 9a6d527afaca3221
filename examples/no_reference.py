"""A PDE whose solution nobody wrote down: trained all the same, judged by its residuals.

-Laplace(u) = f on the unit square, u = 0 on the boundary (soft), with a source f made of two
Gaussian bumps. The problem defines no ``solution`` and no ``test_points``, so the run reports
``l2_relative_error: None`` and the mean and max |residual| on held-out interior points.

    python examples/no_reference.py              # under a minute on a laptop CPU
"""

from __future__ import annotations

import torch

from glfpinn import GLF, Box, Problem, ops
from glfpinn.training import make_trainer


class TwoBumpPoisson(Problem):
    name = "two-bump-poisson"
    defaults = {"n_points": 1000, "resample_every": 250, "hidden": (32, 32)}

    def __init__(self) -> None:
        self.dim = 2
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def source(self, x: torch.Tensor) -> torch.Tensor:
        a = torch.exp(-((x - torch.tensor([0.3, 0.3])) ** 2).sum(1) / 0.02)
        b = torch.exp(-((x - torch.tensor([0.7, 0.6])) ** 2).sum(1) / 0.01)
        return 20.0 * (a + b)

    def residual(self, model, x):
        _, lap = ops.laplacian(model, x)  # the fast Taylor engine for MLPs and Sequentials
        return -lap - self.source(x)

    def condition_points(self, n, generator, dtype):
        return {"boundary": self.domain.sample_boundary(n, generator, dtype=dtype)}

    def condition_loss(self, model, points):
        return (model(points["boundary"]) ** 2).mean()


def main(tiny: bool = False) -> dict:
    trainer = make_trainer(
        TwoBumpPoisson(),
        GLF(alpha=1e-3),
        steps=150 if tiny else 3000,
        lbfgs_steps=20 if tiny else 500,
        lr=1e-2,
        eval_every=20 if tiny else 250,
        n_points=300 if tiny else None,
        seed=0,
    )
    result = trainer.fit()
    first = trainer.state.initial_metrics["residual_mean"]
    print(
        f"L2: {result.l2_relative_error} (no reference); mean |residual| {first:.3e} -> "
        f"{result.residual_mean:.3e}, max {result.residual_max:.3e}"
    )
    return {"initial_residual": first, "result": result}


if __name__ == "__main__":
    main()
