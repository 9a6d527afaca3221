"""DeepXDE with glfpinn's GLF and RAD callbacks against DeepXDE's own uniform resampling.

Each cell trains DeepXDE's set-up of a problem (``_shared.deepxde_model``: hard constraint,
3 x 64 tanh, Adam 1e-3, PyTorch backend) for the same wall-clock budget with one resampler
(``uniform``: ``dde.callbacks.PDEPointResampler``; ``glf-robust``, ``glf`` and ``rad``:
``glfpinn.integrations.deepxde.Resampler``), in rounds of ``--period`` iterations, and records
the relative L2 error against glfpinn's reference solution at a few fractions of the budget.
At the end it measures one more resample: its time and what it adds to the process's peak
resident memory (CUDA: peak allocated).

    python benchmarks/deepxde_samplers.py                          # 3 seeds, 300 s per run
    python benchmarks/deepxde_samplers.py --budget 5 --seeds 0 --problems burgers   # smoke test
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from _shared import deepxde_model

METHODS = ("uniform", "glf-robust", "glf", "rad")
FRACTIONS = (0.25, 0.5, 1.0)


def _peak_growth_mb(fn) -> float:
    """What ``fn()`` adds to the peak memory: CUDA allocations, else the resident set (Linux)."""
    if torch.cuda.is_available() and torch.get_default_device().type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return (torch.cuda.max_memory_allocated() - before) / 2**20

    def status_kb(field: str) -> int:
        with open("/proc/self/status") as fh:
            return next(int(line.split()[1]) for line in fh if line.startswith(field))

    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")  # restart the peak resident set size from the current one
    before = status_kb("VmRSS")
    fn()
    return (status_kb("VmHWM") - before) / 1024


def run(problem: str, method: str, seed: int, args: argparse.Namespace) -> dict:
    import deepxde as dde

    from glfpinn import RAD, problems, samplers
    from glfpinn.integrations.deepxde import Resampler

    reference = problems.get(problem)
    x_test = reference.test_points()
    u_test = reference.solution(x_test)
    model = deepxde_model(problem, args.n_points, seed=seed)
    if method == "uniform":
        callback = dde.callbacks.PDEPointResampler(period=args.period)
        resample = model.data.resample_train_points
    else:
        sampler = RAD(n_candidates=args.rad_candidates) if method == "rad" else samplers.get(method)
        callback = Resampler(sampler, period=args.period, seed=seed)
        resample = callback.resample

    def l2() -> float:
        u = model.predict(x_test.astype(np.float32))[:, 0].astype(np.float64)
        return float(np.linalg.norm(u - u_test) / np.linalg.norm(u_test))

    curve, train_s, marks = [], 0.0, [f * args.budget for f in FRACTIONS]
    while marks:
        t0 = time.perf_counter()
        model.train(iterations=args.period, callbacks=[callback], display_every=10**9, verbose=0)
        train_s += time.perf_counter() - t0
        if train_s >= marks[0]:  # evaluation time is not charged to the budget
            error = l2()
            while marks and train_s >= marks[0]:
                curve.append(error)
                marks.pop(0)
    t0 = time.perf_counter()
    resample_mb = _peak_growth_mb(resample)
    resample_s = time.perf_counter() - t0
    return {
        "curve": curve,
        "steps": int(model.train_state.step),
        "resample_s": resample_s,
        "resample_mb": resample_mb,
        # per resample: the last one is measured alone, so it also gives the rate
        "evals_per_resample": (
            callback.residual_evals / callback.costs.resamples if method != "uniform" else 0
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--budget", type=float, default=300.0, help="training seconds per run")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds")
    parser.add_argument("--problems", default="allen-cahn,burgers,diffusion-reaction")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--n-points", type=int, default=2000)
    parser.add_argument("--period", type=int, default=100, help="iterations between resamples")
    parser.add_argument("--rad-candidates", type=int, default=100_000)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (CPU)")
    args = parser.parse_args()
    if args.budget <= 0:
        parser.error(f"--budget={args.budget} must be positive")
    seeds = [int(s) for s in args.seeds.split(",")]
    methods = args.methods.split(",")
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        parser.error(f"--methods {unknown} unknown; allowed: {', '.join(METHODS)}")
    torch.set_num_threads(args.threads)

    lines = [
        f"\nDeepXDE {__import__('deepxde').__version__}, torch {torch.__version__}: "
        f"N = {args.n_points}, resample every {args.period} iterations, {args.budget:g} s of "
        f"training per run, seeds {seeds}; L2 = relative L2 error (mean +- std over seeds) "
        "after the given share of the budget.\n",
    ]
    heads = " | ".join(f"L2 at {f * args.budget:g} s" for f in FRACTIONS)
    lines.append(
        f"| problem | resampler | steps | {heads} | one resample ms | + peak MB "
        "| residual evals per resample |"
    )
    lines.append("|---|---|---|" + "---|" * len(FRACTIONS) + "---|---|---|")
    for problem in args.problems.split(","):
        for method in methods:
            rows = [run(problem, method, seed, args) for seed in seeds]

            def stat(values, fmt):
                mean = statistics.fmean(values)
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                return f"{mean:{fmt}} +- {spread:{fmt}}"

            curves = " | ".join(
                stat([r["curve"][i] for r in rows], ".2e") for i in range(len(FRACTIONS))
            )
            name = "PDEPointResampler" if method == "uniform" else f"glfpinn {method}"
            lines.append(
                f"| {problem} | {name} | {statistics.fmean(r['steps'] for r in rows):.0f} "
                f"| {curves} | {1000 * statistics.fmean(r['resample_s'] for r in rows):.1f} "
                f"| {statistics.fmean(r['resample_mb'] for r in rows):.1f} "
                f"| {rows[0]['evals_per_resample']:.0f} |"
            )
    print("\n".join(lines))  # after the runs: DeepXDE prints while compiling


if __name__ == "__main__":
    main()
