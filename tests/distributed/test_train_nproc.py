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


def _alive(pid: int) -> bool:
    """Whether ``pid`` runs (not gone, not a zombie waiting for its parent)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def _files(root: Path) -> dict[str, tuple[int, int]]:
    found = {}
    for path in root.rglob("*"):
        with contextlib.suppress(FileNotFoundError):
            st = path.stat()
            found[str(path)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds the ranks through /proc")
def test_a_launcher_killed_by_sigkill_takes_its_ranks_with_it(tmp_path):
    out = tmp_path / "run"
    endless = [*TINY, *LONG, "--steps", "1000000", "--checkpoint-every", "25"]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "glfpinn", "train", "--nproc", "2", *endless, "--out", str(out)],
        env=_env(),
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own group, for the clean-up below only
    )
    ranks: list[int] = []
    try:
        deadline = time.monotonic() + 120
        while not any(r["event"] == "eval" for r in _records(out)):  # both ranks training
            assert time.monotonic() < deadline and launcher.poll() is None
            time.sleep(0.05)
        ranks += [_rank_pid(launcher.pid, r) for r in (0, 1)]
        launcher.kill()  # SIGKILL: the launcher cannot pass anything on
        launcher.wait()
        killed = time.monotonic()
        while any(map(_alive, ranks)) and time.monotonic() < killed + 5:
            time.sleep(0.05)
        assert not [pid for pid in ranks if _alive(pid)], "a rank outlived its launcher"
        before = _files(out)
        time.sleep(2)
        assert _files(out) == before, "a rank went on writing the run directory"
    finally:  # what this test started, should it fail (the ranks run in their own sessions)
        for pid in [launcher.pid, *(pid for pid in ranks if _alive(pid))]:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


#: Both ranks hang inside their residual (a deadlock, a stuck filesystem) once ``HANG`` exists.
HANGS = f"""
import time
from pathlib import Path
import sys
sys.path.insert(0, {str(TESTS)!r})
from helpers import Poisson1D

class Hangs(Poisson1D):
    def residual(self, model, x):
        if Path(__file__).with_name("HANG").exists():
            time.sleep(3600)
        return super().residual(model, x)
"""


def test_a_second_sigterm_to_a_hung_run_exits_143(tmp_path):
    (tmp_path / "hangs.py").write_text(HANGS)
    out = tmp_path / "run"
    problem = ["--problem", f"{tmp_path / 'hangs.py'}:Hangs", "--steps", "1000000"]
    launcher = subprocess.Popen(
        [sys.executable, "-m", "glfpinn", "train", "--nproc", "2", *TINY, *problem, "--out",
         str(out)],
        env=_env(),
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not any(r["event"] == "eval" for r in _records(out)):
            assert time.monotonic() < deadline and launcher.poll() is None
            time.sleep(0.05)
        (tmp_path / "HANG").touch()
        time.sleep(1)  # both ranks now sleep in a step that never ends
        launcher.send_signal(signal.SIGTERM)  # passed on; each rank waits for its step's end
        time.sleep(1)
        assert launcher.poll() is None, "the run was meant to hang"
        launcher.send_signal(signal.SIGTERM)  # the second: stop now
        _, err = launcher.communicate(timeout=60)
    finally:
        launcher.kill()
    assert launcher.returncode == 143, err
    assert "glfpinn: terminated" in err and "Traceback" not in err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["--n-points", "100", "--nproc", "64"], "n_points=100 does not split over 64 ranks"),
        (["--n-points", "4", "--nproc", "8", "--sampler", "rad"], "n_points=4 is fewer than the 8"),
    ],
)
def test_nproc_is_checked_against_the_points_before_any_rank_starts(
    tmp_path, capsys, monkeypatch, args, fragment
):
    from glfpinn.cli import main

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    launched = []
    monkeypatch.setattr("glfpinn.distributed.launch", lambda *a: launched.append(a) or 0)
    out = tmp_path / "run"
    code = main(["train", "--problem", "allen-cahn", *TINY, *args, "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert [line for line in err.splitlines() if "error" in line] == [err.splitlines()[-1]]
    assert not launched and not out.exists()


def test_more_cpu_ranks_than_cores_are_warned_about_once(tmp_path, capsys, monkeypatch):
    from glfpinn.cli import main

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 2)
    monkeypatch.setattr("glfpinn.distributed.launch", lambda argv, nproc: 0)
    args = ["--problem", "allen-cahn", *TINY, "--n-points", "16", "--nproc", "4"]
    assert main(["train", *args, "--device", "cpu", "--out", str(tmp_path / "run")]) == 0
    err = capsys.readouterr().err
    assert "glfpinn: warning: --nproc 4 starts 4 ranks on 2 CPU cores" in err
