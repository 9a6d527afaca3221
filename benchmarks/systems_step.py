"""One training step of a system of PDEs: every output at once against one output at a time.

NS2d-C (steady Navier-Stokes, outputs (u, v, p), ``glfpinn.problems.pinnacle.LidDrivenCavity``)
on PINNacle's network (a 5 x 100 tanh MLP) and a batch of points: the residual's mean square,
forward and backward. Two ways of writing the residual:

``columns``  each output's column as its own field (``lambda y: model(y)[:, i]``) through the
             scalar operators (``value_grad_laplacian`` for u and v, ``value_and_gradient`` for
             p): a callable the Taylor engine cannot see into, so the generic engine, once per
             output (how the residual was written before the ``outputs_*`` operators);
``outputs``  ``ops.outputs_value_grad_laplacian(model, x)``, one Taylor propagation for all three
             outputs (the residual as it is now).

Each step is timed by the process's CPU time (user + system; with one thread on a shared machine
it leaves out the time given to other processes), after two warm-up steps; the median is
printed, and the ratio.

Usage: ``python benchmarks/systems_step.py [--points 2048] [--steps 10] [--threads 1]``.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from glfpinn import ops, problems


def _columns(problem, model, x):
    def column(i):
        return lambda y: model(y)[:, i]

    u, grad_u, lap_u = ops.value_grad_laplacian(column(0), x)
    v, grad_v, lap_v = ops.value_grad_laplacian(column(1), x)
    _, grad_p = ops.value_and_gradient(column(2), x)
    nu = problem.viscosity
    momentum_x = u * grad_u[:, 0] + v * grad_u[:, 1] + grad_p[:, 0] - nu * lap_u
    momentum_y = u * grad_v[:, 0] + v * grad_v[:, 1] + grad_p[:, 1] - nu * lap_v
    return torch.stack([momentum_x, momentum_y, grad_u[:, 0] + grad_v[:, 1]], dim=1)


def _step_seconds(residual, model, x) -> float:
    start = time.process_time()
    loss = residual(model, x).square().mean()
    loss.backward()
    return time.process_time() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--points", type=int, default=2048)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    problem = problems.get("ns2d-c")
    model = problem.build_model((100,) * 5, generator=torch.Generator().manual_seed(0))
    x = problem.domain.sample(args.points, torch.Generator().manual_seed(1))
    ways = {"columns": lambda m, y: _columns(problem, m, y), "outputs": problem.residual}
    medians = {}
    for name, residual in ways.items():
        times = [_step_seconds(residual, model, x) for _ in range(args.steps + 2)][2:]
        medians[name] = statistics.median(times)
        print(f"{name:8s} median {1e3 * medians[name]:7.1f} ms over {args.steps} steps")
    print(
        f"ns2d-c, 5x100 tanh, {args.points} points, {args.threads} thread(s): outputs is "
        f"{medians['columns'] / medians['outputs']:.2f}x faster than columns"
    )


if __name__ == "__main__":
    main()
