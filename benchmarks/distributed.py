"""Data-parallel training on this machine's CPU: 1 process against 2 (gloo), through the CLI a
user runs (``glfpinn train`` and ``glfpinn train --nproc 2``), each run a fresh process tree.

    python benchmarks/distributed.py scaling  --out runs/dist-scaling
    python benchmarks/distributed.py accuracy --out runs/dist-accuracy --seeds 0,1,2,3,4

``scaling``: steps/s (training steps over the training time, resampling excluded) and seconds
per resample on reaction-diffusion-20d, for GLF (resamples per rank) and RAD (whole set,
candidate scoring split), eager (compiling would add each process's start-up to a short run):

- strong scaling: the same N on 1 process with all the machine's threads and on K processes
  with 1/K of them each;
- weak scaling: N/K per process with one thread each (``--nprocs 1,2``: N/2 on 1 process, N on
  2). ``--device cuda --nprocs 1,2,4,8``: one card per process (benchmarks/gpu/multi_gpu.sh).

``accuracy``: reaction-diffusion-20d with GLF at the medium profile's high-dimensional
settings (N = 500, 1,000 Adam + 200 L-BFGS, resample every 200, compiled as by default), on
1 process and on 2, over the given seeds; then seed 0 on 2 processes again, with rank 1
SIGKILLed after the first checkpoint and the run resumed with ``--resume``, whose parameters
must equal the uninterrupted 2-process run's bit for bit.

Both print markdown tables (and write them, with every run's result, under ``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch

PROBLEM = ["--problem", "reaction-diffusion-20d"]
CORES = os.cpu_count() or 1


def _glfpinn(args: list[str], threads: int, timeout: float = 3600) -> None:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    env.pop("WORLD_SIZE", None)
    done = subprocess.run(
        [sys.executable, "-m", "glfpinn", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if done.returncode != 0:
        raise RuntimeError(f"glfpinn {' '.join(args)} failed:\n{done.stderr[-2000:]}")


def _train(out: Path, nproc: int, threads: int, settings: list[str]) -> dict:
    """One run into ``out`` (reused when it finished before: the benchmark resumes)."""
    if not (out / "result.json").exists():
        ranks = ["--nproc", str(nproc)] if nproc > 1 else []
        _glfpinn(["train", *PROBLEM, *settings, *ranks, "--overwrite", "--out", str(out),
                  "--quiet"], threads)  # fmt: skip
    return json.loads((out / "result.json").read_text())


# ---------------------------------------------------------------------------- scaling
def scaling(
    out: Path, steps: int, resample_every: int, n_points: int, nprocs: list[int], device: str
) -> str:
    rad = ["--sampler", "rad", "--set", "sampler_params.n_candidates=20000"]
    samplers = {"glf (per rank)": ["--sampler", "glf"], "rad (whole set, S = 20,000)": rad}
    cpu = device == "cpu"
    cases = []  # scaling, N, processes, threads per process
    for k in nprocs:  # strong: the same N, the machine's cores shared out
        cases.append(("strong", n_points, k, max(1, CORES // k) if cpu else 1))
    for k in nprocs:  # weak: N / K per process, one thread (one card) each
        cases.append(("weak", n_points * k // max(nprocs), k, 1))
    rows = []
    for name, flags in samplers.items():
        for kind, n, nproc, threads in cases:
            settings = [
                *flags, "--steps", str(steps), "--n-points", str(n),
                "--resample-every", str(resample_every), "--eval-every", str(steps),
                "--no-compile", "--seed", "0", "--device", device,
            ]  # fmt: skip
            tag = f"{name.split()[0]}-{kind}-n{n}-k{nproc}-t{threads}-{device}"
            r = _train(out / tag, nproc, threads, settings)
            train_s = r["wall_time_s"] - r["sampling_time_s"]
            rows.append(
                {
                    "sampler": name,
                    "scaling": kind,
                    "N": n,
                    "processes": nproc,
                    "threads": threads,
                    "steps_per_s": r["steps"] / train_s,
                    "resample_s": r["sampling_time_s"] / max(r["resamples"], 1),
                }
            )
    unit = "threads" if cpu else "cards"
    lines = [
        f"| sampler | scaling | N | processes x {unit} each | steps/s | s per resample | "
        "steps/s vs 1 process | points x steps/s vs 1 process |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        base = next(
            b for b in rows
            if (b["sampler"], b["scaling"], b["processes"]) == (row["sampler"], row["scaling"], 1)
        )  # fmt: skip
        work = row["steps_per_s"] * row["N"] / (base["steps_per_s"] * base["N"])
        lines.append(
            f"| {row['sampler']} | {row['scaling']} | {row['N']:,} | "
            f"{row['processes']} x {row['threads'] if cpu else 1} | {row['steps_per_s']:.1f} | "
            f"{row['resample_s']:.3f} | {row['steps_per_s'] / base['steps_per_s']:.2f}x | "
            f"{work:.2f}x |"
        )
    return "\n".join(lines)


# ---------------------------------------------------------------------------- accuracy
ACCURACY = [
    "--sampler", "glf", "--steps", "1000", "--lbfgs-steps", "200", "--n-points", "500",
    "--resample-every", "200", "--checkpoint-every", "200",
]  # fmt: skip


def _rank_pid(launcher: int, rank: int) -> int | None:
    """The pid of rank ``rank`` among ``launcher``'s children (from /proc)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            environ = (stat.parent / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if int(fields[1]) == launcher and f"RANK={rank}".encode() in environ:
            return int(stat.parent.name)
    return None


def _killed_and_resumed(out: Path, seed: int) -> dict:
    """Seed ``seed`` on 2 processes, rank 1 SIGKILLed once the first checkpoint is written,
    then resumed; returns the step it was killed after and the resumed result."""
    if (out / "result.json").exists():
        return json.loads((out / "killed.json").read_text())
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    command = [sys.executable, "-m", "glfpinn", "train", *PROBLEM, *ACCURACY, "--seed",
               str(seed), "--nproc", "2", "--overwrite", "--out", str(out), "--quiet"]  # fmt: skip
    launcher = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, text=True)
    while not (out / "checkpoint.pt").exists():
        if launcher.poll() is not None:
            raise RuntimeError(f"the run ended before its first checkpoint: {launcher.stderr}")
        time.sleep(0.2)
    pid = _rank_pid(launcher.pid, 1)
    if pid is None:
        raise RuntimeError("rank 1 not found among the launcher's children")
    os.kill(pid, signal.SIGKILL)
    _, err = launcher.communicate(timeout=600)
    step = torch.load(out / "checkpoint.pt", weights_only=True)["step"]
    _glfpinn(["train", "--resume", "--out", str(out), "--quiet"], 1)
    record = {"status": launcher.returncode, "stderr": err.strip().splitlines()[-1],
              "resumed_from_step": step}  # fmt: skip
    (out / "killed.json").write_text(json.dumps(record))
    return record


def accuracy(out: Path, seeds: list[int]) -> str:
    from scipy import stats

    errors: dict[int, list[float]] = {1: [], 2: []}
    times: dict[int, list[float]] = {1: [], 2: []}
    for nproc in (1, 2):
        for seed in seeds:
            threads = CORES if nproc == 1 else max(1, CORES // 2)
            r = _train(out / f"k{nproc}-seed{seed}", nproc, threads,
                       [*ACCURACY, "--seed", str(seed)])  # fmt: skip
            errors[nproc].append(r["l2_relative_error"])
            times[nproc].append(r["wall_time_s"])
    killed = _killed_and_resumed(out / f"k2-seed{seeds[0]}-killed", seeds[0])
    whole = torch.load(out / f"k2-seed{seeds[0]}" / "checkpoint.pt", weights_only=True)
    resumed = torch.load(out / f"k2-seed{seeds[0]}-killed" / "checkpoint.pt", weights_only=True)
    exact = all(torch.equal(whole["model"][k], resumed["model"][k]) for k in whole["model"])
    test = stats.mannwhitneyu(errors[1], errors[2])
    lines = [
        "| processes | seeds | L2 mean ± std | median | per seed | wall s (mean) |",
        "|---|---|---|---|---|---|",
    ]
    for nproc in (1, 2):
        e = errors[nproc]
        lines.append(
            f"| {nproc} | {len(e)} | {statistics.mean(e):.3f} ± {statistics.stdev(e):.3f} | "
            f"{statistics.median(e):.3f} | {', '.join(f'{v:.3f}' for v in e)} | "
            f"{statistics.mean(times[nproc]):.1f} |"
        )
    lines += [
        "",
        f"Mann-Whitney U, 1 against 2 processes: p = {test.pvalue:.2f}.",
        f"Seed {seeds[0]} on 2 processes, rank 1 SIGKILLed after the checkpoint of step "
        f"{killed['resumed_from_step']} (launcher: status {killed['status']}, "
        f"`{killed['stderr']}`), resumed with --resume: parameters "
        f"{'equal' if exact else 'NOT equal'} to the uninterrupted run's bit for bit.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("what", choices=("scaling", "accuracy"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--resample-every", type=int, default=100)
    parser.add_argument("--n-points", type=int, default=4000)
    parser.add_argument("--nprocs", default="1,2", help="process counts to compare (scaling)")
    parser.add_argument("--device", default="cpu", help="cpu, or cuda: one card per process")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.what == "scaling":
        nprocs = [int(k) for k in args.nprocs.split(",")]
        table = scaling(
            args.out, args.steps, args.resample_every, args.n_points, nprocs, args.device
        )
    else:
        table = accuracy(args.out, [int(s) for s in args.seeds.split(",")])
    (args.out / f"{args.what}.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
