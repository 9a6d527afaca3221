import json
import os
import signal
import subprocess
import sys
import time

import pytest

from glfpinn.cli import main
from tests.helpers import MY_PDE

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


@pytest.mark.parametrize("problem", ["allen-cahn", "my_pde.py:MyPDE"])
def test_sigkilled_run_resumes_to_the_uninterrupted_result(tmp_path, monkeypatch, problem):
    """Also for a user's problem in a file of its own, found again by the resumed process."""
    (tmp_path / "my_pde.py").write_text(MY_PDE)
    monkeypatch.chdir(tmp_path)
    args = [*ARGS]
    args[args.index("allen-cahn")] = problem
    full, killed = tmp_path / "full", tmp_path / "killed"
    assert main(["train", "--out", str(full), *args]) == 0

    proc = subprocess.Popen(
        [sys.executable, "-m", "glfpinn", "train", "--out", str(killed), *args],
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

    trust = ["--trust"] if ".py:" in problem else []  # a problem in a file is code
    assert main(["train", "--resume", "--out", str(killed), "--quiet", *trust]) == 0
    a, b = _result(full), _result(killed)
    for key in ("l2_relative_error", "final_loss", "steps", "residual_evals", "resamples"):
        assert a[key] == b[key], key
    evals = [json.loads(x) for x in (killed / "metrics.jsonl").read_text().splitlines()]
    steps = [x["step"] for x in evals if x["event"] == "eval"]
    assert steps == list(range(20, 201, 20)), "metrics lost or repeated across the resume"


def _interrupted_run(tmp_path):
    """A short run whose result.json is gone, as if it had been killed after its checkpoint."""
    out = tmp_path / "run"
    short = [*ARGS[:-1], "--steps", "30", "--lbfgs-steps", "0", "--quiet"]
    assert main(["train", "--out", str(out), *short]) == 0
    (out / "result.json").unlink()
    return out


def test_corrupted_checkpoint_is_a_clear_error(tmp_path, capsys):
    out = _interrupted_run(tmp_path)
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


def test_a_diverging_run_stops_with_exit_1_and_keeps_its_last_good_checkpoint(tmp_path, capsys):
    import torch

    out = tmp_path / "run"
    code = main(
        [
            "train",
            "--out",
            str(out),
            "--problem",
            "allen-cahn",
            "--steps",
            "50",
            "--lr",
            "1e12",
            "--n-points",
            "64",
            "--checkpoint-every",
            "1",
            "--set",
            "hidden=[8]",
            "--quiet",
        ]
    )
    assert code == 1
    assert "loss became" in capsys.readouterr().err
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    assert all(bool(torch.isfinite(v).all()) for v in state["model"].values())
    assert not (out / "result.json").exists()


def test_yaml_is_never_evaluated_as_code(tmp_path, capsys):
    marker = tmp_path / "pwned"
    cfg = tmp_path / "evil.yaml"
    cfg.write_text(f'steps: !!python/object/apply:os.system ["touch {marker}"]\n')
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert not marker.exists()
    assert "not valid YAML" in capsys.readouterr().err


def test_checkpoint_with_arbitrary_objects_is_refused(tmp_path, capsys):
    import pickle

    out = _interrupted_run(tmp_path)

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {tmp_path / 'pwned'}",))

    (out / "checkpoint.pt").write_bytes(pickle.dumps(Payload()))
    assert main(["train", "--resume", "--out", str(out)]) == 2
    assert not (tmp_path / "pwned").exists()


def test_two_runs_in_one_process_report_their_own_peak_memory(tmp_path):
    """As a bench worker does: one process, one run after another. The first scores a million
    RAD candidates in one chunk (about 0.8 GB above the process's baseline); the second scores
    none and must not inherit the first's peak."""
    from glfpinn.config import RunConfig
    from glfpinn.runs import run

    base = {
        "problem": "laplace",
        "steps": 11,
        "resample_every": 10,
        "eval_every": 11,
        "hidden": [16, 16],
        "n_points": 200,
        "n_validation": 100,
    }
    rad = {"sampler": "rad", "sampler_params": {"n_candidates": 1_000_000}}
    big = run(RunConfig.from_dict({**base, **rad, "score_chunk": 1_000_000}), tmp_path / "a")
    small = run(RunConfig.from_dict({**base, "sampler": "glf"}), tmp_path / "b")
    assert small["peak_memory_mb"] < big["peak_memory_mb"] - 400


def test_the_step_0_evaluation_is_the_initial_one_and_metrics_start_at_eval_every(tmp_path):
    """docs/training.md, "Evaluation": step 0 is measured and kept as the initial metrics
    (result.json's initial_l2_relative_error), and metrics.jsonl starts at step eval_every."""
    import glfpinn
    from glfpinn import GLF
    from tests.helpers import Poisson1D

    trainer = glfpinn.training.make_trainer(Poisson1D(), GLF(), steps=20, eval_every=10)
    glfpinn.record(trainer, tmp_path / "r").fit()
    lines = [json.loads(x) for x in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["event"] == "eval"] == [10, 20]
    result = json.loads((tmp_path / "r" / "result.json").read_text())
    initial = trainer.state.initial_metrics["l2_relative_error"]
    assert result["initial_l2_relative_error"] == initial != result["l2_relative_error"]


@pytest.mark.parametrize(
    ("problem", "written"),
    [
        ("laplace", True),
        ("tests.helpers:Poisson1D", False),
        ("tests.helpers:Poisson1DNoReference", False),
    ],
)
def test_prediction_npz_is_written_for_a_reference_with_a_2d_view_only(tmp_path, problem, written):
    """docs/training.md, "Run directories": a 2-D problem with a reference gets prediction.npz;
    a 1-D one (no 2-D view) and one without a reference do not."""
    out = tmp_path / "run"
    args = ["train", "--problem", problem, "--steps", "2", "--n-points", "32", "--quiet"]
    assert main([*args, "--eval-every", "2", "--hidden", "8", "--out", str(out)]) == 0
    assert (out / "prediction.npz").exists() == written
