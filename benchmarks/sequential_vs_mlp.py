"""Training step time of other networks against the ``glfpinn.nn.MLP``: a plain
``nn.Sequential`` copy of it, a :class:`~glfpinn.nn.ResidualMLP` and a
:class:`~glfpinn.nn.ModifiedMLP` of the same width and as many width x width matrices, and the
residual MLP again on the generic derivative engine (what it took before the fast engines
followed networks through their ``torch.fx`` trace).

The derivative operators reduce the MLP and the Sequential to the same affine maps and
activations, and follow the residual and modified MLPs through their traced program
(``glfpinn.ops.supports_taylor`` is true for all four), so each should train about as fast as
the built-in network. For each problem: its default network (``problem.build_model``, tanh,
default widths, wrapped in ``Constrained`` with the problem's output transform when it is
hard-constrained) and the others, each timed on the training step (forward, backward and Adam
step of loss = mean(r^2) + condition_loss, as the trainer computes it) at N = the problem's
default number of points (or ``--n-points``), float32, eager. The networks are timed in
alternating blocks of steps, so drift in the machine's speed hits all alike; the table gives
the median block and each network's time over the MLP's.

    python benchmarks/sequential_vs_mlp.py
    python benchmarks/sequential_vs_mlp.py --blocks 15 --threads 1
    python benchmarks/sequential_vs_mlp.py --cases allen-cahn,laplace --n-points 1000 --blocks 5
    python benchmarks/sequential_vs_mlp.py --clock process --threads 1   # on a shared machine

``--clock process`` times the CPU time of this process instead of the wall clock: with one
thread it is the step's own work, which other processes on a shared machine slow down far less
than they stretch the wall clock.
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
from glfpinn.nn import MLP, Constrained, ModifiedMLP, ResidualMLP

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


def others(problem: problems.Problem, mlp: MLP) -> dict[str, nn.Module]:
    """The residual and modified MLPs with the MLP's width and as many width x width matrices
    (a residual block holds two, a gate one), and the residual MLP with a forward hook, which
    keeps it off the fast engines (the generic path)."""
    width, inner = mlp.layers[1].in_features, len(mlp.layers) - 2
    gen = torch.Generator().manual_seed(0)
    residual = ResidualMLP(problem.dim, 1, width, max(1, inner // 2), generator=gen)
    modified = ModifiedMLP(problem.dim, 1, width, max(1, inner), generator=gen)
    generic = ResidualMLP(problem.dim, 1, width, max(1, inner // 2), generator=gen)
    generic.register_forward_hook(lambda module, args, out: None)
    nets = {"residual": residual, "modified": modified, "residual generic": generic}
    nets = {kind: problem.wrap_model(net) for kind, net in nets.items()}
    assert ops.supports_taylor(nets["residual"]) and ops.supports_taylor(nets["modified"])
    assert not ops.supports_taylor(nets["residual generic"])
    return nets


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
    parser.add_argument("--cases", help="comma-separated labels of CASES (default: all)")
    parser.add_argument("--n-points", type=int, help="collocation points (default: the problem's)")
    parser.add_argument("--clock", choices=("wall", "process"), default="wall")
    args = parser.parse_args()
    cases = CASES
    if args.cases:
        wanted = args.cases.split(",")
        cases = tuple(case for case in CASES if case[0] in wanted)
        if len(cases) != len(wanted):
            parser.error(f"--cases: known labels are {', '.join(c[0] for c in CASES)}")
    torch.set_num_threads(args.threads)
    clock = time.perf_counter if args.clock == "wall" else time.process_time
    retain_freed_memory()  # as the trainer does on the CPU
    warnings.filterwarnings("ignore", category=DeprecationWarning)

    rows = []
    for label, name, params in cases:
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
        n = args.n_points or int(problem.run_default("n_points"))
        x = problem.domain.sample(n, gen)
        conditions = problem.condition_points(N_CONDITION, gen, torch.float32)
        steps, losses = {}, {}
        for kind, net in (("mlp", model), ("sequential", seq), *others(problem, mlp).items()):
            steps[kind], losses[kind] = make_step(problem, net, x, conditions)
        same = torch.allclose(losses["mlp"](), losses["sequential"](), rtol=1e-6, atol=0)
        assert same, f"{label}: the two networks compute different losses"
        for step in steps.values():  # warm-up
            for _ in range(args.block_steps):
                step()
        blocks: dict[str, list[float]] = {kind: [] for kind in steps}
        for _ in range(args.blocks):
            for kind, step in steps.items():
                t0 = clock()
                for _ in range(args.block_steps):
                    step()
                blocks[kind].append((clock() - t0) / args.block_steps)
        ms = {kind: 1e3 * statistics.median(b) for kind, b in blocks.items()}
        rows.append((label, n, ms))
        print(f"{label}: " + ", ".join(f"{k} {v:.2f} ms" for k, v in ms.items()), flush=True)

    print(
        f"\n{args.threads} threads, torch {torch.__version__}, float32, eager, {args.clock} "
        f"clock; median of {args.blocks} blocks of {args.block_steps} steps\n"
    )
    kinds = [k for k in rows[0][2] if k != "mlp"]
    print("| problem | N | MLP ms/step | " + " | ".join(f"{k} / MLP" for k in kinds) + " |")
    print("|---|---|---|" + "---|" * len(kinds))
    for label, n, ms in rows:
        ratios = " | ".join(f"{ms[k] / ms['mlp']:.2f}x ({ms[k]:.2f} ms)" for k in kinds)
        print(f"| {label} | {n} | {ms['mlp']:.2f} | {ratios} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
