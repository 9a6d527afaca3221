"""A system of PDEs' run directory: config, predictions, plots, from Python and the CLI."""

import numpy as np
import pytest
import yaml

import glfpinn
from glfpinn import Every, load_run
from glfpinn.cli import main
from glfpinn.runs.plots import plot_run
from tests.helpers import ToySystem

KW = dict(steps=6, lr=1e-2, schedule=Every(3), eval_every=3, compile=False)


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("system") / "r"
    glfpinn.train(
        ToySystem(),
        glfpinn.samplers.registry.get("rad"),
        out=path,
        equation_weights={"v_x + u": 2.0},
        score="max",
        **KW,
    )
    return path


def test_the_run_records_the_system_keys_and_reloads_predicting_every_output(run_dir):
    config = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert config["equation_weights"] == {"v_x + u": 2.0} and config["score"] == "max"
    run = load_run(run_dir, trust=True)
    assert run.config.score == "max"
    x = np.random.default_rng(0).random((7, 2))
    u = run.predict(x)
    assert u.shape == (7, 2) and u.dtype == np.float64
    assert {"l2_relative_error_u", "l2_relative_error_v"} <= set(run.evaluations()[-1])


@pytest.mark.parametrize("suffix", [".npy", ".csv"])
def test_predict_on_the_command_line_writes_one_column_per_output(run_dir, tmp_path, suffix):
    x = np.random.default_rng(1).random((5, 2))
    points, values = tmp_path / f"x{suffix}", tmp_path / f"u{suffix}"
    np.save(points, x) if suffix == ".npy" else np.savetxt(points, x, delimiter=",")
    assert (
        main(["predict", str(run_dir), "--points", str(points), "--out", str(values), "--trust"])
        == 0
    )
    u = np.load(values) if suffix == ".npy" else np.loadtxt(values, delimiter=",")
    np.testing.assert_allclose(u, load_run(run_dir, trust=True).predict(x), atol=1e-15, rtol=0)


def test_plots_draw_each_output(run_dir, tmp_path):
    names = {p.name for p in plot_run(run_dir, out=tmp_path / "plots", trust=True)}
    assert {"solution_u.png", "solution_v.png", "error_u.png", "error_v.png"} <= names
    assert "residual.png" in names


def test_a_bad_score_on_the_command_line_exits_2(tmp_path, capsys):
    args = ["train", "--problem", "tests.helpers:ToySystem", "--sampler", "rad", "--steps", "2"]
    args += ["--set", "equation_weights.nope=2", "--quiet", "--out", str(tmp_path / "r")]
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert "no equation 'nope'" in err and len(err.splitlines()) == 1
