"""The measurement scripts whose figures docs/results.md quotes still run, at a tiny budget, and
print what they say they print."""

import csv
import importlib.util
import io
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glfpinn import Scorer, problems
from glfpinn.bench import load_bench, run_bench, write_report
from glfpinn.runs import load_run

SCRIPTS = Path(__file__).parents[1] / "scripts"

BENCH = """
profile: scripts
base: {steps: 20, eval_every: 10, n_points: 64, hidden: [8, 8], resample_every: 10}
experiments:
  main:
    problems:
      laplace: {problem: laplace}
      heat-5d: {problem: heat-5d}
      burgers1d-c: {problem: burgers1d-c}
    samplers: {uniform: {sampler: uniform}, glf-robust: {sampler: glf-robust}}
    seeds: [0, 1]
"""


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    """A tiny finished bench: Laplace, Heat-ND and Burgers1d-C, a fixed and a resampled set, 2
    seeds."""
    folder = tmp_path_factory.mktemp("bench")
    (folder / "bench.yaml").write_text(BENCH)
    run_bench(load_bench(folder / "bench.yaml"), folder / "runs", workers=1, log=lambda s: None)
    return folder / "runs"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _main(name: str, argv: list[str], capsys, monkeypatch) -> list[dict[str, str]]:
    """Run ``scripts/<name>.py``'s main with ``argv``; its CSV output as rows."""
    module = _load(name)
    monkeypatch.setattr(sys, "argv", [name, *argv])
    assert module.main() == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_residual_gap_is_the_ratio_of_mean_squares_off_and_on_the_set(bench, capsys, monkeypatch):
    argv = [str(bench), "--samplers", "uniform", "--fresh", "500"]
    rows = _main("residual_gap", argv, capsys, monkeypatch)
    assert sorted((r["problem"], r["sampler"], r["seed"]) for r in rows) == [
        (problem, "uniform", seed)
        for problem in ("burgers1d-c", "heat-5d", "laplace")
        for seed in ("0", "1")
    ]
    for row in rows:
        run = load_run(bench / "main" / row["problem"] / "uniform" / f"seed{row['seed']}")
        # the same ratio by another path: the trainer's chunked scorer
        score = Scorer(lambda x, run=run: run.problem.residual(run.model, x))
        fresh = run.problem.domain.sample(
            500, torch.Generator().manual_seed(0), dtype=run.points.dtype
        )
        gap = float((score(fresh) ** 2).mean() / (score(run.points) ** 2).mean())
        assert float(row["gap"]) == pytest.approx(gap, rel=5e-3)  # printed to 3 digits
        assert float(row["l2_relative_error"]) == float(f"{run.result['l2_relative_error']:.3g}")


def test_the_plateau_script_prints_its_terms_and_error_every_tenth_of_the_run(capsys, monkeypatch):
    argv = [
        "--steps",
        "20",
        "--width",
        "8",
        "--depth",
        "1",
        "--points",
        "64",
        "--edge-points",
        "32",
    ]
    rows = _main("poisson2d_c_plateau", argv, capsys, monkeypatch)
    assert [int(r["step"]) for r in rows] == list(range(0, 21, 2))
    for row in rows:
        values = [float(row[k]) for k in ("residual", "outer", "holes", "l2_relative_error")]
        assert all(math.isfinite(v) and v >= 0 for v in values)
    # u = 1 on the outer edge is the larger misfit of a network that starts near 0
    assert float(rows[0]["outer"]) > float(rows[0]["holes"])


def test_pinnacles_first_heat_nd_grid_lies_mostly_outside_the_ball(bench, capsys, monkeypatch):
    module = _load("heatnd_box_grid")
    grid = module.box_grid()
    inside = (grid[:, :5] ** 2).sum(axis=1) <= 1
    assert grid.shape == (4**6, 6) and int(inside.sum()) == 128  # the corners' 2^5 x 4 times
    u = problems.get("heat-5d").solution(grid)
    assert float((u[inside] ** 2).sum() / (u**2).sum()) < 0.003
    rows = _main("heatnd_box_grid", [str(bench)], capsys, monkeypatch)
    assert sorted((r["sampler"], r["seed"]) for r in rows) == [
        ("glf-robust", "0"),
        ("glf-robust", "1"),
        ("uniform", "0"),
        ("uniform", "1"),
    ]
    for row in rows:
        run = load_run(bench / "main" / "heat-5d" / row["sampler"] / f"seed{row['seed']}")
        predicted = run.predict(torch.as_tensor(grid, dtype=torch.float32)).double().reshape(-1)
        exact = torch.exp(
            (torch.as_tensor(grid[:, :5]) ** 2).sum(1) / 2 + torch.as_tensor(grid[:, 5])
        )
        l2 = float((predicted - exact).norm() / exact.norm())
        assert float(row["l2_box_grid"]) == pytest.approx(l2, rel=1e-3)
        assert float(row["l2_in_ball"]) == pytest.approx(run.result["l2_relative_error"], rel=1e-3)


def test_burgers1d_c_is_scored_against_the_file_and_the_exact_solution(bench, capsys, monkeypatch):
    rows = _main("burgers1d_c_exact", [str(bench)], capsys, monkeypatch)
    assert sorted((r["sampler"], r["seed"]) for r in rows) == [
        (sampler, seed) for sampler in ("glf-robust", "uniform") for seed in ("0", "1")
    ]
    points, in_file = problems.get("burgers1d-c").test_set()
    exact = problems.get("burgers").solution(points)
    for row in rows:
        run = load_run(bench / "main" / "burgers1d-c" / row["sampler"] / f"seed{row['seed']}")
        assert float(row["l2_file"]) == pytest.approx(run.result["l2_relative_error"], rel=1e-3)
        # the two errors at the file's points differ by no more than the file's own error
        # (triangle inequality on the unnormalised norms; 1e-3 for the printed digits)
        misfit_file = float(row["l2_file"]) * np.linalg.norm(in_file)
        misfit_exact = float(row["l2_exact_at_file_points"]) * np.linalg.norm(exact)
        bound = np.linalg.norm(in_file - exact)
        assert abs(misfit_file - misfit_exact) <= bound + 1e-3 * max(misfit_file, misfit_exact)
        assert 0 < float(row["l2_exact_on_grid"]) < 10


def test_design_rounds_counts_the_problems_the_report_finds_no_loss_on(
    bench, tmp_path, capsys, monkeypatch
):
    """Its verdicts are the report's: glf-robust wins or ties against the fixed set on the
    problems where `glfpinn report --reference glf-robust` writes no "lose" at equal steps, and
    its ratios are the report's medians divided."""
    copy = tmp_path / "runs"
    shutil.copytree(bench, copy)
    write_report(copy, reference="glf-robust")
    paired = [
        r
        for r in csv.DictReader((copy / "paired.csv").open())
        if r["budget"] == "steps" and r["baseline"] == "uniform"
    ]
    argv = [str(bench), "--baselines", "uniform", "--ratio-to", "uniform"]
    (row,) = _main("design_rounds", argv, capsys, monkeypatch)
    assert row["sampler"] == "glf-robust" and int(row["problems"]) == len(paired) == 3
    assert int(row["win_or_tie_all"]) == sum(r["verdict"] != "lose" for r in paired)
    ratios = [float(r["reference_median"]) / float(r["baseline_median"]) for r in paired]
    assert float(row["worst_ratio"]) == float(f"{max(ratios):.3g}")
    geomean = math.exp(sum(math.log(r) for r in ratios) / 3)
    assert float(row["geomean_ratio"]) == float(f"{geomean:.3g}")


def test_design_rounds_refuses_a_baseline_the_bench_did_not_run(bench, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["design_rounds", str(bench), "--baselines", "rad"])
    with pytest.raises(SystemExit) as exit_:
        _load("design_rounds").main()
    assert exit_.value.code == 2
    assert "no sampler rad, uniform-resample in" in capsys.readouterr().err
