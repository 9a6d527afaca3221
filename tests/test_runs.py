import json
import os
import signal
import subprocess
import sys
import time

import pytest

from glfpinn.cli import main

ARGS = [
    "--problem",
    "allen-cahn",
    "--sampler",
    "glf",
    "--steps",
    "160",
    "--lbfgs-steps",
    "40",
    "--n-points",
    "200",
    "--resample-every",
    "30",
    "--eval-every",
    "20",
    "--checkpoint-every",
    "25",
    "--set",
    "hidden=[16, 16]",
    "--quiet",
]


def _result(path):
    return json.loads((path / "result.json").read_text())


def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path):
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert main(["train", "--out", str(full), *ARGS]) == 0

    proc = subprocess.Popen(
        [sys.executable, "-m", "glfpinn", "train", "--out", str(killed), *ARGS],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    # Kill as soon as a checkpoint exists and before the run finishes (or give up waiting).
    while time.time() < deadline and not (killed / "checkpoint.pt").exists():
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (killed / "result.json").exists(), "the run finished before it could be killed"

    assert main(["train", "--resume", "--out", str(killed), "--quiet"]) == 0
    a, b = _result(full), _result(killed)
    for key in ("l2_relative_error", "final_loss", "steps", "residual_evals", "resamples"):
        assert a[key] == b[key], key
    evals = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in evals if x["event"] == "eval"]
    assert steps == list(range(20, 201, 20)), "metrics lost or repeated across the resume"


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, capsys):
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--out",
                str(out),
                *ARGS[:-1],
                "--steps",
                "30",
                "--lbfgs-steps",
                "0",
                "--quiet",
            ]
        )
        == 0
    )
    (out / "result.json").unlink()
    (out / "checkpoint.pt").write_bytes(b"not a checkpoint")
    assert main(["train", "--resume", "--out", str(out)]) == 2
    assert "corrupted" in capsys.readouterr().err


def test_resume_of_a_directory_without_a_run_is_refused(tmp_path, capsys):
    assert main(["train", "--resume", "--out", str(tmp_path)]) == 2
    assert "holds no run" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_non_writable_output_is_refused(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    assert main(["train", "--out", str(ro / "run"), *ARGS]) == 2
    assert "not writable" in capsys.readouterr().err


def test_output_under_a_file_is_refused(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert main(["train", "--out", str(blocker / "run"), *ARGS]) == 2
    assert "not writable" in capsys.readouterr().err
