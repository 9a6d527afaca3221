"""Paired statistics of a bench: does one sampler (GLF by default) beat each other one?

Seeds are paired: within one experiment x problem, seed k of the reference sampler and seed k of
a baseline share the network's initialisation and the first points' seed, so their difference
removes most of the seed-to-seed spread. For each pair the statistic is

    d_k = log10(L2 error of the reference / L2 error of the baseline)

(negative: the reference is better; -1: ten times better), at two budgets:

- **equal steps**: the final error of each run (its result.json);
- **equal wall-clock time**: the error of the last evaluation at or before T in each run's
  metrics.jsonl, with T the smallest final evaluation time among the runs of the two samplers
  compared (every seed of both): the latest time that all of them reached. A resumed run's
  ``elapsed_s`` adds up its sessions, so T is in training time, not calendar time.

Evidence per comparison: the median and mean of d, a percentile bootstrap confidence interval of
the mean of d (95%, 10,000 resamples from a seeded numpy Generator), and a two-sided sign test
(``scipy.stats.binomtest`` on the number of seeds with d < 0 among those with d != 0). The
verdict: **win** if the interval lies entirely below 0, **lose** if entirely above, **tie**
otherwise. With few seeds the interval is coarse: with 3 pairs it excludes 0 only when all
three differences have the same sign, and the sign test cannot go below p = 0.25 (5 pairs:
0.0625), so a win on 3 seeds means "better on every seed", not a significance level.

Pairs where either run has no finite error (diverged, or no reference solution) are left out
and counted in ``dropped``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from scipy import stats

from glfpinn._io import read_jsonl, read_limited
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD as COVERAGE_THRESHOLD

#: The most bytes of a run's config.yaml read back (one is a few hundred).
_MAX_CONFIG_BYTES = 1 << 20

__all__ = [
    "eval_records",
    "error_at_time",
    "bootstrap_ci",
    "sign_test",
    "verdict",
    "paired_comparisons",
    "error_curve",
    "diagnostics_summary",
    "coverage_summary",
    "time_to_accuracy",
    "time_to_accuracy_summary",
    "ACCURACY_TARGETS",
    "DIAGNOSTICS",
]

#: The L2 relative errors whose first crossing the report times (the accuracy frontier's).
ACCURACY_TARGETS = (1e-2, 1e-3, 1e-4)

#: GLF's per-resample diagnostics summarised by :func:`diagnostics_summary` (with
#: ``duplicate_fraction``, which the trainer logs for every sampler).
DIAGNOSTICS = (
    "alpha",
    "h_rel_median",
    "moved_fraction",
    "moved_spacing_fraction",
    "distinct_anchor_fraction",
    "duplicate_fraction",
    "ess",
    "nn_distance_rel",
    "spearman_inherit",
    "spearman_idw",
)


def eval_records(
    cell: str | Path, key: str = "l2_relative_error"
) -> list[tuple[float, int, float]]:
    """(elapsed_s, step, value of ``key``) of each evaluation in ``cell``/metrics.jsonl, by
    time: the L2 error by default (NaN without a reference), or ``residual_mean``."""
    path = Path(cell) / "metrics.jsonl"
    if not path.exists():
        return []
    out = []
    for rec in read_jsonl(path):
        if rec.get("event") == "eval" and rec.get("elapsed_s") is not None:
            value = rec.get(key)
            out.append((float(rec["elapsed_s"]), int(rec["step"]), _finite_or_nan(value)))
    return sorted(out, key=lambda r: r[0])


def error_at_time(records: list[tuple[float, int, float]], t: float) -> float:
    """The error of the last evaluation at or before time ``t`` (NaN if none)."""
    before = [r for r in records if r[0] <= t]
    return before[-1][2] if before else math.nan


def bootstrap_ci(
    values: np.ndarray, *, resamples: int = 10_000, level: float = 0.95, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values``, from ``np.random.default_rng(
    seed)``: the same numbers give the same interval on every run."""
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    means = values[rng.integers(0, values.size, size=(resamples, values.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0
    lo, hi = np.quantile(means, [tail, 1.0 - tail])
    return float(lo), float(hi)


def sign_test(values: np.ndarray) -> float:
    """Two-sided sign test p of ``values`` against 0; zeros are left out (p = 1 if none left)."""
    values = np.asarray(values, dtype=np.float64)
    nonzero = values[values != 0]
    if nonzero.size == 0:
        return 1.0
    return float(stats.binomtest(int((nonzero < 0).sum()), nonzero.size, 0.5).pvalue)


def verdict(ci_low: float, ci_high: float) -> str:
    """ "win" if the interval of log10(reference / baseline) lies below 0, "lose" if above."""
    if ci_high < 0:
        return "win"
    if ci_low > 0:
        return "lose"
    return "tie"


def _finite_or_nan(value: Any) -> float:
    if value is None:
        return math.nan
    value = float(value)
    return value if math.isfinite(value) and value > 0 else math.nan


def _final_error(row: dict[str, Any]) -> float:
    return _finite_or_nan(row.get("l2_relative_error"))


def _seed(row: dict[str, Any]) -> int:
    if row.get("seed") is not None:
        return int(row["seed"])
    return int(Path(row["path"]).name.removeprefix("seed"))


def paired_comparisons(
    rows: list[dict[str, Any]],
    reference: str = "glf",
    *,
    resamples: int = 10_000,
    seed: int = 0,
    level: float = 0.95,
) -> list[dict[str, Any]]:
    """One entry per experiment x problem x baseline x budget ("steps", "time") in which the
    ``reference`` sampler label and the baseline share seeds (see the module for the rule)."""
    groups: dict[tuple[str, str], dict[str, dict[int, dict[str, Any]]]] = defaultdict(
        lambda: defaultdict(dict)
    )
    for row in rows:
        groups[(row["experiment"], row["problem_label"])][row["sampler_label"]][_seed(row)] = row
    out = []
    for (exp, prob), by_sampler in groups.items():
        if reference not in by_sampler:
            continue
        ref_runs = by_sampler[reference]
        records = {
            (label, s): eval_records(run["path"])
            for label, runs in by_sampler.items()
            for s, run in runs.items()
        }
        for baseline, base_runs in by_sampler.items():
            seeds = sorted(set(ref_runs) & set(base_runs))
            if baseline == reference or not seeds:
                continue
            ends = [
                recs[-1][0]
                for (label, _), recs in records.items()
                if label in (reference, baseline) and recs
            ]
            t_equal = min(ends) if ends else math.nan
            for budget in ("steps", "time"):
                if budget == "steps":
                    ref_err = [_final_error(ref_runs[s]) for s in seeds]
                    base_err = [_final_error(base_runs[s]) for s in seeds]
                else:
                    ref_err = [error_at_time(records[(reference, s)], t_equal) for s in seeds]
                    base_err = [error_at_time(records[(baseline, s)], t_equal) for s in seeds]
                out.append(
                    _compare(
                        np.asarray(ref_err),
                        np.asarray(base_err),
                        resamples=resamples,
                        seed=seed,
                        level=level,
                    )
                    | {
                        "experiment": exp,
                        "problem": prob,
                        "reference": reference,
                        "baseline": baseline,
                        "budget": budget,
                        "time_s": t_equal if budget == "time" else math.nan,
                    }
                )
    return out


def _compare(
    ref: np.ndarray, base: np.ndarray, *, resamples: int, seed: int, level: float
) -> dict[str, Any]:
    ok = np.isfinite(ref) & np.isfinite(base)
    d = np.log10(ref[ok] / base[ok])
    lo, hi = bootstrap_ci(d, resamples=resamples, level=level, seed=seed)
    return {
        "pairs": int(ok.sum()),
        "dropped": int((~ok).sum()),
        "reference_median": float(np.median(ref[ok])) if ok.any() else math.nan,
        "baseline_median": float(np.median(base[ok])) if ok.any() else math.nan,
        "log_ratio_median": float(np.median(d)) if d.size else math.nan,
        "log_ratio_mean": float(d.mean()) if d.size else math.nan,
        "ci_low": lo,
        "ci_high": hi,
        "reference_better": int((d < 0).sum()),
        "sign_p": sign_test(d),
        "verdict": verdict(lo, hi) if d.size else "no pairs",
    }


def error_curve(
    records: list[list[tuple[float, int, float]]], points: int = 200
) -> tuple[np.ndarray, np.ndarray]:
    """Error against wall-clock time of several seeds on one time grid: each run's error at t
    is that of its last evaluation at or before t. The grid spans the times every run covers
    (from the latest first evaluation to the earliest last one); returns (times, errors of shape
    (runs, points)), empty if the runs share no time."""
    runs = [r for r in records if r]
    if not runs:
        return np.empty(0), np.empty((0, 0))
    start, end = max(r[0][0] for r in runs), min(r[-1][0] for r in runs)
    if end < start:
        return np.empty(0), np.empty((len(runs), 0))
    times = np.linspace(start, end, points) if end > start else np.asarray([start])
    errors = []
    for run in runs:
        t = np.asarray([r[0] for r in run])
        e = np.asarray([r[2] for r in run])
        errors.append(e[np.searchsorted(t, times, side="right") - 1])
    return times, np.stack(errors)


def diagnostics_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per experiment x problem x sampler whose resample lines carry GLF's diagnostics: each
    diagnostic's mean over a run's resamples, then the median over seeds (NaN where absent;
    ``distinct_anchor_fraction`` is distinct_anchors / n_points)."""
    groups: dict[tuple[str, str, str], list[dict[str, float]]] = defaultdict(list)
    for row in rows:
        path = Path(row["path"]) / "metrics.jsonl"
        if not path.exists():
            continue
        resamples = [
            r for r in read_jsonl(path) if r.get("event") == "resample" and "h_rel_median" in r
        ]
        if not resamples:
            continue
        for r in resamples:
            if r.get("distinct_anchors") is not None and r.get("n_points"):
                r["distinct_anchor_fraction"] = r["distinct_anchors"] / r["n_points"]
        run = {}
        for key in DIAGNOSTICS:
            vals = [float(r[key]) for r in resamples if r.get(key) is not None]
            run[key] = float(np.mean(vals)) if vals else math.nan
        run["resamples"] = len(resamples)
        groups[(row["experiment"], row["problem_label"], row["sampler_label"])].append(run)
    out = []
    for (exp, prob, samp), runs in groups.items():
        entry: dict[str, Any] = {
            "experiment": exp,
            "problem": prob,
            "sampler": samp,
            "seeds": len(runs),
            "resamples": int(np.median([r["resamples"] for r in runs])),
        }
        for key in DIAGNOSTICS:
            vals = [r[key] for r in runs if not math.isnan(r[key])]
            entry[key] = float(np.median(vals)) if vals else math.nan
        out.append(entry)
    return out


def _resample_lines(cell: str | Path) -> list[dict[str, Any]]:
    path = Path(cell) / "metrics.jsonl"
    if not path.exists():
        return []
    return [r for r in read_jsonl(path) if r.get("event") == "resample"]


def _coverage_threshold(cell: str | Path) -> float:
    """The run's coverage threshold from its config.yaml (the default where it has none)."""
    try:
        data = yaml.safe_load(read_limited(Path(cell) / "config.yaml", _MAX_CONFIG_BYTES))
    except (OSError, ValueError, yaml.YAMLError):  # none, or damaged: the default
        data = None
    value = data.get("coverage_threshold") if isinstance(data, dict) else None
    return value if isinstance(value, float) else COVERAGE_THRESHOLD


def coverage_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per experiment x problem x sampler whose runs log ``coverage`` at their resamples
    (:mod:`glfpinn.samplers.coverage`): the median over seeds of each run's final and lowest
    coverage, and how many runs fell below their own threshold (each of them was warned: the
    trainer warns at the first resample below it)."""
    groups: dict[tuple[str, str, str], list[tuple[float, float, bool]]] = defaultdict(list)
    for row in rows:
        values = [float(r["coverage"]) for r in _resample_lines(row["path"]) if "coverage" in r]
        if not values:
            continue
        low = min(values) < _coverage_threshold(row["path"])
        key = (row["experiment"], row["problem_label"], row["sampler_label"])
        groups[key].append((values[-1], min(values), low))
    return [
        {
            "experiment": exp,
            "problem": prob,
            "sampler": samp,
            "seeds": len(runs),
            "coverage_final": float(np.median([r[0] for r in runs])),
            "coverage_min": float(np.median([r[1] for r in runs])),
            "runs_warned": sum(r[2] for r in runs),
        }
        for (exp, prob, samp), runs in groups.items()
    ]


def time_to_accuracy(
    records: list[tuple[float, int, float]], target: float
) -> tuple[float, int] | None:
    """(elapsed_s, step) of the first evaluation whose L2 error is at or below ``target``, or
    None if no evaluation reached it (``records`` as :func:`eval_records` gives them)."""
    for elapsed, step, error in records:
        if error <= target:  # NaN never is
            return elapsed, step
    return None


def time_to_accuracy_summary(
    rows: list[dict[str, Any]], targets: tuple[float, ...] = ACCURACY_TARGETS
) -> list[dict[str, Any]]:
    """Per experiment x problem x sampler with a reference, and per target: how many seeds
    reached it, and the median over those of the training time and steps it took (the
    evaluations' own clock: evaluation time included, as a user waits for it)."""
    groups: dict[tuple[str, str, str], list[Path]] = defaultdict(list)
    for row in rows:
        groups[(row["experiment"], row["problem_label"], row["sampler_label"])].append(
            Path(row["path"])
        )
    out = []
    for (exp, prob, samp), cells in groups.items():
        records = [eval_records(cell) for cell in cells]
        if not any(np.isfinite(r[2]) for rec in records for r in rec):
            continue  # no reference: no error to reach
        entry: dict[str, Any] = {"experiment": exp, "problem": prob, "sampler": samp}
        entry["seeds"] = len(cells)
        for target in targets:
            hits = [h for h in (time_to_accuracy(rec, target) for rec in records) if h]
            key = f"{target:.0e}"
            entry[f"reached_{key}"] = len(hits)
            entry[f"time_s_{key}"] = float(np.median([h[0] for h in hits])) if hits else math.nan
            entry[f"steps_{key}"] = float(np.median([h[1] for h in hits])) if hits else math.nan
        out.append(entry)
    return out
