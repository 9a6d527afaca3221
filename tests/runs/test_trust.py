"""A run directory from someone else is data: nothing it names by import path is imported
without --trust (trust=True) or the part given explicitly; nothing outside it is written
through a link or deleted by --overwrite; a checkpoint of another run, or a damaged one, is
refused, naming what disagrees; and a run trained from Python reopens from another folder."""

import json
import os
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch

import glfpinn
from glfpinn import GLF, problems
from glfpinn.cli import main
from glfpinn.runs import fingerprint as fp
from glfpinn.runs import load_run, plot_run
from glfpinn.runs.lock import RunLock
from tests.helpers import MY_PDE

#: A tiny run of a built-in problem, eager: each command here trains or reopens in seconds.
TINY = dict(steps=20, n_points=64, hidden=(8, 8), eval_every=10, compile=False)
CLI_TINY = ["--n-points", "64", "--hidden", "8,8", "--eval-every", "10", "--no-compile"]
CLI_TINY += ["--quiet"]

#: A user's problem file whose import leaves a mark next to it: whether its code ran.
MARKING_PDE = MY_PDE + textwrap.dedent(
    """
    import pathlib

    pathlib.Path(__file__).with_name("imported").touch()
    """
)

SRC = os.path.join(os.path.dirname(glfpinn.__file__), os.pardir)


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """A finished 20-step burgers run of the command line (built-in names only), copied by
    each test."""
    out = tmp_path_factory.mktemp("finished") / "run"
    args = ["--problem", "burgers", "--steps", "20", "--checkpoint-every", "10", *CLI_TINY]
    assert main(["train", *args, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_dir(finished, tmp_path):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    return out


def _glfpinn(*args, cwd):
    """The command line in a process of its own, importing this checkout."""
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC)}
    return subprocess.run(
        [sys.executable, "-m", "glfpinn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        timeout=300,
    )


def _one_line(err: str, *fragments: str) -> None:
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


def _edit_config(path, **changes):
    import yaml

    data = yaml.safe_load((path / "config.yaml").read_text())
    data.update(changes)
    (path / "config.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    return data


def _forge_fingerprint(path, config):
    """The checkpoint resealed to agree with ``config``: what someone forging a run directory
    can always do (a fingerprint is no signature), so trust cannot rest on it."""
    state = torch.load(path / "checkpoint.pt", weights_only=True)
    state, record = fp.unseal(state, "x")
    torch.save(fp.seal(state, fp.fingerprint(config), record["parts"]), path / "checkpoint.pt")


# ------------------------------------------------------------------ 1. loading is data only
def test_a_problem_file_named_by_a_run_is_not_imported_without_trust(tmp_path):
    """Real processes: the problem's file marks its own import. predict, plot and --resume
    refuse it in one line naming the path and --trust, and the file never runs; with --trust,
    or with the problem named on the command line, they work."""
    (tmp_path / "mine.py").write_text(MARKING_PDE)
    train = ["train", "--problem", "./mine.py:MyPDE", "--steps", "20", *CLI_TINY, "--out", "r"]
    assert _glfpinn(*train, cwd=tmp_path).returncode == 0
    (tmp_path / "imported").unlink()
    np_points = tmp_path / "x.npy"
    np.save(np_points, np.full((3, 1), 0.5))  # MyPDE is 1-D
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    run = str(tmp_path / "r")
    path = f"{tmp_path / 'mine.py'}:MyPDE"
    commands = [
        ["predict", run, "--points", str(np_points), "--out", "u.npy"],
        ["plot", run],
        ["train", "--resume", "--set", "steps=30", "--quiet", "--out", run],
    ]
    for command in commands:
        proc = _glfpinn(*command, cwd=elsewhere)
        assert proc.returncode == 2, proc.stderr
        _one_line(proc.stderr, f"problem {path!r}", "--trust")
        assert not (tmp_path / "imported").exists(), command
    assert json.loads((tmp_path / "r/result.json").read_text())["steps"] == 20
    # named on the command line, the problem is the user's own choice
    proc = _glfpinn(*commands[0], "--problem", path, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "imported").exists()
    assert _glfpinn(*commands[0], "--trust", cwd=elsewhere).returncode == 0


def test_a_hostile_sampler_in_config_yaml_runs_no_command(run_dir, tmp_path, capsys):
    """The attack the issue found: ``sampler: os:system`` with a shell command; even with the
    checkpoint forged to agree, neither predict nor resume calls it."""
    marker = tmp_path / "PWNED"
    config = _edit_config(
        run_dir, sampler="os:system", sampler_params={"command": f"touch {marker}"}
    )
    _forge_fingerprint(run_dir, config)
    x = tmp_path / "x.npy"
    np.save(x, np.full((2, 2), 0.5))
    u = str(tmp_path / "u.npy")
    assert main(["predict", str(run_dir), "--points", str(x), "--out", u]) == 0
    assert not marker.exists()  # predict builds no sampler at all
    # finished: its stored result, nothing built
    assert main(["train", "--resume", "--quiet", "--out", str(run_dir)]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--quiet", "--out", str(run_dir), "--set", "steps=30"]) == 2
    _one_line(capsys.readouterr().err, "sampler 'os:system'", "--trust")
    assert not marker.exists()
    with pytest.raises(ValueError, match=r"sampler 'os:system' in the run directory .*trust=True"):
        glfpinn.runs.run(None, run_dir, mode="resume", changes={"steps": 30})
    assert not marker.exists()


def test_load_run_builds_built_in_names_without_trust_and_code_only_with_it(tmp_path):
    (tmp_path / "mine.py").write_text(MY_PDE)
    sys.path.insert(0, str(tmp_path))
    try:
        import mine  # a user's module, from a folder of their own
    finally:
        sys.path.remove(str(tmp_path))
    out = tmp_path / "r"
    glfpinn.train(mine.MyPDE(), GLF(), out=out, **TINY)
    del sys.modules["mine"]
    recorded = f"problem: {tmp_path / 'mine.py'}:MyPDE"  # #25.4: its file, not mine:MyPDE
    assert recorded in (out / "config.yaml").read_text()
    with pytest.raises(
        ValueError, match=r"problem '.*mine\.py:MyPDE' in the run directory .*trust=True"
    ):
        load_run(out)
    assert load_run(out, problem=mine.MyPDE()).result["steps"] == 20
    assert load_run(out, trust=True).problem.name == "my-pde"


# ------------------------------------------------------- 2. nothing outside the run is touched
@pytest.mark.parametrize("mode", ["new", "--resume", "--overwrite"])
def test_a_lock_that_is_a_link_is_refused_and_its_target_kept(run_dir, tmp_path, mode):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    target = run_dir if mode != "new" else tmp_path / "fresh"
    target.mkdir(exist_ok=True)
    (target / ".lock").unlink(missing_ok=True)
    (target / ".lock").symlink_to(victim)
    args = ["train", "--problem", "burgers", "--steps", "20", *CLI_TINY, "--out", str(target)]
    extra = {"new": [], "--resume": ["--resume", "--set", "steps=30"]}.get(mode, [mode])
    code = main([*args, *extra])  # a resume that trains (a finished run is only read)
    assert code == 2 and victim.read_text() == "precious\n"


def test_a_lock_with_a_second_name_is_refused(tmp_path, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (tmp_path / "run").mkdir()
    os.link(victim, tmp_path / "run/.lock")
    with pytest.raises(ValueError, match="has another name"):
        RunLock(tmp_path / "run").acquire()
    assert victim.read_text() == "precious\n"


def test_overwrite_refuses_the_working_folder_and_folders_that_are_no_run(
    tmp_path, monkeypatch, capsys
):
    project = tmp_path / "project"
    project.mkdir()
    (project / "config.yaml").write_text("steps: 20\n")  # a user's own run config
    (project / "result.json").write_text('{"steps": 1}\n')
    (project / "notes.txt").write_text("mine\n")
    monkeypatch.chdir(project)
    before = {p.name: p.read_bytes() for p in project.iterdir()}
    args = ["train", "--problem", "burgers", "--steps", "20", *CLI_TINY, "--overwrite"]
    for out, fragment in [
        ("", "is empty (an unset variable?)"),
        (".", "would delete the working folder"),
        (str(project), "would delete the working folder"),
        ("..", "would delete the working folder"),
    ]:
        assert main([*args, "--out", out]) == 2
        _one_line(capsys.readouterr().err, fragment)
    monkeypatch.chdir(tmp_path)
    assert main([*args, "--out", str(project)]) == 2
    _one_line(capsys.readouterr().err, "holds 'notes.txt'", "not a run directory")
    assert {p.name: p.read_bytes() for p in project.iterdir()} == before  # no .lock either
    loose = tmp_path / "loose"
    loose.mkdir()
    (loose / "config.yaml").write_text("steps: 20\n")
    assert main([*args, "--out", str(loose)]) == 2  # a config.yaml, but nothing a run writes
    _one_line(capsys.readouterr().err, "is not a glfpinn run")
    assert [p.name for p in loose.iterdir()] == ["config.yaml"]


def test_overwrite_replaces_the_whole_previous_run_snapshots_and_plots_included(tmp_path):
    out = tmp_path / "r"
    args = ["train", "--problem", "burgers", "--steps", "20", *CLI_TINY, "--out", str(out)]
    assert main([*args, "--set", "snapshot_every=10"]) == 0
    plot_run(out)
    assert (out / "snapshots").is_dir() and (out / "plots").is_dir()
    assert main([*args, "--overwrite"]) == 0
    assert not (out / "snapshots").exists() and not (out / "plots").exists()


def test_plots_never_write_through_a_link(run_dir, tmp_path):
    victims = [tmp_path / "a.txt", tmp_path / "b.txt"]
    for victim in victims:
        victim.write_text("precious\n")
    plots = run_dir / "plots"
    plots.mkdir()
    (plots / "solution.tmp.png").symlink_to(victims[0])  # the old fixed temporary name
    (plots / "curves.png").symlink_to(victims[1])
    paths = plot_run(run_dir)
    assert all(v.read_text() == "precious\n" for v in victims)
    assert not (plots / "curves.png").is_symlink() and (plots / "curves.png") in paths
    shutil.rmtree(plots)
    plots.symlink_to(tmp_path, target_is_directory=True)
    with pytest.raises(ValueError, match="is a symbolic link"):
        plot_run(run_dir)


@pytest.mark.parametrize("name", ["metrics.jsonl", "snapshots", "result.json"])
def test_a_resume_refuses_a_run_directory_holding_links(run_dir, tmp_path, name, capsys):
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    target = run_dir / name
    if target.exists():
        target.unlink()
    target.symlink_to(victim)
    assert main(["train", "--resume", "--set", "steps=30", "--quiet", "--out", str(run_dir)]) == 2
    _one_line(capsys.readouterr().err, "is a symbolic link")
    assert victim.read_text() == "precious\n"


def test_the_write_probe_never_follows_a_link(run_dir, tmp_path):
    """The probe once had a fixed name: a link planted there was truncated."""
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (run_dir / ".glfpinn-write-test").symlink_to(victim)
    assert glfpinn.runs.run(None, run_dir, mode="resume", changes={"steps": 30})["steps"] == 30
    assert victim.read_text() == "precious\n"


# --------------------------------------------------------------- 3. runs are fingerprinted
@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"sampler": "rad"}, "sampler"),
        ({"n_points": 80}, "n_points"),
        ({"seed": 3}, "seed"),
        ({"problem_params": {"n_nodes": 100}}, "problem_params"),
    ],
)
def test_a_hand_edited_config_is_refused_naming_the_field(run_dir, tmp_path, capsys, change, field):
    _edit_config(run_dir, **change)
    np.save(tmp_path / "x.npy", np.full((2, 2), 0.5))
    predict = ["predict", str(run_dir), "--points", str(tmp_path / "x.npy"), "--out", "u.npy"]
    resume = ["train", "--resume", "--set", "steps=30", "--quiet", "--out", str(run_dir)]
    for command in (predict, ["plot", str(run_dir)], resume):
        assert main(command) == 2, command
        _one_line(capsys.readouterr().err, f"its {field} differs")
    assert json.loads((run_dir / "result.json").read_text())["steps"] == 20


def test_another_runs_checkpoint_is_refused(run_dir, tmp_path, capsys):
    other = tmp_path / "other"
    glfpinn.train(problems.get("allen-cahn"), GLF(), out=other, **TINY)
    shutil.copy(other / "checkpoint.pt", run_dir / "checkpoint.pt")
    with pytest.raises(ValueError, match="its problem differs"):
        load_run(run_dir)
    with pytest.raises(ValueError, match="its problem differs"):
        glfpinn.train(
            problems.get("burgers"), GLF(), out=run_dir, mode="resume", **{**TINY, "steps": 30}
        )


def test_one_nan_in_a_weight_is_refused_and_the_result_kept(run_dir, tmp_path, capsys):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    weight = next(v for k, v in state["model"].items() if k.endswith("weight"))
    weight.view(-1)[0] = float("nan")
    torch.save(state, run_dir / "checkpoint.pt")
    result = (run_dir / "result.json").read_bytes()
    np.save(tmp_path / "x.npy", np.full((2, 2), 0.5))
    u = tmp_path / "u.npy"
    assert (
        main(["predict", str(run_dir), "--points", str(tmp_path / "x.npy"), "--out", str(u)]) == 2
    )
    _one_line(capsys.readouterr().err, "is damaged", "checksum")
    assert not u.exists()
    assert main(["train", "--resume", "--set", "steps=40", "--quiet", "--out", str(run_dir)]) == 2
    _one_line(capsys.readouterr().err, "is damaged")
    assert (run_dir / "result.json").read_bytes() == result


def test_steps_below_the_checkpoints_step_are_refused(run_dir, capsys):
    config, result = (run_dir / "config.yaml").read_bytes(), (run_dir / "result.json").read_bytes()
    assert main(["train", "--resume", "--set", "steps=10", "--quiet", "--out", str(run_dir)]) == 2
    _one_line(capsys.readouterr().err, "at step 20, past the 10 steps")
    assert (run_dir / "config.yaml").read_bytes() == config
    assert (run_dir / "result.json").read_bytes() == result


class _Killed(BaseException):
    """Stands for SIGKILL in the middle of a run."""


def test_an_extension_that_dies_keeps_the_finished_result(run_dir, monkeypatch):
    from glfpinn.runs import RunDirectory

    finished = json.loads((run_dir / "result.json").read_text())
    note = RunDirectory.on_validation_end

    def die_at_30(self, trainer, metrics):
        note(self, trainer, metrics)
        if trainer.state.step == 30:
            raise _Killed

    monkeypatch.setattr(RunDirectory, "on_validation_end", die_at_30)
    with pytest.raises(_Killed):
        glfpinn.runs.run(None, run_dir, mode="resume", changes={"steps": 40})
    monkeypatch.setattr(RunDirectory, "on_validation_end", note)
    assert json.loads((run_dir / "result.json").read_text()) == finished  # still there
    assert load_run(run_dir).result is None  # but it is not the result of the 40-step plan
    resumed = glfpinn.runs.run(None, run_dir, mode="resume")  # continues: not "finished"
    assert resumed["steps"] == 40
    assert json.loads((run_dir / "result.json").read_text())["steps"] == 40


# ------------------------------------------------------- #25.4: runs that reopen anywhere
HELM = MY_PDE + textwrap.dedent(
    """
    def make(problem, width=8):
        return torch.nn.Sequential(
            torch.nn.Linear(problem.dim, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)
        )
    """
)

TRAIN_SCRIPT = textwrap.dedent(
    """
    import functools, sys
    import glfpinn
    import helm

    model = functools.partial(helm.make, width=6)
    if sys.argv[1] == "instance":
        model = helm.make(helm.MyPDE())
    glfpinn.train(helm.MyPDE(), glfpinn.GLF(), model=model, steps=20, n_points=64,
                  eval_every=10, compile=False, out=sys.argv[2])
    """
)


def test_a_run_trained_from_python_plots_and_predicts_from_another_folder(tmp_path):
    """Trained by a script next to its module (``import helm``), reopened by the command line
    from another folder: the problem recorded by its file, the model factory with its
    arguments; a network given as an instance needs --model."""
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "helm.py").write_text(HELM)
    (project / "train.py").write_text(TRAIN_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.path.abspath(SRC)}
    for kind in ("factory", "instance"):
        proc = subprocess.run(
            [sys.executable, "train.py", kind, kind],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
    config = (project / "factory/config.yaml").read_text()
    assert f"problem: {project / 'helm.py'}:MyPDE" in config
    assert f"model: {project / 'helm.py'}:make" in config and "width: 6" in config
    np.save(elsewhere / "x.npy", np.full((3, 1), 0.5))

    proc = _glfpinn("plot", str(project / "factory"), "--trust", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (project / "factory/plots/solution.png").exists()
    predict = ["predict", str(project / "factory"), "--points", "x.npy", "--out", "u.npy"]
    assert _glfpinn(*predict, "--trust", cwd=elsewhere).returncode == 0
    assert np.load(elsewhere / "u.npy").shape == (3,)

    proc = _glfpinn("plot", str(project / "instance"), "--trust", cwd=elsewhere)
    assert proc.returncode == 2
    _one_line(proc.stderr, "pass model=")
    model = f"{project / 'helm.py'}:make"
    proc = _glfpinn("plot", str(project / "instance"), "--trust", "--model", model, cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert (project / "instance/plots/solution.png").exists()
