"""The measurement scripts whose figures docs/results.md quotes still run, at a tiny budget, and
print what they say they print."""

import csv
import importlib.util
import io
import math
import sys
from pathlib import Path

import pytest
import torch

from glfpinn import Scorer
from glfpinn.bench import load_bench, run_bench
from glfpinn.runs import load_run

SCRIPTS = Path(__file__).parents[1] / "scripts"

BENCH = """
profile: scripts
base: {steps: 20, eval_every: 10, n_points: 64, hidden: [8, 8], resample_every: 10}
experiments:
  main:
    problems: {laplace: {problem: laplace}}
    samplers: {uniform: {sampler: uniform}, glf-robust: {sampler: glf-robust}}
    seeds: [0, 1]
"""


def _main(name: str, argv: list[str], capsys, monkeypatch) -> list[dict[str, str]]:
    """Run ``scripts/<name>.py``'s main with ``argv``; its CSV output as rows."""
    spec = importlib.util.spec_from_file_location(name, SCRIPTS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    monkeypatch.setattr(sys, "argv", [name, *argv])
    assert module.main() == 0
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_residual_gap_is_the_ratio_of_mean_squares_off_and_on_the_set(
    tmp_path, capsys, monkeypatch
):
    (tmp_path / "bench.yaml").write_text(BENCH)
    out = tmp_path / "runs"
    run_bench(load_bench(tmp_path / "bench.yaml"), out, workers=1, log=lambda s: None)
    rows = _main(
        "residual_gap", [str(out), "--samplers", "uniform", "--fresh", "500"], capsys, monkeypatch
    )
    assert [(r["sampler"], r["seed"]) for r in rows] == [("uniform", "0"), ("uniform", "1")]
    for row in rows:
        run = load_run(out / "main" / "laplace" / "uniform" / f"seed{row['seed']}")
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
