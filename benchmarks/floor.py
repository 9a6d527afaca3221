"""How far a training step is from the machine's floor, and what stands between.

For the allen-cahn training step (N = 2000, 3 x 64 tanh, Adam, float32), with glfpinn's eager
default, with ``Trainer(compile=True)`` and with a hand-written nested reverse-mode residual,
this measures on this machine:

- the matmul rate on the step's own shapes (a (2000 x 64) @ (64 x 64) product),
- the throughput of an elementwise add on (2000 x 64) tensors (cache-resident, as the step's
  intermediates are), and the fixed cost of one eager op (a tiny add: dispatch overhead),
- the step's FLOPs (torch.profiler's count over matmul kernels), its number of leaf aten ops and
  the bytes its non-matmul ops move (two reads and a write each),

then prints two floors: the matmul floor (FLOPs / matmul rate: no implementation of the same
arithmetic can beat it) and the eager floor (that plus the bytes the eager op sequence moves /
bandwidth), the measured step time, its ratios to both, and the share that per-op overhead
(ops x fixed cost) explains. The compiled step's element-wise work runs in fused kernels the
profiler does not break into aten ops, so only its matmul floor is given.

    python benchmarks/floor.py [--device cuda] [--threads 2]
"""

from __future__ import annotations

import argparse

import torch
from _shared import allen_cahn_nested_autograd, seconds_per_call
from torch.profiler import ProfilerActivity, profile

from glfpinn import Never, Uniform, problems
from glfpinn._allocator import retain_freed_memory
from glfpinn.training import make_trainer


def _rate(fn, reps: int, sync) -> float:
    return seconds_per_call(fn, reps, max(3, reps // 10), sync)


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
    b = torch.randn_like(a)
    t_add = _rate(lambda: a + b, 2000, sync)
    bandwidth = 3 * a.numel() * 4 / t_add  # two reads and a write
    tiny = torch.ones(1, device=dev)
    t_op = _rate(lambda: tiny + tiny, 20000, sync)
    t_tanh = _rate(lambda: torch.tanh(a), 2000, sync)

    print(f"device {dev}, {args.threads} thread(s), torch {torch.__version__}")
    print(f"matmul (2000x64)@(64x64): {t_mm * 1e6:.1f} us = {flops_per_s / 1e9:.0f} GFLOP/s")
    print(f"elementwise add on (2000x64): {t_add * 1e6:.1f} us = {bandwidth / 1e9:.1f} GB/s")
    print(f"tanh on (2000x64): {t_tanh * 1e6:.1f} us")
    print(f"one tiny eager op: {t_op * 1e6:.2f} us\n")
    print(
        "| engine | measured ms/step | matmul GFLOP | matmul floor ms | measured / matmul floor "
        "| other GB moved | leaf ops | eager floor ms | measured / eager floor "
        "| ops x fixed cost ms | in-step (2000x64)@(64x64) us | Adam ms |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for engine in ("glfpinn", "glfpinn compiled", "nested autograd"):
        problem = problems.get("allen-cahn")
        if engine == "nested autograd":
            problem.residual = allen_cahn_nested_autograd
        compiled = engine == "glfpinn compiled"
        retain_freed_memory()  # as glfpinn.train does: this script owns its process
        trainer = make_trainer(
            problem, Uniform(), steps=10**9, schedule=Never(), device=dev, compile=compiled
        )
        trainer.optimizer_step()  # compiles, when asked
        step_s = _rate(trainer.optimizer_step, 100, sync)
        activities = [ProfilerActivity.CPU] + (
            [ProfilerActivity.CUDA] if dev.type == "cuda" else []
        )
        with profile(activities=activities, with_flops=True, record_shapes=True) as prof:
            trainer.optimizer_step()
            sync()
        aten = [e for e in prof.events() if e.name.startswith("aten::")]
        # The profiler knows the FLOPs of the matmul kernels only; count each kernel once.
        flops = sum(
            e.flops or 0 for e in aten if e.name in ("aten::mm", "aten::addmm", "aten::bmm")
        )
        # Leaf ops: a composite op and the kernels it calls are one piece of work.
        leaves = [e for e in aten if not e.cpu_children]
        n_ops = len(leaves)
        # Non-matmul work is memory-bound: two reads and a write of its first input's size.
        out_bytes = 0
        for e in leaves:
            if e.name in ("aten::mm", "aten::addmm", "aten::bmm") or not e.input_shapes:
                continue
            if not e.input_shapes[0]:
                continue
            numel = 1
            for s in e.input_shapes[0]:
                numel *= s
            out_bytes += 4 * numel * 3
        # The profiler's view of what the step's matmuls cost on its own (cache-cold) operands,
        # against the isolated rate above, and of the optimizer's share.
        in_step = [
            e.cpu_time_total
            for e in aten
            if e.name in ("aten::mm", "aten::addmm")
            and [2000, 64] in e.input_shapes
            and [64, 64] in e.input_shapes
        ]
        mm_us = sum(in_step) / len(in_step) if in_step else float("nan")
        adam_ms = (
            sum(e.cpu_time_total for e in prof.events() if e.name.startswith("Optimizer.step#Adam"))
            / 1e3
        )
        tail = f" | {mm_us:.0f} | {adam_ms:.2f} |"
        mm_floor = flops / flops_per_s
        head = (
            f"| {engine} | {step_s * 1e3:.2f} | {flops / 1e9:.3f} | {mm_floor * 1e3:.2f} "
            f"| {step_s / mm_floor:.1f}x"
        )
        if compiled:
            print(f"{head} | - | {n_ops} | - | - | -{tail}")
            continue
        floor = mm_floor + out_bytes / bandwidth
        print(
            f"{head} | {out_bytes / 1e9:.3f} | {n_ops} | {floor * 1e3:.2f} "
            f"| {step_s / floor:.1f}x | {n_ops * t_op * 1e3:.2f}{tail}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
