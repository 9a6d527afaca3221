"""The bench report's statistics on fabricated run directories with known numbers: paired
log-ratios, bootstrap intervals, sign tests, verdicts at equal steps and equal time, medians,
diagnostics, and the error-against-time plot."""

import csv
import json
import math

import numpy as np
import pytest

from glfpinn.bench import collect, write_plots, write_report
from glfpinn.bench.stats import (
    bootstrap_ci,
    diagnostics_summary,
    error_at_time,
    error_curve,
    paired_comparisons,
    sign_test,
)
from glfpinn.cli import main

SEEDS = range(5)
#: sampler -> final L2 error per seed. GLF is 10x better than rad on every seed, 2x worse
#: than r3 on every seed, and against uniform d = log10(glf / uniform) = +-0.5 or 0.
FINAL = {
    "glf": [1e-3] * 5,
    "rad": [1e-2] * 5,
    "r3": [5e-4] * 5,
    "uniform": [1e-3 / 10**0.5, 1e-3 * 10**0.5, 1e-3 / 10**0.5, 1e-3 * 10**0.5, 1e-3],
}
#: sampler -> (elapsed_s, l2) of its evaluations, the last one at its final error (every seed
#: alike): glf ends first, at 30 s.
TIMES = {"glf": [10, 20, 30], "rad": [10, 20, 40, 50], "r3": [15, 35], "uniform": [5, 31]}


def _cell(root, sampler, seed, evals, diagnostics=None):
    cell = root / "main" / "p" / sampler / f"seed{seed}"
    cell.mkdir(parents=True)
    final = evals[-1][1]
    result = {"l2_relative_error": final, "seed": seed, "steps": 100, "wall_time_s": 1.0}
    (cell / "result.json").write_text(json.dumps(result))
    lines = [
        {
            "event": "eval",
            "step": 10 * (i + 1),
            "loss": 1.0 / (i + 1),
            "elapsed_s": t,
            "l2_relative_error": err,
        }
        for i, (t, err) in enumerate(evals)
    ]
    lines += [{"event": "resample", "step": 5, "n_points": 100, **d} for d in diagnostics or []]
    (cell / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))


@pytest.fixture
def bench_dir(tmp_path):
    for sampler, finals in FINAL.items():
        for seed in SEEDS:
            times = TIMES[sampler]
            # errors before the last evaluation: 10x the final one per step back
            evals = [(t, finals[seed] * 10 ** (len(times) - 1 - i)) for i, t in enumerate(times)]
            diags = None
            if sampler == "glf":
                diags = [
                    {"h_rel_median": 0.01, "distinct_anchors": 40, "spearman_inherit": 0.5},
                    {"h_rel_median": 0.03 + seed * 0.01, "distinct_anchors": 60},
                ]
            _cell(tmp_path, sampler, seed, evals, diags)
    return tmp_path


def _by(paired, baseline, budget):
    return next(p for p in paired if p["baseline"] == baseline and p["budget"] == budget)


def test_paired_verdicts_at_equal_steps_match_the_hand_computed_log_ratios(bench_dir):
    paired = paired_comparisons(collect(bench_dir), "glf")
    rad = _by(paired, "rad", "steps")
    assert rad["pairs"] == 5 and rad["reference_better"] == 5
    assert rad["log_ratio_median"] == pytest.approx(-1.0, abs=1e-12)
    assert rad["ci_low"] == pytest.approx(-1.0) and rad["ci_high"] == pytest.approx(-1.0)
    assert rad["sign_p"] == pytest.approx(2 * 0.5**5)  # all 5 on one side
    assert rad["verdict"] == "win"
    r3 = _by(paired, "r3", "steps")  # d = log10(2) on every seed
    assert r3["log_ratio_mean"] == pytest.approx(math.log10(2)) and r3["verdict"] == "lose"
    uniform = _by(paired, "uniform", "steps")  # d = -0.5, +0.5, -0.5, +0.5, 0
    assert uniform["log_ratio_median"] == pytest.approx(0.0, abs=1e-12)
    assert uniform["sign_p"] == pytest.approx(1.0)  # 2 of the 4 nonzero below 0
    assert uniform["verdict"] == "tie" and uniform["ci_low"] < 0 < uniform["ci_high"]


def test_paired_verdict_at_equal_wall_clock_time(bench_dir):
    """glf vs rad: T = 30 s (glf's runs end there, rad's at 50 s). At 30 s glf has its final
    1e-3, rad its 20 s evaluation, two before its last, so 100x its final 1e-2:
    d = log10(1e-3 / 1) = -3."""
    paired = paired_comparisons(collect(bench_dir), "glf")
    rad = _by(paired, "rad", "time")
    assert rad["time_s"] == 30.0
    assert rad["log_ratio_median"] == pytest.approx(-3.0) and rad["verdict"] == "win"
    # glf vs uniform: T = 30 s, uniform's evaluation at 5 s (10x its final) counts there:
    # d = -1 - log10(uniform's final / 1e-3) = -1.5, -0.5, -1.5, -0.5, -1
    uniform = _by(paired, "uniform", "time")
    assert uniform["time_s"] == 30.0
    assert uniform["log_ratio_median"] == pytest.approx(-1.0) and uniform["verdict"] == "win"


def test_the_reference_label_is_a_parameter(bench_dir):
    paired = paired_comparisons(collect(bench_dir), "rad")
    glf = _by(paired, "glf", "steps")
    assert glf["reference"] == "rad" and glf["log_ratio_median"] == pytest.approx(1.0)
    assert glf["verdict"] == "lose"
    assert paired_comparisons(collect(bench_dir), "no-such-label") == []


def test_bootstrap_interval_matches_its_hand_computed_quantiles():
    """Values -1 x4 and +1: a resample's mean is (2k - 5) / 5 with k ~ Bin(5, 0.2) ones.
    P(k = 0) = 0.33 > 2.5%, so the lower bound is -1; P(k <= 2) = 0.942 and P(k <= 3) = 0.993
    bracket 97.5%, so the upper bound is the k = 3 mean, 0.2 (10,000 resamples put the 97.5%
    point ~14 standard deviations inside that block)."""
    lo, hi = bootstrap_ci(np.array([-1.0, -1.0, -1.0, -1.0, 1.0]))
    assert lo == pytest.approx(-1.0) and hi == pytest.approx(0.2)
    assert bootstrap_ci(np.array([-1.0, -1.0, -1.0, -1.0, 1.0]), seed=0) == (lo, hi)
    assert sign_test(np.array([-1.0, -1.0, -1.0, -1.0, 1.0])) == pytest.approx(2 * 6 / 32)


def test_error_at_time_takes_the_last_evaluation_before():
    records = [(10.0, 10, 0.1), (20.0, 20, 0.01)]
    assert math.isnan(error_at_time(records, 5.0))
    assert error_at_time(records, 10.0) == 0.1 and error_at_time(records, 19.9) == 0.1
    assert error_at_time(records, 25.0) == 0.01


def test_error_curve_spans_the_time_every_seed_covers():
    a = [(0.0, 0, 1.0), (10.0, 1, 0.1)]
    b = [(2.0, 0, 2.0), (8.0, 1, 0.2), (12.0, 2, 0.02)]
    times, errors = error_curve([a, b], points=5)  # from b's start to a's end
    assert times.tolist() == [2.0, 4.0, 6.0, 8.0, 10.0]
    assert errors.tolist() == [[1.0, 1.0, 1.0, 1.0, 0.1], [2.0, 2.0, 2.0, 0.2, 0.2]]


def test_diagnostics_summary_is_the_median_over_seeds_of_run_means(bench_dir):
    (glf,) = diagnostics_summary(collect(bench_dir))
    assert glf["sampler"] == "glf" and glf["seeds"] == 5 and glf["resamples"] == 2
    # run means of h_rel_median: (0.01 + 0.03 + 0.01 s) / 2 = 0.02 + 0.005 s; median s = 2
    assert glf["h_rel_median"] == pytest.approx(0.03)
    assert glf["distinct_anchor_fraction"] == pytest.approx(0.5)  # (40 + 60) / 2 / 100
    assert glf["spearman_inherit"] == pytest.approx(0.5)  # present in one resample per run
    assert math.isnan(glf["spearman_idw"])


def test_report_writes_medians_verdicts_and_diagnostics(bench_dir):
    md = write_report(bench_dir).read_text()
    assert "## Verdict: glf against each baseline" in md
    assert "| p | rad | steps | - | 5 | 1.000e-03 | 1.000e-02 | -1.000 |" in md
    assert "| p | rad | time | 30.0 | 5 |" in md and "**win**" in md and "**lose**" in md
    assert "## GLF diagnostics per resample" in md
    assert "| p | glf | 5 | 1.000e-03 |" in md  # the median column
    with open(bench_dir / "paired.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 * 2  # 3 baselines x 2 budgets
    with open(bench_dir / "results.csv", newline="") as fh:
        assert "l2_relative_error_median" in next(csv.reader(fh))
    assert (bench_dir / "diagnostics.csv").exists()


def test_cli_report_takes_the_reference_and_draws_time_curves(bench_dir, capsys):
    assert main(["report", str(bench_dir), "--reference", "rad"]) == 0
    md = (bench_dir / "results.md").read_text()
    assert "## Verdict: rad against each baseline" in md
    assert "--reference rad" in md
    assert (bench_dir / "plots" / "main_p_time.png").stat().st_size > 0


def test_write_plots_draws_the_time_curves(bench_dir):
    written = {p.name for p in write_plots(bench_dir)}
    assert "main_p_time.png" in written


def test_time_to_accuracy_is_the_first_crossing_median_over_the_seeds_that_reached_it(tmp_path):
    from glfpinn.bench.stats import time_to_accuracy, time_to_accuracy_summary

    # seed k crosses 1e-2 at its second evaluation (20 s, step 20) and 1e-3 only for k < 2,
    # at its third (30 + k s, step 30); no seed reaches 1e-4
    for seed in range(3):
        third = (30 + seed, 5e-4 if seed < 2 else 2e-3)
        _cell(tmp_path, "glf", seed, [(10, 0.1), (20, 5e-3), third])
    rows = collect(tmp_path)
    (entry,) = time_to_accuracy_summary(rows)
    assert (
        entry["reached_1e-02"] == 3 and entry["time_s_1e-02"] == 20 and entry["steps_1e-02"] == 20
    )
    assert entry["reached_1e-03"] == 2 and entry["time_s_1e-03"] == pytest.approx(30.5)
    assert entry["reached_1e-04"] == 0 and math.isnan(entry["time_s_1e-04"])
    assert time_to_accuracy([(1.0, 1, math.nan), (2.0, 2, 1e-3)], 1e-2) == (2.0, 2)
    text = write_report(tmp_path).read_text()
    assert "## Time to accuracy" in text
    assert "20 s / 20 steps (3/3)" in text and "not reached" in text
    assert (tmp_path / "time_to_accuracy.csv").exists()


def test_the_report_tables_an_inverse_problems_recovered_unknowns(tmp_path):
    """Three seeds recover nu = 0.9, 1.0 and 1.1 (x 0.01): mean 0.01, std 0.001, median 0.01."""
    for seed, nu in enumerate([0.009, 0.010, 0.011]):
        _cell(tmp_path, "glf", seed, [(1.0, 1e-3)])
        result = tmp_path / "main" / "p" / "glf" / f"seed{seed}" / "result.json"
        result.write_text(json.dumps({**json.loads(result.read_text()), "unknowns": {"nu": nu}}))
    text = write_report(tmp_path).read_text()
    rows = list(csv.DictReader((tmp_path / "unknowns.csv").open()))
    assert [(r["unknown"], r["seeds"]) for r in rows] == [("nu", "3")]
    assert float(rows[0]["mean"]) == pytest.approx(0.01)
    assert float(rows[0]["std"]) == pytest.approx(0.001)
    assert (float(rows[0]["min"]), float(rows[0]["max"])) == (0.009, 0.011)
    assert "## Recovered unknowns" in text and "| main | p | glf | nu | 3 | 0.01 ± 0.001 |" in text


def test_a_bench_without_unknowns_has_no_unknowns_table(bench_dir):
    assert "Recovered unknowns" not in write_report(bench_dir).read_text()
    assert not (bench_dir / "unknowns.csv").exists()
