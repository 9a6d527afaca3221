"""An inverse problem: recover the diffusivity of a heat equation from noisy measurements.

u_t = k u_xx on x in [0, 1], t in [0, 1], u(x, 0) = sin(pi x), u(0, t) = u(1, t) = 0, whose
solution is u = exp(-k pi^2 t) sin(pi x). The true k = 0.1 is unknown to the network: the problem
declares ``unknowns = {"diffusivity": initial guess}``, reads the trainable value with
``self.unknown("diffusivity")`` in its residual, and gives ``observations()``: u measured at 100
random points with Gaussian noise of standard deviation 0.01. The diffusivity trains with the
network through the same optimizer stages; its value is in every evaluation and in the result.

    python examples/inverse_heat.py              # about 30 s on a laptop CPU
"""

from __future__ import annotations

import math

import numpy as np
import torch

from glfpinn import GLF, Box, Problem, Stage, ops
from glfpinn.training import make_trainer


class HeatInverse(Problem):
    name = "heat-inverse"
    hard_constrained = True  # u(x, 0) and u(0, t) = u(1, t) = 0 built into the network
    defaults = {"n_points": 500, "resample_every": 100, "hidden": (32, 32)}

    def __init__(
        self,
        true_diffusivity: float = 0.1,
        initial_guess: float = 0.5,
        n_observations: int = 100,
        noise: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.true_diffusivity = true_diffusivity
        self.initial_guess = initial_guess
        self.n_observations = n_observations
        self.noise = noise
        self.seed = seed
        self.dim = 2  # (x, t): time is the last coordinate
        self.domain = Box([0.0, 0.0], [1.0, 1.0])
        self.unknowns = {"diffusivity": initial_guess}

    def output_transform(self, x, y):
        xs, t = x[:, :1], x[:, 1:2]
        return torch.sin(math.pi * xs) + t * xs * (1 - xs) * y

    def residual(self, model, x):
        _, grad, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0])
        return grad[:, 1] - self.unknown("diffusivity") * d[0, :, 0]

    def exact(self, x: np.ndarray, k: float) -> np.ndarray:
        return np.exp(-k * math.pi**2 * x[:, 1]) * np.sin(math.pi * x[:, 0])

    def observations(self):
        rng = np.random.default_rng(self.seed)  # the measurements are fixed by the seed
        x = rng.random((self.n_observations, 2))
        u = self.exact(x, self.true_diffusivity) + self.noise * rng.standard_normal(len(x))
        return x, u

    def solution(self, x):  # known here only to report the error; training never sees it
        return self.exact(np.asarray(x, dtype=np.float64), self.true_diffusivity)

    def test_points(self):
        g = np.linspace(0, 1, 51)
        return np.stack(np.meshgrid(g, g), axis=-1).reshape(-1, 2)


def main(tiny: bool = False) -> dict:
    problem = HeatInverse()
    trainer = make_trainer(
        problem,
        GLF(alpha=1e-3),
        plan=[Stage("adam", 300 if tiny else 2000, lr=1e-2), Stage("lbfgs", 100 if tiny else 500)],
        n_points=300 if tiny else None,
        hidden=(16, 16) if tiny else None,
        eval_every=100,
        seed=0,
    )
    result = trainer.fit()
    k = result.unknowns["diffusivity"]
    print(
        f"diffusivity: {problem.initial_guess} -> {k:.4f} (true {problem.true_diffusivity}, "
        f"{abs(k / problem.true_diffusivity - 1):.2%} off); L2 error of u "
        f"{result.l2_relative_error:.2e}"
    )
    return {"problem": problem, "result": result}


if __name__ == "__main__":
    main()
