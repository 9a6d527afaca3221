"""Training steps per second on allen-cahn: glfpinn against plain PyTorch and DeepXDE, one run.

Same problem (u_t - 0.001 u_xx + 5(u^3 - u) = 0 with the hard constraint
u = x^2 cos(pi x) + t (1 - x^2) NN), same N = 2000 uniform points, same 3 x 64 tanh network,
same loss (mean squared residual) and optimizer (Adam, lr 1e-3), float32, on one device. Each
variant runs in its own process (DeepXDE changes global torch settings), in rounds that
alternate the variants so that drift in the machine's speed hits all of them alike; the table
reports the median over rounds and the ratio to DeepXDE.

    python benchmarks/training_speed.py                  # CPU, all variants
    python benchmarks/training_speed.py --device cuda
    python benchmarks/training_speed.py --quick          # fewer steps and rounds

Variants: ``glfpinn`` (the Trainer's optimizer step as a user gets it: compiled by default;
compile time reported apart), ``glfpinn-eager`` (the same with ``compile=False``),
``glfpinn-naive`` (eager, with nested reverse-mode derivatives, to isolate the engine),
``torch-eager`` (a hand-written loop with nested torch.autograd.grad: what a careful user writes),
``torch-compile`` (that loop's loss under torch.compile; compile time reported apart),
``deepxde`` (DeepXDE's own training loop, PyTorch backend; skipped if not installed),
``deepxde-retain`` (the same with glibc told, through its environment variables, to keep freed
memory as glfpinn.train does on the CPU: separates that setting from the rest).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

from _shared import allen_cahn_nested_autograd, deepxde_model, seconds_per_call

from glfpinn._allocator import MMAP_THRESHOLD, TRIM_THRESHOLD

N_POINTS = 2000


def _points(device):
    import torch

    from glfpinn.domains import Box

    gen = torch.Generator().manual_seed(0)
    return Box([-1.0, 0.0], [1.0, 1.0]).sample(N_POINTS, gen).to(device)


def _minor_faults() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def _time_loop(step, steps: int, warmup: int, sync, extra: dict) -> float:
    for _ in range(warmup):
        step()
    faults = _minor_faults()
    rate = 1.0 / seconds_per_call(step, steps, 0, sync)
    extra["faults_per_step"] = (_minor_faults() - faults) / steps
    return rate


def run_variant(name: str, device: str, steps: int, warmup: int) -> dict:
    import torch

    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    extra: dict = {}
    if name in ("glfpinn", "glfpinn-eager", "glfpinn-naive"):
        from glfpinn import Never, Uniform, problems
        from glfpinn._allocator import retain_freed_memory
        from glfpinn.training import make_trainer

        problem = problems.get("allen-cahn")
        if name == "glfpinn-naive":
            problem.residual = allen_cahn_nested_autograd  # same equation, nested reverse mode
        retain_freed_memory()  # as glfpinn.train does: this script owns its process
        trainer = make_trainer(
            problem,
            Uniform(),
            steps=10**9,
            n_points=N_POINTS,
            schedule=Never(),
            device=device,
            seed=0,
            compile=name == "glfpinn",
        )
        trainer.state.points = _points(device)
        if trainer.compile:
            t0 = time.perf_counter()
            trainer.optimizer_step()
            extra["compile_s"] = time.perf_counter() - t0
        rate = _time_loop(trainer.optimizer_step, steps, warmup, sync, extra)
    elif name in ("torch-eager", "torch-compile"):
        from glfpinn import problems

        model = (
            problems.get("allen-cahn")
            .build_model(generator=torch.Generator().manual_seed(0))
            .to(device)
        )
        x = _points(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)

        def loss_fn():
            return (allen_cahn_nested_autograd(model, x) ** 2).mean()

        if name == "torch-compile":
            loss_fn = torch.compile(loss_fn)
            t0 = time.perf_counter()
            loss_fn().backward()
            extra["compile_s"] = time.perf_counter() - t0

        def step():
            opt.zero_grad(set_to_none=True)
            loss_fn().backward()
            opt.step()

        rate = _time_loop(step, steps, warmup, sync, extra)
    elif name in ("deepxde", "deepxde-retain"):
        os.environ["DDE_BACKEND"] = "pytorch"
        import deepxde as dde

        if device.startswith("cuda"):
            torch.set_default_device(device)
        model = deepxde_model("allen-cahn", N_POINTS)
        model.train(iterations=warmup, display_every=10**9, verbose=0)
        sync()
        faults = _minor_faults()
        t0 = time.perf_counter()
        model.train(iterations=steps, display_every=10**9, verbose=0)
        sync()
        rate = steps / (time.perf_counter() - t0)
        extra["faults_per_step"] = (_minor_faults() - faults) / steps
        extra["deepxde_version"] = dde.__version__
    else:
        raise ValueError(f"unknown variant {name!r}")
    return {"variant": name, "steps_per_s": rate, **extra}


VARIANTS = (
    "glfpinn",
    "glfpinn-eager",
    "glfpinn-naive",
    "torch-eager",
    "torch-compile",
    "deepxde",
    "deepxde-retain",
)
#: glibc's environment equivalent of glfpinn._allocator.retain_freed_memory().
RETAIN_ENV = {
    "MALLOC_MMAP_THRESHOLD_": str(MMAP_THRESHOLD),
    "MALLOC_TRIM_THRESHOLD_": str(TRIM_THRESHOLD),
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads per process")
    parser.add_argument("--variants", default=",".join(VARIANTS))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        if args.threads:
            torch.set_num_threads(args.threads)
        warmup = max(10, args.steps // 10)
        try:
            out = run_variant(args.child, args.device, args.steps, warmup)
        except (
            Exception
        ) as err:  # report and go on: a missing optional dependency, a failed compile
            out = {"variant": args.child, "error": f"{type(err).__name__}: {err}"[:300]}
        print(json.dumps(out))
        return 0

    if args.quick:
        args.steps, args.rounds = 100, 1
    variants = args.variants.split(",")
    rates: dict[str, list[float]] = {v: [] for v in variants}
    faults: dict[str, list[float]] = {v: [] for v in variants}
    notes: dict[str, str] = {}
    for _ in range(args.rounds):
        for v in variants:
            cmd = [
                sys.executable,
                __file__,
                "--child",
                v,
                "--device",
                args.device,
                "--steps",
                str(args.steps),
            ]
            if args.threads:
                cmd += ["--threads", str(args.threads)]
            env = {**os.environ, **(RETAIN_ENV if v == "deepxde-retain" else {})}
            proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
            lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
            res = json.loads(lines[-1]) if lines else {"error": proc.stderr[-300:]}
            if "error" in res:
                notes[v] = res["error"]
            else:
                rates[v].append(res["steps_per_s"])
                faults[v].append(res["faults_per_step"])
                if "compile_s" in res:
                    notes[v] = f"compile {res['compile_s']:.1f} s (not in the rate)"
                if "deepxde_version" in res:
                    notes[v] = f"DeepXDE {res['deepxde_version']}"

    import torch

    base = statistics.median(rates["deepxde"]) if rates.get("deepxde") else None
    print(
        f"\nallen-cahn, N = {N_POINTS}, 3 x 64 tanh, Adam, float32, device {args.device}, "
        f"torch {torch.__version__}, threads {args.threads or torch.get_num_threads()}, "
        f"{args.steps} timed steps x {args.rounds} rounds (median)\n"
    )
    print("| variant | steps/s | ms/step | vs DeepXDE | page faults/step | note |")
    print("|---|---|---|---|---|---|")
    for v in variants:
        if rates[v]:
            r = statistics.median(rates[v])
            ratio = f"{r / base:.2f}x" if base else "n/a"
            pf = statistics.median(faults[v])
            print(f"| {v} | {r:.1f} | {1000 / r:.2f} | {ratio} | {pf:.1f} | {notes.get(v, '')} |")
        else:
            print(f"| {v} | - | - | - | - | {notes.get(v, 'no result')} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
