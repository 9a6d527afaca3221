"""An inverse problem: recover Burgers' viscosity from 400 noisy measurements.

u_t + u u_x = nu u_xx on x in [-1, 1], t in [0, 1], u(x, 0) = -sin(pi x), u(+-1, t) = 0. The
true nu = 0.01/pi (the benchmark's) is unknown to the network; the guess is 0.05, 16x too large.
The problem declares ``unknowns = {"viscosity": Unknown(0.05, "positive")}``: the optimizer
trains log(nu), an unconstrained number that moves in relative steps, and the residual reads
nu = exp(log nu), which stays positive. The plan gives the unknown a learning rate of its own
(``unknowns_lr``): at the network's 1e-3, Adam would need thousands of steps to cross the
factor of 16. Then 12 rounds of [resample, 150 self-scaled Broyden iterations in float64]
(the accuracy frontier's recipe, docs/training.md) resolve the front sharply enough for the
residual to ask for the true viscosity. The measurements are the exact Cole-Hopf solution at 400
random points with Gaussian noise of standard deviation 0.01 (1% of max |u|).

    python examples/inverse_burgers.py           # 2,800 steps; a few minutes on a laptop CPU

Measured (docs/problems.md, "Transforms and a learning rate of their own"): nu went 0.05 ->
0.109 while the network was still smooth (Adam), then to 0.00316 at the last step, 0.75% from
the truth 0.00318, with u's L2 error 0.21%.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from glfpinn import Box, OptimizationPlan, Problem, RobustGLF, Stage, Unknown, ops
from glfpinn.problems import Burgers
from glfpinn.training import make_trainer
from glfpinn.training.plan import Rounds

TRUE_NU = 0.01 / math.pi


class BurgersInverse(Problem):
    name = "burgers-inverse"
    hard_constrained = True  # the initial and boundary conditions are built into the network
    defaults = {"n_points": 2000, "resample_every": 1000, "hidden": (32, 32, 32)}

    def __init__(
        self,
        initial_guess: float = 0.05,
        n_observations: int = 400,
        noise: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.initial_guess = initial_guess
        self.n_observations = n_observations
        self.noise = noise
        self.seed = seed
        self.dim = 2  # (x, t): time is the last coordinate
        self.domain = Box([-1.0, 0.0], [1.0, 1.0])
        self.unknowns = {"viscosity": Unknown(initial_guess, "positive")}
        self.truth = Burgers(TRUE_NU)  # the measurements' source and the reference

    def output_transform(self, x, y):
        xs, t = x[:, :1], x[:, 1:2]
        return -torch.sin(math.pi * xs) + t * (1 - xs**2) * y

    def residual(self, model, x):
        u, grad, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0])
        return grad[:, 1] + u * grad[:, 0] - self.unknown("viscosity") * d[0, :, 0]

    def observations(self):
        rng = np.random.default_rng(self.seed)  # the measurements are fixed by the seed
        x = np.column_stack(
            [rng.uniform(-1, 1, self.n_observations), rng.uniform(0, 1, self.n_observations)]
        )
        u = self.truth.solution(x) + self.noise * rng.standard_normal(len(x))
        return x, u

    def solution(self, x):  # known here only to report the error; training never sees it
        return self.truth.solution(x)

    def test_points(self):
        return self.truth.test_points()

    def test_set(self):  # the reference on Raissi's grid, cached on disk by Burgers
        return self.truth.test_set()


def main(tiny: bool = False) -> dict:
    problem = BurgersInverse()
    adam, rounds, round_steps = (150, 2, 10) if tiny else (1000, 12, 150)
    plan = OptimizationPlan(
        [Stage("adam", adam, lr=1e-3, unknowns_lr=1e-2)],
        rounds=Rounds([Stage("ssbroyden", round_steps, dtype="float64")], repeat=rounds),
    )
    trainer = make_trainer(
        problem,
        RobustGLF(),
        plan=plan,
        n_points=300 if tiny else None,
        hidden=(16, 16) if tiny else None,
        eval_every=50 if tiny else 250,
        seed=0,
    )
    result = trainer.fit()
    nu = result.unknowns["viscosity"]
    print(
        f"viscosity: {problem.initial_guess} -> {nu:.5f} (true {TRUE_NU:.5f}, "
        f"{abs(nu / TRUE_NU - 1):.2%} off); L2 error of u {result.l2_relative_error:.2e}"
    )
    return {"problem": problem, "result": result, "initial_guess": problem.initial_guess}


if __name__ == "__main__":
    main()
