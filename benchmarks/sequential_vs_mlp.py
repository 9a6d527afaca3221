"""Training step time of a plain ``nn.Sequential`` against the ``glfpinn.nn.MLP`` it copies.

The derivative operators recognise both (``glfpinn.ops.supports_taylor``) and reduce them to
the same affine maps and activations, so a user's own ``nn.Sequential`` should train as fast as
the built-in network. For each problem: its default network (``problem.build_model``, tanh,
default widths, wrapped in ``Constrained`` with the problem's output transform when it is
hard-constrained) and a Sequential with the same weights, each timed on the training step
(forward, backward and Adam step of loss = mean(r^2) + condition_loss, as the trainer computes
it) at N = the problem's default number of points, float32, eager. The two are timed in
alternating blocks of steps, so drift in the machine's speed hits both alike; the table gives
the median block.

    python benchmarks/sequential_vs_mlp.py
    python benchmarks/sequential_vs_mlp.py --blocks 15 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings
from collections.abc import Callable

import torch
from torch import Tensor, nn

from glfpinn import ops, problems
from glfpinn._allocator import retain_freed_memory
from glfpinn.nn import MLP, Constrained

#: (label, registry name, parameters): the small variants of the high-dimensional problems.
CASES = (
    ("allen-cahn", "allen-cahn", {}),
    ("burgers", "burgers", {}),
    ("laplace", "laplace", {}),
    ("dispersive d=5", "dispersive-10d", {"space_dim": 5}),
    ("reaction-diffusion d=5", "reaction-diffusion-20d", {"space_dim": 5}),
    ("reaction-diffusion d=20", "reaction-diffusion-20d", {"space_dim": 20}),
)
N_CONDITION = 1000  # the trainer's default number of condition points


def as_sequential(mlp: MLP) -> nn.Sequential:
    """``Linear, Tanh, ..., Linear`` with the MLP's weights."""
    modules: list[nn.Module] = []
    for i, layer in enumerate(mlp.layers):
        if i:
            modules.append(nn.Tanh())
        linear = nn.Linear(layer.in_features, layer.out_features)
        linear.load_state_dict(layer.state_dict())
        modules.append(linear)
    return nn.Sequential(*modules)


def make_step(
    problem: problems.Problem, model: nn.Module, x: Tensor, conditions: dict[str, Tensor]
) -> tuple[Callable[[], None], Callable[[], Tensor]]:
    """The training step and the loss it minimises."""
    adam = torch.optim.Adam(model.parameters(), lr=1e-3)

    def loss() -> Tensor:
        value = problem.residual(model, x).square().mean()
        cond = problem.condition_loss(model, conditions)
        return value if cond is None else value + cond

    def step() -> None:
        adam.zero_grad(set_to_none=True)
        loss().backward()
        adam.step()

    return step, loss


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=15, help="timed blocks per network")
    parser.add_argument("--block-steps", type=int, default=10)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    retain_freed_memory()  # as the trainer does on the CPU
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    rows = []
    for label, name, params in CASES:
        problem = problems.get(name, **params)
        model = problem.build_model(
            tuple(problem.run_default("hidden")), generator=torch.Generator().manual_seed(0)
        )
        mlp = model.net if isinstance(model, Constrained) else model
        seq: nn.Module = as_sequential(mlp)
        if problem.hard_constrained:
            seq = Constrained(seq, problem.output_transform)
        assert ops.supports_taylor(model) and ops.supports_taylor(seq)
        gen = torch.Generator().manual_seed(1)
        n = int(problem.run_default("n_points"))
        x = problem.domain.sample(n, gen)
        conditions = problem.condition_points(N_CONDITION, gen, torch.float32)
        steps, losses = {}, {}
        for kind, net in (("mlp", model), ("sequential", seq)):
            steps[kind], losses[kind] = make_step(problem, net, x, conditions)
        same = torch.allclose(losses["mlp"](), losses["sequential"](), rtol=1e-6, atol=0)
        assert same, f"{label}: the two networks compute different losses"
        for step in steps.values():  # warm-up
            for _ in range(args.block_steps):
                step()
        blocks: dict[str, list[float]] = {kind: [] for kind in steps}
        for _ in range(args.blocks):
            for kind, step in steps.items():
                t0 = time.perf_counter()
                for _ in range(args.block_steps):
                    step()
                blocks[kind].append((time.perf_counter() - t0) / args.block_steps)
        ms = {kind: 1e3 * statistics.median(b) for kind, b in blocks.items()}
        rows.append((label, n, ms))
        print(f"{label}: mlp {ms['mlp']:.2f} ms, sequential {ms['sequential']:.2f} ms", flush=True)

    print(
        f"\n{args.threads} threads, torch {torch.__version__}, float32, eager; median of "
        f"{args.blocks} blocks of {args.block_steps} steps\n"
    )
    print("| problem | N | MLP ms/step | Sequential ms/step | Sequential / MLP |")
    print("|---|---|---|---|---|")
    for label, n, ms in rows:
        print(
            f"| {label} | {n} | {ms['mlp']:.2f} | {ms['sequential']:.2f} "
            f"| {ms['sequential'] / ms['mlp']:.2f}x |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
