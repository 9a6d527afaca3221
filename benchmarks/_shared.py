"""What several benchmark scripts need: a timing loop and the nested-autograd allen-cahn residual
(the reference every speed comparison is made against)."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch


def seconds_per_call(fn: Callable[[], object], reps: int, warmup: int, sync) -> float:
    """Mean wall time of ``fn`` over ``reps`` calls after ``warmup`` calls, device synchronised."""
    for _ in range(warmup):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t0) / reps


def allen_cahn_nested_autograd(model, x):
    """u_t - 0.001 u_xx + 5 (u^3 - u) with one torch.autograd.grad per derivative (the DeepXDE
    way, and what a careful user writes by hand)."""
    x = x.detach().requires_grad_(True)
    u = model(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
    return g[:, 1] - 0.001 * h[:, 0] + 5.0 * (u**3 - u)


def deepxde_model(problem: str, n_points: int, *, seed: int | None = None):
    """DeepXDE's own set-up of ``allen-cahn`` or ``burgers`` (Wu et al.'s RAD code: hard
    constraint, 3 x 64 tanh, Glorot normal, Adam 1e-3, N pseudo-random PDE points, PyTorch
    backend), or of ``diffusion-reaction`` (DeepXDE's example of that name, hard-constrained);
    the coefficients are glfpinn's problems'. ``seed`` seeds DeepXDE's own RNGs."""
    import math
    import os

    os.environ["DDE_BACKEND"] = "pytorch"
    import deepxde as dde

    if seed is not None:
        dde.config.set_random_seed(seed)
    space = dde.geometry.Interval(-math.pi, math.pi) if problem == "diffusion-reaction" else None
    space = space or dde.geometry.Interval(-1, 1)
    geom = dde.geometry.GeometryXTime(space, dde.geometry.TimeDomain(0, 1))
    if problem == "allen-cahn":

        def pde(x, y):
            u_t = dde.grad.jacobian(y, x, i=0, j=1)
            u_xx = dde.grad.hessian(y, x, i=0, j=0)
            return u_t - 0.001 * u_xx + 5 * (y**3 - y)

        def constrain(x, y):
            return (
                x[:, 0:1] ** 2 * torch.cos(math.pi * x[:, 0:1])
                + x[:, 1:2] * (1 - x[:, 0:1] ** 2) * y
            )

    elif problem == "burgers":

        def pde(x, y):
            u_x = dde.grad.jacobian(y, x, i=0, j=0)
            u_t = dde.grad.jacobian(y, x, i=0, j=1)
            u_xx = dde.grad.hessian(y, x, i=0, j=0)
            return u_t + y * u_x - 0.01 / math.pi * u_xx

        def constrain(x, y):
            return -torch.sin(math.pi * x[:, 0:1]) + x[:, 1:2] * (1 - x[:, 0:1] ** 2) * y

    elif problem == "diffusion-reaction":
        modes = (1, 2, 3, 4, 8)

        def pde(x, y):
            u_t = dde.grad.jacobian(y, x, i=0, j=1)
            u_xx = dde.grad.hessian(y, x, i=0, j=0)
            xs, t = x[:, 0:1], x[:, 1:2]
            f = torch.exp(-t) * sum((n - 1 / n) * torch.sin(n * xs) for n in modes)
            return u_t - u_xx - f

        def constrain(x, y):
            xs, t = x[:, 0:1], x[:, 1:2]
            return t * (math.pi**2 - xs**2) * y + sum(torch.sin(n * xs) / n for n in modes)

    else:
        raise ValueError(
            f"problem={problem!r} is unknown; allowed: allen-cahn, burgers, diffusion-reaction"
        )
    data = dde.data.TimePDE(
        geom,
        pde,
        [],
        num_domain=n_points,
        num_boundary=0,
        num_initial=0,
        train_distribution="pseudo",
    )
    net = dde.nn.FNN([2] + [64] * 3 + [1], "tanh", "Glorot normal")
    net.apply_output_transform(constrain)
    model = dde.Model(data, net)
    model.compile("adam", lr=1e-3)
    return model
