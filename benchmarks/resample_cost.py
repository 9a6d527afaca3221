"""Time and peak memory of one resampling step per sampler, against one training step.

For input dimension d in {2, 10, 20} (burgers for d = 2; reaction-diffusion with d - 1 space
coordinates plus time above) and N collocation points, each case runs in a fresh process:
build the trainer (3 x 64 tanh network, float32), take one training step (so the free residuals
exist, as in a real run), then time one ``trainer.resample()`` and the training step itself.
Peak memory is what the resample adds on top of what the process held before it: on CUDA
``max_memory_allocated`` after a peak reset; on the CPU (Linux) the process's peak resident set
(VmHWM) after resetting it through /proc/self/clear_refs, minus the resident set before.

    python benchmarks/resample_cost.py                      # CPU: N up to 10^5
    python benchmarks/resample_cost.py --n 1000,10000,100000,1000000 --device cuda
    python benchmarks/resample_cost.py --quick

RAD scores its candidate set (100,000 points, the authors' 2-D setting, at every d unless
``--rad-candidates`` says otherwise); GLF-D scores its N M candidates; GLF, R3 and RSmote score
nothing; PACMANN scores N points per move (``n_moves`` 15) with a gradient. Cases whose residual
evaluations exceed ``--max-evals`` are skipped on the CPU (they are minutes each), and say so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time

SAMPLERS = {
    "glf": {},
    "glf-d": {},
    "rad": {"n_candidates": 100_000},
    "rsmote": {},
    "r3": {},
    "pacmann": {},
}
EVALS = {"glf": 0, "glf-d": 3, "rad": None, "rsmote": 0, "r3": 0, "pacmann": 15}


def _status_kb(field: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith(field))


def _reset_peak_rss() -> None:
    with open("/proc/self/clear_refs", "w") as fh:  # "5": reset the peak resident set size
        fh.write("5")


def _problem(d: int):
    from glfpinn import problems

    if d == 2:
        return problems.get("burgers")
    return problems.get("reaction-diffusion-20d", space_dim=d - 1)


def run_case(sampler: str, d: int, n: int, device: str, rad_candidates: int) -> dict:
    import torch

    from glfpinn import Never, samplers
    from glfpinn.training import make_trainer

    params = dict(SAMPLERS[sampler])
    if sampler == "rad":
        params["n_candidates"] = rad_candidates
    trainer = make_trainer(
        _problem(d),
        samplers.get(sampler, **params),
        steps=10,
        n_points=n,
        schedule=Never(),
        device=device,
        n_condition=min(n, 1000),
        # glibc's defaults (a Trainer built by hand leaves the allocator alone): memory the
        # training step freed is returned to the system, so the resample's peak-RSS growth is
        # its own and not hidden by a heap kept from the step
    )
    cuda = device.startswith("cuda")
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    trainer.optimizer_step()  # warm-up, and the free residuals
    sync()
    t0 = time.perf_counter()
    trainer.optimizer_step()
    sync()
    step_s = time.perf_counter() - t0
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
    else:
        _reset_peak_rss()
        before = _status_kb("VmRSS")
    t0 = time.perf_counter()
    info = trainer.resample()
    sync()
    resample_s = time.perf_counter() - t0
    if cuda:
        extra_mb = (torch.cuda.max_memory_allocated() - before) / 2**20
    else:
        extra_mb = (_status_kb("VmHWM") - before) / 1024
    return {
        "sampler": sampler,
        "d": d,
        "n": n,
        "resample_s": resample_s,
        "step_s": step_s,
        "resample_mb": extra_mb,
        "residual_evals": info["residual_evals"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--d", default="2,10,20")
    parser.add_argument("--n", default="1000,10000,100000")
    parser.add_argument("--samplers", default=",".join(SAMPLERS))
    parser.add_argument("--rad-candidates", type=int, default=100_000)
    parser.add_argument(
        "--max-evals",
        type=float,
        default=5e5,
        help="skip cases scoring more points than this (CPU time)",
    )
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        import torch

        torch.set_num_threads(1)
        s, d, n = args.child.split(":")
        print(json.dumps(run_case(s, int(d), int(n), args.device, args.rad_candidates)))
        return 0
    if args.quick:
        args.d, args.n = "2,20", "1000,10000"

    rows = []
    for d in (int(v) for v in args.d.split(",")):
        for n in (int(v) for v in args.n.split(",")):
            for s in args.samplers.split(","):
                evals = args.rad_candidates if s == "rad" else EVALS[s] * n
                if evals > args.max_evals and not args.device.startswith("cuda"):
                    rows.append({"sampler": s, "d": d, "n": n, "skipped": f"{evals:,} evals"})
                    continue
                cmd = [
                    sys.executable,
                    __file__,
                    "--child",
                    f"{s}:{d}:{n}",
                    "--device",
                    args.device,
                    "--rad-candidates",
                    str(args.rad_candidates),
                ]
                proc = subprocess.run(cmd, capture_output=True, text=True)
                lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
                rows.append(
                    json.loads(lines[-1])
                    if lines
                    else {"sampler": s, "d": d, "n": n, "skipped": proc.stderr[-200:]}
                )

    import torch

    print(
        f"\nOne resample vs one training step; device {args.device}, torch {torch.__version__}, "
        f"1 thread, RAD candidates {args.rad_candidates:,}\n"
    )
    print(
        "| d | N | sampler | residual evals | resample ms | + peak MB | train step ms "
        "| resample / step | resample time vs RAD | peak vs RAD |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "skipped" in row:
            print(
                f"| {row['d']} | {row['n']:,} | {row['sampler']} | skipped: {row['skipped']} "
                "| | | | | | |"
            )
            continue
        rad = next(
            (
                r
                for r in rows
                if r["sampler"] == "rad"
                and r["d"] == row["d"]
                and r["n"] == row["n"]
                and "skipped" not in r
            ),
            None,
        )
        t_ratio = f"{row['resample_s'] / rad['resample_s']:.4f}" if rad else "-"
        m_ratio = (
            f"{row['resample_mb'] / rad['resample_mb']:.3f}"
            if rad and rad["resample_mb"] > 0
            else "-"
        )
        print(
            f"| {row['d']} | {row['n']:,} | {row['sampler']} | {row['residual_evals']:,} "
            f"| {1000 * row['resample_s']:.1f} | {row['resample_mb']:.1f} "
            f"| {1000 * row['step_s']:.1f} | {row['resample_s'] / row['step_s']:.3f} "
            f"| {t_ratio} | {m_ratio} |"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
