"""``glfpinn train --nproc 2``: two CPU ranks train one run, rank 0 writes its directory, and a
rank that dies takes the whole job down with a line that names it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import torch

from glfpinn.cli import main

TESTS = Path(__file__).resolve().parents[1]
TINY = [
    "--sampler", "glf", "--steps", "4", "--n-points", "16", "--hidden", "8",
    "--resample-every", "2", "--eval-every", "2", "--n-validation", "16", "--seed", "1",
    "--no-compile", "--quiet",
]  # fmt: skip
#: Rank 1 SIGKILLs itself at its 5th residual call (the contract check, the first evaluation,
#: then one per training step: mid-run, after two steps).
DIES = f"""
import os, signal, sys
sys.path.insert(0, {str(TESTS)!r})
from helpers import Poisson1D

class DiesOnRank1(Poisson1D):
    calls = 0

    def residual(self, model, x):
        type(self).calls += 1
        if os.environ.get("RANK") == "1" and type(self).calls == 5:
            os.kill(os.getpid(), signal.SIGKILL)
        return super().residual(model, x)
"""


def _train(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return subprocess.run(
        [sys.executable, "-m", "glfpinn", "train", "--nproc", "2", *args, *TINY],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_two_processes_train_one_run_and_write_its_directory_once(tmp_path, capsys):
    out = tmp_path / "run"
    done = _train("--problem", f"{TESTS / 'helpers.py'}:Poisson1D", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1  # rank 0's result line only
    assert json.loads(done.stdout)["steps"] == 4
    result = json.loads((out / "result.json").read_text())
    assert result["n_points"] == 16 and result["steps"] == 4
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records if r["event"] == "eval"] == [2, 4]  # written once
    assert [r["step"] for r in records if r["event"] == "resample"] == [2]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert (checkpoint["rank"], checkpoint["world_size"]) == (0, 2)
    assert checkpoint["points"].shape == (8, 1)
    # its network loads (it is every rank's), but extending it is not a resume from rank 0's
    # points alone: refused in one line
    assert main(["train", "--resume", "--steps", "6", "--out", str(out)]) == 2
    assert "trained on 2 ranks" in capsys.readouterr().err


def test_a_rank_killed_mid_run_fails_the_job_with_a_clear_message(tmp_path):
    (tmp_path / "dies.py").write_text(DIES)
    out = tmp_path / "run"
    done = _train("--problem", f"{tmp_path / 'dies.py'}:DiesOnRank1", "--out", str(out))
    assert done.returncode == 1
    assert "glfpinn: rank 1 was killed by SIGKILL; stopped the other ranks" in done.stderr
    assert not (out / "result.json").exists()
