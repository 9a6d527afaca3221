"""Shared test fixtures: every built-in sampler and problem, and a context factory."""

from __future__ import annotations

import torch

from glfpinn import Callback, problems, samplers
from glfpinn.domains import Box
from glfpinn.testing import bump, make_context

__all__ = [
    "ALL_PROBLEMS",
    "ALL_SAMPLERS",
    "MY_PDE",
    "Evaluations",
    "Poisson1D",
    "Poisson1DNoReference",
    "bump",
    "make_context",
]

#: Every registered sampler that builds without arguments ("mix" needs its parts).
ALL_SAMPLERS: list[str] = [name for name in samplers.names() if name != "mix"]
ALL_PROBLEMS: list[str] = problems.names()


class Poisson1DNoReference(problems.Problem):
    """-u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0, hard-constrained, as a user would write
    a problem with no known solution: no ``solution``, no ``test_points``."""

    name = "poisson-1d-no-reference"
    hard_constrained = True
    defaults = {"n_points": 64, "resample_every": 20, "hidden": (16, 16)}

    def __init__(self) -> None:
        self.dim = 1
        self.domain = Box([0.0], [1.0])

    def output_transform(self, x, y):
        return x * (1 - x) * y

    def residual(self, model, x):
        from glfpinn import ops

        u_xx = ops.axis_derivatives(model, x, order=2)[:, 0]
        return u_xx + torch.pi**2 * torch.sin(torch.pi * x[:, 0])


class Poisson1D(Poisson1DNoReference):
    """The same problem with its solution u = sin(pi x). Small and fast: the trainer's mechanics
    are tested on it."""

    name = "poisson-1d"

    def solution(self, x):
        import numpy as np

        return np.sin(np.pi * np.asarray(x, dtype=np.float64)[:, 0])

    def test_points(self):
        import numpy as np

        return np.linspace(0, 1, 101)[:, None]


class FaultyPoisson1D(Poisson1D):
    """Poisson1D whose residual goes through ``fault(call, r)``, ``call`` counting residual calls
    from 1: the contract check, the initial validation, then one per training step (plus one per
    validation after an evaluated step)."""

    def __init__(self, fault):
        super().__init__()
        self.fault, self.calls = fault, 0

    def residual(self, model, x):
        self.calls += 1
        return self.fault(self.calls, super().residual(model, x))


#: A user's problem as it would sit in a file of its own (written to my_pde.py by the tests).
MY_PDE = '''
import numpy as np
import torch

from glfpinn import Box, Problem, ops


class MyPDE(Problem):
    """-u'' = pi^2 sin(pi x) on [0, 1], u(0) = u(1) = 0, soft boundary."""

    name = "my-pde"
    defaults = {"n_points": 64, "resample_every": 10, "hidden": (8, 8)}

    def __init__(self, source_scale=1.0):
        self.source_scale = source_scale
        self.dim = 1
        self.domain = Box([0.0], [1.0])

    def residual(self, model, x):
        u_xx = ops.axis_derivatives(model, x, order=2)[:, 0]
        return u_xx + self.source_scale * torch.pi**2 * torch.sin(torch.pi * x[:, 0])

    def condition_points(self, n, generator, dtype):
        return {"boundary": torch.tensor([[0.0], [1.0]], dtype=dtype)}

    def condition_loss(self, model, points):
        return (model(points["boundary"]) ** 2).mean()

    def solution(self, x):
        return self.source_scale * np.sin(np.pi * np.asarray(x, dtype=np.float64)[:, 0])

    def test_points(self):
        return np.linspace(0, 1, 51)[:, None]
'''


class Evaluations(Callback):
    """Records every evaluation's metrics, as a run directory would write them."""

    def __init__(self):
        self.records = []

    def on_validation_end(self, trainer, metrics):
        self.records.append(metrics)


class ToySystem(problems.Problem):
    """A system of two outputs and two equations on [0, 1]^2: u_x - v = 0, v_x + u = 0, solved
    by u = sin(x)(1 + y), v = cos(x)(1 + y); soft Dirichlet data on both outputs at x = 0
    (u = 0, v = 1 + y), each output's misfit its own condition."""

    name = "toy-system"
    outputs = ("u", "v")
    equations = ("u_x - v", "v_x + u")
    defaults = {"n_points": 64, "resample_every": 10, "hidden": (16, 16)}

    def __init__(self) -> None:
        self.dim = 2
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def residual(self, model, x):
        x = x if x.requires_grad else x.detach().requires_grad_(True)
        out = model(x)
        u, v = self.output(out, "u"), self.output(out, "v")
        (du,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        (dv,) = torch.autograd.grad(v.sum(), x, create_graph=True)
        k = self.frequency()
        return torch.stack([du[:, 0] - k * v, dv[:, 0] + k * u], dim=1)

    def frequency(self):
        """k in u_x - k v = 0, v_x + k u = 0 (1 here; an inverse variant trains it)."""
        return 1.0

    def condition_points(self, n, generator, dtype):
        y = torch.rand(n, generator=generator, dtype=dtype)
        return {"left": torch.stack([torch.zeros_like(y), y], dim=1)}

    def condition_misfits(self, model, points):
        xb = points["left"]
        out = model(xb)
        return {
            "u": (self.output(out, "u") ** 2).mean(),
            "v": ((self.output(out, "v") - (1 + xb[:, 1])) ** 2).mean(),
        }

    def condition_loss(self, model, points):
        misfits = self.condition_misfits(model, points)
        return misfits["u"] + misfits["v"]

    def solution(self, x):
        import numpy as np

        x = np.asarray(x, dtype=np.float64)
        return np.stack([np.sin(x[:, 0]) * (1 + x[:, 1]), np.cos(x[:, 0]) * (1 + x[:, 1])], 1)

    def test_points(self):
        import numpy as np

        g = np.linspace(0, 1, 11)
        return np.stack(np.meshgrid(g, g), -1).reshape(-1, 2)
