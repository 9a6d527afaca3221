"""How far a training step is from the machine's floor, and what stands between.

For the allen-cahn training step (N = 2000, 3 x 64 tanh, Adam, float32), with glfpinn's default
derivative engine and with nested reverse mode, this measures on this machine:

- the matmul rate on the step's own shapes (a (2000 x 64) @ (64 x 64) product),
- the streaming bandwidth of an elementwise op on a (2000 x 64) tensor (cache-resident, as the
  step's intermediates are), and the fixed cost of one eager op (a tiny add: dispatch overhead),
- the step's FLOPs (torch.profiler's count over matmuls) and its number of aten ops and bytes
  written by non-matmul ops,

then prints floor = FLOPs / matmul rate + bytes / bandwidth, the measured step time, their
ratio, and the share that per-op overhead (ops x fixed cost) explains.

    python benchmarks/floor.py [--device cuda] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch.profiler import ProfilerActivity, profile

from glfpinn import Never, Trainer, Uniform, problems


def _rate(fn, reps: int, sync) -> float:
    for _ in range(max(3, reps // 10)):
        fn()
    sync()
    t0 = time.perf_counter()
    for _ in range(reps):
        fn()
    sync()
    return (time.perf_counter() - t0) / reps


def _naive_residual(model, x):
    x = x.detach().requires_grad_(True)
    u = model(x)[:, 0]
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
    return g[:, 1] - 0.001 * h[:, 0] + 5.0 * (u**3 - u)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = torch.device(args.device)
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)

    a = torch.randn(2000, 64, device=dev)
    w = torch.randn(64, 64, device=dev)
    t_mm = _rate(lambda: a @ w, 2000, sync)
    flops_per_s = 2 * 2000 * 64 * 64 / t_mm
    t_tanh = _rate(lambda: torch.tanh(a), 2000, sync)
    bandwidth = 2 * a.numel() * 4 / t_tanh  # read + write
    tiny = torch.ones(1, device=dev)
    t_op = _rate(lambda: tiny + tiny, 20000, sync)

    print(f"device {dev}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"matmul (2000x64)@(64x64): {t_mm * 1e6:.1f} us = {flops_per_s / 1e9:.0f} GFLOP/s")
    print(f"elementwise on (2000x64): {t_tanh * 1e6:.1f} us = {bandwidth / 1e9:.1f} GB/s")
    print(f"one tiny eager op: {t_op * 1e6:.2f} us\n")
    print(
        "| engine | measured ms/step | matmul GFLOP | other GB written | aten ops | floor ms "
        "| measured / floor | ops x fixed cost ms |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for engine in ("glfpinn", "nested autograd"):
        problem = problems.get("allen-cahn")
        if engine != "glfpinn":
            problem.residual = _naive_residual
        trainer = Trainer(problem, Uniform(), steps=10**9, schedule=Never(), device=dev)
        step_s = _rate(trainer.optimizer_step, 100, sync)
        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if dev.type == "cuda" else []
        )
        with profile(activities=activities, with_flops=True, record_shapes=True) as prof:
            trainer.optimizer_step()
            sync()
        # Leaf aten ops only: a composite op and the kernels it calls are one piece of work.
        events = [e for e in prof.events() if e.name.startswith("aten::") and not e.cpu_children]
        flops = sum(e.flops or 0 for e in events)
        n_ops = len(events)
        # Bytes of non-matmul work: what elementwise ops write, estimated from their shapes.
        out_bytes = 0
        for e in events:
            if e.flops or not e.input_shapes or not e.input_shapes[0]:
                continue
            numel = 1
            for s in e.input_shapes[0]:
                numel *= s
            out_bytes += 4 * numel * 2
        floor = flops / flops_per_s + out_bytes / bandwidth
        print(
            f"| {engine} | {step_s * 1e3:.2f} | {flops / 1e9:.3f} | {out_bytes / 1e9:.3f} "
            f"| {n_ops} | {floor * 1e3:.2f} | {step_s / floor:.1f}x | {n_ops * t_op * 1e3:.2f} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
