"""One writer per run directory, divergence that never reaches a checkpoint, and resume over
damaged run directories."""

import json
import shutil
import subprocess
import sys
import time
import warnings

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import glfpinn
from glfpinn import GLF, Every, NonFiniteLossError
from glfpinn.cli import main
from glfpinn.training import make_trainer
from tests.helpers import FaultyPoisson1D, Poisson1D

ARGS = ["--problem", "burgers", "--sampler", "glf", "--n-points", "200", "--hidden", "16,16"]
ARGS += ["--eval-every", "20", "--checkpoint-every", "20", "--quiet"]


def _glfpinn(*args, **kw):
    return subprocess.Popen(
        [sys.executable, "-m", "glfpinn", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        **kw,
    )


def test_a_second_writer_is_refused_with_the_holders_pid(tmp_path):
    out = tmp_path / "run"
    first = _glfpinn("train", *ARGS, "--steps", "3000", "--out", str(out))
    deadline = time.time() + 60
    while time.time() < deadline and not (out / "config.yaml").exists():
        time.sleep(0.05)
    for mode in ("--overwrite", "--resume"):
        second = subprocess.run(
            [
                sys.executable,
                "-m",
                "glfpinn",
                "train",
                *ARGS,
                "--steps",
                "50",
                mode,
                "--out",
                str(out),
            ],
            capture_output=True,
            text=True,
        )
        assert second.returncode == 2 and "Traceback" not in second.stderr
        assert f"is in use by process {first.pid}" in second.stderr
        assert len(second.stderr.strip().splitlines()) == 1
    first.kill()  # SIGKILL: the kernel drops its lock, so the next writer takes over
    first.wait()
    assert main(["train", *ARGS, "--steps", "20", "--overwrite", "--out", str(out)]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 20 and "steps: 20" in (out / "config.yaml").read_text()


def test_the_lock_is_released_when_a_run_ends_in_this_process(tmp_path):
    kw = dict(steps=10, eval_every=5)
    glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", **kw)
    glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", mode="overwrite", **kw)  # no error


class _NaNGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, r):
        return r.clone()

    @staticmethod
    def backward(ctx, grad):
        return grad * float("nan")


def _diverges_at_call(at):
    """Its residual's gradient turns NaN on residual call ``at``: the loss stays finite that
    step, the optimizer writes NaN into every weight, the next step's loss is NaN."""
    return FaultyPoisson1D(lambda call, r: _NaNGradient.apply(r) if call == at else r)


def test_a_divergence_on_a_checkpoint_boundary_keeps_the_last_finite_checkpoint(tmp_path):
    # residual calls: 1 the contract check, 2 the initial validation, then one per step plus
    # the validation after step 10: call 23 is the 20th step's, whose update makes every weight
    # NaN just before the step-20 checkpoint; that checkpoint must not be written
    kw = dict(steps=40, lr=1e-2, schedule=Every(100), eval_every=10)
    trainer = make_trainer(_diverges_at_call(at=23), GLF(), **kw)
    glfpinn.record(trainer, tmp_path / "r", checkpoint_every=10)
    with pytest.raises(NonFiniteLossError), pytest.warns(RuntimeWarning, match="non-finite"):
        trainer.fit()
    state = torch.load(tmp_path / "r/checkpoint.pt", weights_only=True)
    assert state["step"] == 10 and all(
        bool(torch.isfinite(v).all()) for v in state["model"].values()
    )
    del trainer
    healthy = FaultyPoisson1D(lambda call, r: r)  # the same problem, as a checkpoint requires
    resumed = glfpinn.train(healthy, GLF(), out=tmp_path / "r", mode="resume", **kw)
    assert resumed.steps == 40 and resumed.final_loss == resumed.final_loss  # finite, finished


@pytest.fixture(scope="module")
def interrupted(tmp_path_factory):
    """A run killed after its step-20 checkpoint (result.json gone), and the same run finished."""
    root = tmp_path_factory.mktemp("damaged")
    args = [*ARGS, "--steps", "40"]
    assert main(["train", *args, "--out", str(root / "full")]) == 0
    assert main(["train", *args, "--out", str(root / "cut")]) == 0
    (root / "cut/result.json").unlink()
    state = torch.load(root / "cut/checkpoint.pt", weights_only=True)
    assert state["step"] == 40  # the final checkpoint: rewind it to step 20 by rerunning
    shutil.rmtree(root / "cut")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = glfpinn.runs.build_trainer(
            glfpinn.config.RunConfig.from_dict(glfpinn.runs.read_config(root / "full").to_dict())
        )
    glfpinn.record(trainer, root / "cut", checkpoint_every=20).fit(until=20)
    del trainer
    return root


DAMAGE = st.sampled_from(["truncate", "garbage", "wrong-json", "delete"])
FILES = st.sampled_from(["config.yaml", "metrics.jsonl", "result.json", "checkpoint.pt"])


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(file=FILES, damage=DAMAGE, fraction=st.floats(0, 1), seed=st.integers(0, 2**16))
def test_resume_over_a_damaged_run_ends_in_a_clean_error_or_the_right_result(
    interrupted, tmp_path_factory, capsys, file, damage, fraction, seed
):
    run = tmp_path_factory.mktemp("case") / "run"
    shutil.copytree(interrupted / "cut", run, ignore=shutil.ignore_patterns(".lock"))
    path = run / file
    data = path.read_bytes() if path.exists() else b""
    if damage == "truncate":
        path.write_bytes(data[: int(len(data) * fraction)])
    elif damage == "garbage":
        path.write_bytes(
            torch.randint(0, 256, (64,), generator=torch.Generator().manual_seed(seed))
            .to(torch.uint8)
            .numpy()
            .tobytes()
        )
    elif damage == "wrong-json":
        path.write_text(["[]", '"x"', "1", "null", "{}", "[1, 2]\n{}\n"][seed % 6])
    else:
        path.unlink(missing_ok=True)
    capsys.readouterr()
    code = main(["train", "--resume", "--out", str(run), "--quiet"])
    err = capsys.readouterr().err
    assert code in (0, 2), err
    if code == 2:
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
        return
    full = json.loads((interrupted / "full/result.json").read_text())
    result = json.loads((run / "result.json").read_text())
    assert result["steps"] == 40 and result["final_loss"] == full["final_loss"]


def test_resume_may_extend_a_run_and_refuses_other_changes(tmp_path):
    from glfpinn.config import RunConfig
    from glfpinn.runs import run

    base = {"problem": "burgers", "n_points": 100, "hidden": [8, 8], "eval_every": 10}
    base.update(resample_every=10, checkpoint_every=10)
    straight = run(RunConfig.from_dict({**base, "steps": 30}), tmp_path / "straight")
    run(RunConfig.from_dict({**base, "steps": 20}), tmp_path / "r")
    with pytest.raises(ValueError, match=r"made with lr=None; resume it without changing lr"):
        run(None, tmp_path / "r", mode="resume", changes={"steps": 30, "lr": 0.1})
    extended = run(None, tmp_path / "r", mode="resume", changes={"steps": 30})
    assert extended["steps"] == 30 and extended["final_loss"] == straight["final_loss"]
    assert "steps: 30" in (tmp_path / "r/config.yaml").read_text()
    lines = [json.loads(x) for x in (tmp_path / "r/metrics.jsonl").read_text().splitlines()]
    assert {"event": "resume", "step": 20, "changed": {"steps": 30}} in lines
    assert [x["step"] for x in lines if x["event"] == "eval"] == [10, 20, 30]


class _Killed(BaseException):
    """Stands for SIGKILL: nothing after it runs, no handler sees it as an error to recover."""


def test_a_kill_right_after_a_checkpoint_loses_no_evaluation(tmp_path, monkeypatch):
    """Step 20 is both evaluated and checkpointed. Killed just after its checkpoint is written,
    the run must already have logged that evaluation: a resume goes on from step 20 and never
    evaluates it again."""
    from glfpinn.runs import RunDirectory

    kw = dict(steps=30, lr=1e-2, schedule=Every(10), eval_every=10)
    save = RunDirectory.save_checkpoint

    def save_then_die(self, trainer):
        save(self, trainer)
        if trainer.state.step == 20:
            raise _Killed

    monkeypatch.setattr(RunDirectory, "save_checkpoint", save_then_die)
    trainer = make_trainer(Poisson1D(), GLF(), **kw)
    glfpinn.record(trainer, tmp_path / "r", checkpoint_every=10)
    with pytest.raises(_Killed):
        trainer.fit()
    del trainer
    monkeypatch.setattr(RunDirectory, "save_checkpoint", save)
    glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", mode="resume", **kw)
    lines = [json.loads(x) for x in (tmp_path / "r/metrics.jsonl").read_text().splitlines()]
    assert [x["step"] for x in lines if x["event"] == "eval"] == [10, 20, 30]
