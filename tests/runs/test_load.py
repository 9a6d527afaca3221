import gc
import json

import numpy as np
import pytest
import torch

import glfpinn
from glfpinn import GLF, Every, load_run
from glfpinn.cli import main
from glfpinn.training import make_trainer
from tests.helpers import MY_PDE, Poisson1D

FILES = {"config.yaml", "metrics.jsonl", "result.json", "checkpoint.pt"}
KW = dict(steps=30, lr=1e-2, schedule=Every(10), eval_every=10)


def _files(path):
    return {p.name for p in path.iterdir() if p.is_file()}


def test_train_with_out_writes_what_the_command_line_writes(tmp_path):
    py, cli = tmp_path / "py", tmp_path / "cli"
    result = glfpinn.train(Poisson1D(), GLF(alpha=1e-3), out=py, **KW)
    args = ["--problem", "tests.helpers:Poisson1D", "--sampler", "glf"]
    args += ["--set", "sampler_params.alpha=1e-3"]
    args += ["--steps", "30", "--lr", "1e-2", "--resample-every", "10", "--eval-every", "10"]
    assert main(["train", *args, "--quiet", "--out", str(cli)]) == 0
    assert _files(py) == _files(cli) >= FILES
    stored_py = json.loads((py / "result.json").read_text())
    stored_cli = json.loads((cli / "result.json").read_text())
    assert stored_py["final_loss"] == stored_cli["final_loss"] == result.final_loss
    config = (py / "config.yaml").read_text()
    assert "problem: tests.helpers:Poisson1D" in config and "not recorded" not in config


def test_load_run_predicts_numpy_and_tensors_like_the_trained_network(tmp_path):
    trainer = make_trainer(Poisson1D(), GLF(alpha=1e-3), **KW)
    glfpinn.record(trainer, tmp_path / "r").fit()
    run = load_run(tmp_path / "r", trust=True)  # its problem is tests.helpers:Poisson1D
    x = np.linspace(0, 1, 7)[:, None]
    u = run.predict(x)
    assert isinstance(u, np.ndarray) and u.dtype == np.float64 and u.shape == (7,)
    with torch.no_grad():
        expected = trainer.model(torch.as_tensor(x, dtype=torch.float32)).reshape(-1)
    assert np.array_equal(u, expected.double().numpy())
    ut = run.predict(torch.as_tensor(x, dtype=torch.float32))
    assert isinstance(ut, torch.Tensor) and torch.equal(ut, expected)
    assert run.result["steps"] == 30 and [e["step"] for e in run.evaluations()] == [10, 20, 30]
    assert run.points.shape == (64, 1) and run.problem.name == "poisson-1d"
    with pytest.raises(ValueError, match=r"takes \(n, 1\)"):
        run.predict(np.zeros((3, 2)))


def test_a_model_instance_is_noted_and_given_back_to_load_run(tmp_path):
    def sequential():
        return torch.nn.Sequential(torch.nn.Linear(1, 6), torch.nn.Tanh(), torch.nn.Linear(6, 1))

    glfpinn.train(Poisson1D(), GLF(), model=sequential(), out=tmp_path / "r", **KW)
    assert (
        "# not recorded: model: a Sequential instance" in (tmp_path / "r/config.yaml").read_text()
    )
    with pytest.raises(ValueError, match="pass model= with the run's architecture"):
        load_run(tmp_path / "r", trust=True)
    run = load_run(tmp_path / "r", model=sequential(), trust=True)
    assert run.predict(np.array([[0.0], [1.0]])).tolist() == [0.0, 0.0]  # the hard constraint


def test_a_python_run_resumes_to_the_uninterrupted_result(tmp_path):
    full = glfpinn.train(Poisson1D(), GLF(alpha=1e-3), out=tmp_path / "full", **KW)
    first = make_trainer(Poisson1D(), GLF(alpha=1e-3), **KW)
    glfpinn.record(first, tmp_path / "cut", checkpoint_every=10).fit(until=20)
    assert not (tmp_path / "cut/result.json").exists()
    del first  # as if its process had been killed: the run directory's lock goes with it
    gc.collect()
    resumed = glfpinn.train(Poisson1D(), GLF(alpha=1e-3), out=tmp_path / "cut", mode="resume", **KW)
    assert resumed.final_loss == full.final_loss and resumed.steps == 30
    again = glfpinn.train(Poisson1D(), GLF(alpha=1e-3), out=tmp_path / "cut", mode="resume", **KW)
    assert again.final_loss == full.final_loss  # a finished run returns its stored result


def test_a_problem_in_a_file_trains_resumes_and_reloads_from_anywhere(tmp_path, monkeypatch):
    (tmp_path / "my_pde.py").write_text(MY_PDE)
    monkeypatch.chdir(tmp_path)
    args = ["--problem", "./my_pde.py:MyPDE", "--set", "problem_params.source_scale=2.0"]
    args += ["--steps", "20", "--eval-every", "10", "--quiet", "--out", "run"]
    assert main(["train", *args]) == 0
    config = (tmp_path / "run/config.yaml").read_text()
    assert f"problem: {tmp_path / 'my_pde.py'}:MyPDE" in config  # absolute: found from anywhere
    monkeypatch.chdir(tmp_path.parent)
    run = load_run(tmp_path / "run", trust=True)
    assert run.problem.source_scale == 2.0 and run.result["problem"] == "my-pde"
    assert main(["train", "--resume", "--trust", "--quiet", "--out", str(tmp_path / "run")]) == 0


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_predict_from_the_command_line(tmp_path, suffix):
    glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", **KW)
    x = np.linspace(0, 1, 5)[:, None]
    points, values = tmp_path / f"x{suffix}", tmp_path / f"u{suffix}"
    if suffix == ".npy":
        np.save(points, x)
    else:
        np.savetxt(points, x, delimiter=",")
    args = ["predict", str(tmp_path / "r"), "--points", str(points), "--out", str(values)]
    assert main([*args, "--trust"]) == 0
    u = np.load(values) if suffix == ".npy" else np.loadtxt(values, delimiter=",")
    expected = load_run(tmp_path / "r", trust=True).predict(x)
    np.testing.assert_allclose(u, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        (
            lambda d: np.save(d / "x.npy", np.zeros((3, 2))),
            "holds shape (3, 2); the run takes (n, 1)",
        ),
        (lambda d: (d / "x.txt").write_text("1\n"), "must end in .npy or .csv"),
        (lambda d: (d / "x.csv").write_text("a,b\n"), "is not a numeric .csv"),
    ],
)
def test_predict_refuses_bad_point_files_in_one_line(tmp_path, capsys, make, fragment):
    glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", **KW)
    make(tmp_path)
    name = next(p for p in tmp_path.iterdir() if p.name.startswith("x."))
    code = main(
        ["predict", str(tmp_path / "r"), "--points", str(name), "--out", "u.npy", "--trust"]
    )
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and len(err.strip().splitlines()) == 1


def test_loading_a_directory_without_a_run_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="holds no run"):
        load_run(tmp_path)


def test_run_result_is_the_train_result_train_returns_and_still_reads_like_a_dict(tmp_path):
    returned = glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", **KW)
    run = load_run(tmp_path / "r", trust=True)
    assert isinstance(run.result, glfpinn.TrainResult)
    assert run.result.to_dict() == json.loads((tmp_path / "r" / "result.json").read_text())
    assert run.result.final_loss == returned.final_loss
    # the dict-style reading of earlier versions keeps working
    assert run.result["steps"] == run.result.get("steps") == 30
    assert run.result.get("no_such_field", "absent") == "absent"
    with pytest.raises(KeyError):
        run.result["no_such_field"]
    # a resume of the finished run returns the same object type, from the same file
    again = glfpinn.train(Poisson1D(), GLF(), out=tmp_path / "r", mode="resume", **KW)
    assert again == run.result


def test_a_result_json_from_another_version_still_loads():
    """Keys a later version adds are left out; fields an older file lacks are None."""
    from glfpinn import TrainResult

    data = TrainResult.from_dict({"problem": "p", "steps": 3, "added_later": 1}).to_dict()
    assert data["problem"] == "p" and data["steps"] == 3 and "added_later" not in data
    assert data["wall_time_s"] is None and data["unknowns"] == {}
