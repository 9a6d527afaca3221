"""``glfpinn train --nproc 2``: two CPU ranks train one run and rank 0 writes its directory; a
rank that dies takes the whole job down with a line that names it, and the run resumes from
its last checkpoint; SIGTERM stops both ranks after the same step with a checkpoint."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

TESTS = Path(__file__).resolve().parents[1]
TINY = [
    "--sampler", "glf", "--steps", "4", "--n-points", "16", "--hidden", "8",
    "--resample-every", "2", "--eval-every", "2", "--n-validation", "16", "--seed", "1",
    "--no-compile", "--quiet",
]  # fmt: skip
#: Rank 1 SIGKILLs itself at its ``DIE_AT``-th residual call while the file ``ARMED`` exists
#: (the contract check, the first evaluation, then one per training step and evaluation).
DIES = f"""
import os, signal, sys
from pathlib import Path
sys.path.insert(0, {str(TESTS)!r})
from helpers import Poisson1D

class DiesOnRank1(Poisson1D):
    calls = 0

    def residual(self, model, x):
        type(self).calls += 1
        armed = Path(__file__).with_name("ARMED")
        if os.environ.get("RANK") == "1" and armed.exists():
            if type(self).calls == int(armed.read_text()):
                os.kill(os.getpid(), signal.SIGKILL)
        return super().residual(model, x)
"""


def _env() -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    return env


def _glfpinn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "glfpinn", *args],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=180,
    )


def _train(*args: str) -> subprocess.CompletedProcess:
    return _glfpinn("train", "--nproc", "2", *TINY, *args)  # the last of a flag counts


def _records(run: Path) -> list[dict]:
    """The whole lines of metrics.jsonl so far."""
    if not (run / "metrics.jsonl").exists():
        return []
    records = []
    for line in (run / "metrics.jsonl").read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):  # the line being written
            records.append(json.loads(line))
    return records


def _params(run: Path) -> list[torch.Tensor]:
    return list(torch.load(run / "checkpoint.pt", weights_only=True)["model"].values())


def test_two_processes_train_one_run_and_write_its_directory_once(tmp_path):
    out = tmp_path / "run"
    done = _train("--problem", f"{TESTS / 'helpers.py'}:Poisson1D", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.strip().splitlines()) == 1  # rank 0's result line only
    assert json.loads(done.stdout)["steps"] == 4
    result = json.loads((out / "result.json").read_text())
    assert (result["n_points"], result["steps"], result["world_size"]) == (16, 4, 2)
    assert yaml.safe_load((out / "config.yaml").read_text())["nproc"] == 2
    records = _records(out)
    assert [r["step"] for r in records if r["event"] == "eval"] == [2, 4]  # written once
    assert [r["step"] for r in records if r["event"] == "resample"] == [2]
    checkpoint = torch.load(out / "checkpoint.pt", weights_only=True)
    assert checkpoint["world_size"] == 2 and len(checkpoint["ranks"]) == 2
    assert checkpoint["points"].shape == (16, 1)  # every rank's points
    # a finished run "resumed" in one process: its result, not a refusal or a rerun
    from glfpinn.runs import run

    assert run(None, out, mode="resume") == result


def test_a_rank_killed_mid_run_fails_the_job_and_the_run_resumes_exactly(tmp_path):
    (tmp_path / "dies.py").write_text(DIES)
    problem = ["--problem", f"{tmp_path / 'dies.py'}:DiesOnRank1", "--checkpoint-every", "2"]
    whole = tmp_path / "whole"
    assert _train(*problem, "--out", str(whole)).returncode == 0
    (tmp_path / "ARMED").write_text("7")  # after the checkpoint of step 2, before step 4's
    out = tmp_path / "run"
    done = _train(*problem, "--out", str(out))
    assert done.returncode == 1
    assert "glfpinn: rank 1 was killed by SIGKILL; stopped the other ranks" in done.stderr
    assert not (out / "result.json").exists()
    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == 2
    (tmp_path / "ARMED").unlink()
    # the stored config says 2 ranks: --resume alone launches them (--trust: its problem is
    # a file, code)
    resumed = _glfpinn("train", "--resume", "--trust", "--out", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for p, q in zip(_params(out), _params(whole), strict=True):
        assert torch.equal(p, q)
    assert (
        json.loads((out / "result.json").read_text())["final_loss"]
        == json.loads((whole / "result.json").read_text())["final_loss"]
    )


LONG = ["--problem", f"{TESTS / 'helpers.py'}:Poisson1D", "--steps", "400", "--eval-every", "25",
        "--checkpoint-every", "1000"]  # fmt: skip


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> Path:
    whole = tmp_path_factory.mktemp("whole") / "run"
    assert _train(*LONG, "--out", str(whole)).returncode == 0
    return whole


def _rank_pid(launcher: int, rank: int) -> int:
    """The pid of rank ``rank`` among the launcher's children."""
    for child in Path(f"/proc/{launcher}/task/{launcher}/children").read_text().split():
        if f"RANK={rank}".encode() in Path(f"/proc/{child}/environ").read_bytes().split(b"\0"):
            return int(child)
    raise AssertionError(f"rank {rank} is not a child of {launcher}")


@pytest.mark.parametrize("target", ["launcher", "rank 1"])
def test_sigterm_stops_every_rank_after_the_same_step_and_the_run_resumes_exactly(
    tmp_path, uninterrupted, target
):
    out = tmp_path / "run"
    command = [sys.executable, "-m", "glfpinn", "train", "--nproc", "2", *TINY, *LONG]
    launcher = subprocess.Popen(
        [*command, "--out", str(out)], env=_env(), stderr=subprocess.PIPE, text=True
    )
    deadline = time.monotonic() + 120
    while not any(r["event"] == "eval" for r in _records(out)):  # step 25 trained
        assert time.monotonic() < deadline and launcher.poll() is None
        time.sleep(0.05)
    pid = launcher.pid if target == "launcher" else _rank_pid(launcher.pid, 1)
    os.kill(pid, signal.SIGTERM)
    _, err = launcher.communicate(timeout=120)
    assert launcher.returncode == 143, err
    assert "glfpinn: terminated" in err and "glfpinn[rank 1]: terminated" in err
    assert "stopped the other ranks" not in err  # a clean stop, not a failure
    stopped = torch.load(out / "checkpoint.pt", weights_only=True)  # joined: both ranks there
    assert 25 <= stopped["step"] < 400 and not (out / "result.json").exists()
    resumed = _glfpinn("train", "--resume", "--trust", "--out", str(out), "--quiet")
    assert resumed.returncode == 0, resumed.stderr
    for p, q in zip(_params(out), _params(uninterrupted), strict=True):
        assert torch.equal(p, q)
