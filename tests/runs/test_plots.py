"""glfpinn.runs.plots: the PNGs of one run directory, for a 2-D problem, a high-dimensional one
and a 1-D problem without a reference."""

import pytest

import glfpinn
from glfpinn.cli import main
from glfpinn.runs.plots import plot_run
from tests.helpers import Poisson1DNoReference

TINY = ["--sampler", "glf", "--steps", "20", "--eval-every", "10", "--hidden", "8,8", "--quiet"]
ALL = {"solution.png", "error.png", "residual.png", "points.png", "curves.png"}


def _check_pngs(paths, folder, names):
    assert {p.name for p in paths} == names
    assert {p.name for p in folder.iterdir()} == names  # no temp file left behind
    for path in paths:
        assert path.parent == folder
        data = path.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 5000, path.name


def test_a_2d_run_with_snapshots_gets_every_plot_in_its_plots_folder(tmp_path):
    run = tmp_path / "burgers"
    args = ["train", "--problem", "burgers", "--n-points", "100", "--out", str(run)]
    assert main([*args, *TINY, "--set", "snapshot_every=10"]) == 0
    _check_pngs(plot_run(run), run / "plots", ALL)


def test_a_high_dimensional_run_is_drawn_on_its_slice_into_the_given_folder(tmp_path):
    run, out = tmp_path / "rd", tmp_path / "figures"
    args = ["train", "--problem", "reaction-diffusion-20d", "--n-points", "64", "--out", str(run)]
    assert main([*args, *TINY, "--set", "problem_params.space_dim=3"]) == 0
    _check_pngs(plot_run(str(run), str(out)), out, ALL)
    assert not (run / "plots").exists()


def test_a_run_without_a_reference_has_no_error_plot(tmp_path):
    run = tmp_path / "poisson"
    problem = Poisson1DNoReference()
    glfpinn.train(problem, glfpinn.GLF(), steps=20, n_points=64, eval_every=10, out=run)
    _check_pngs(plot_run(run, problem=problem), run / "plots", ALL - {"error.png"})


def test_a_directory_without_a_run_is_refused(tmp_path):
    with pytest.raises(ValueError, match="holds no run"):
        plot_run(tmp_path)
