"""Tables from a bench directory: mean +- std and median over seeds per experiment x problem x
sampler, the paired verdict of one sampler against the others (:mod:`glfpinn.bench.stats`), and
GLF's per-resample diagnostics."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import warnings
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from glfpinn._io import atomic_write_text, read_jsonl, read_limited
from glfpinn.bench.stats import (
    ACCURACY_TARGETS,
    DIAGNOSTICS,
    coverage_summary,
    diagnostics_summary,
    paired_comparisons,
    time_to_accuracy_summary,
)

__all__ = [
    "collect",
    "missing_cells",
    "summarise",
    "unknowns_summary",
    "write_report",
    "METRICS_REPORTED",
    "oscillation",
]

#: result.json field -> column title.
METRICS_REPORTED = {
    "l2_relative_error": "L2 rel. error",
    "residual_mean": "mean abs. residual",
    "peak_memory_mb": "peak MB",
    "wall_time_s": "wall s",
    "sampling_time_s": "sampling s",
    "scoring_time_s": "scoring s",
    "residual_evals": "residual evals",
    "oscillation": "loss oscillation",
}


def oscillation(metrics_path: Path) -> float:
    """Mean absolute change of log10(loss) between successive evaluations over the second half
    of training: a steady descent scores near 0, a loss that jumps around scores high."""
    losses = []
    for rec in read_jsonl(metrics_path):
        if rec.get("event") == "eval" and _positive(rec.get("loss")):
            losses.append(rec["loss"])
    half = np.log10(np.asarray(losses[len(losses) // 2 :], dtype=np.float64))
    return float(np.abs(np.diff(half)).mean()) if half.size > 1 else math.nan


def _positive(value: Any) -> bool:
    return _is_number(value) and value > 0


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


#: The most bytes of a cell's result.json read back (one is a few kilobytes).
_MAX_RESULT_BYTES = 1 << 20
#: Fields of an evaluation record the report and the plots read, and what each must hold.
_EVAL_FIELDS = ("step", "loss", "l2_relative_error", "residual_mean", "elapsed_s")


def _cell_row(root: Path, cell: Path) -> dict[str, Any]:
    """A finished cell's labels and result.json fields, after checking every file of it the
    report and the plots read; a damaged one is a ValueError naming it."""
    experiment, problem, sampler = cell.relative_to(root).parts[:3]
    result = cell / "result.json"
    try:
        data = json.loads(read_limited(result, _MAX_RESULT_BYTES))
    except ValueError as err:  # a torn or binary file (UnicodeDecodeError is a ValueError)
        raise ValueError(f"{str(result)!r} is damaged ({type(err).__name__})") from None
    if not isinstance(data, dict) or not _is_number(data.get("steps")):
        raise ValueError(f"{str(result)!r} is damaged (not a run's result)")
    for key in METRICS_REPORTED:
        if key != "oscillation" and data.get(key) is not None and not _is_number(data[key]):
            raise ValueError(f"{str(result)!r} is damaged ({key} is not a number)")
    metrics = cell / "metrics.jsonl"
    if metrics.exists():
        for rec in read_jsonl(metrics):
            bad = [
                k
                for k in _EVAL_FIELDS
                if rec.get("event") == "eval"
                and not _is_number(rec.get(k, 0.0))
                and not (k != "step" and rec.get(k) is None)
            ]
            if bad:
                raise ValueError(f"{str(metrics)!r} is damaged ({bad[0]} is not a number)")
    data["oscillation"] = oscillation(metrics) if metrics.exists() else math.nan
    return {
        "experiment": experiment,
        "problem_label": problem,
        "sampler_label": sampler,
        "path": str(cell),
        **data,
    }


def collect(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished cell under ``root``: its labels and its result.json fields. A cell with
    a damaged file is left out, with a warning naming the file."""
    rows = []
    root = Path(root)
    for result in sorted(root.glob("*/*/*/seed*/result.json")):
        try:
            rows.append(_cell_row(root, result.parent))
        except (OSError, ValueError) as err:
            where = result.parent.relative_to(root)
            warnings.warn(f"left out cell {where}: {err}", RuntimeWarning, stacklevel=2)
    return rows


def missing_cells(root: str | os.PathLike, rows: list[dict[str, Any]]) -> list[str]:
    """The cells ``root``/bench.json lists that have no usable result among ``rows`` (not
    run, failed, or damaged), in the bench's order; none without a readable bench.json."""
    root = Path(root)
    cells = _bench_meta(root).get("cells")
    if not isinstance(cells, list):
        return []
    have = {str(Path(row["path"]).relative_to(root)) for row in rows}
    return [c for c in cells if isinstance(c, str) and c not in have]


def _bench_meta(root: Path) -> dict[str, Any]:
    """``root``/bench.json, or {} where it is missing or damaged."""
    try:
        meta = json.loads(read_limited(root / "bench.json", _MAX_RESULT_BYTES))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def summarise(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        groups[(row["experiment"], row["problem_label"], row["sampler_label"])].append(row)
    out = []
    for (exp, prob, samp), members in groups.items():
        entry: dict[str, Any] = {
            "experiment": exp,
            "problem": prob,
            "sampler": samp,
            "seeds": len(members),
            "steps": members[0].get("steps"),
        }
        for key in METRICS_REPORTED:
            # null (no reference solution, or a field older runs lack) counts as missing
            vals = np.asarray([_number(m.get(key)) for m in members])
            entry[f"{key}_mean"] = float(np.mean(vals))
            entry[f"{key}_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0
            entry[f"{key}_median"] = float(np.median(vals))
        out.append(entry)
    return out


def unknowns_summary(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An inverse problem's recovered coefficients: per experiment x problem x sampler and
    unknown, the mean, standard deviation, median, min and max over seeds (none for runs
    without unknowns)."""
    groups: dict[tuple[str, str, str, str], list[float]] = defaultdict(list)
    for row in rows:
        for name, value in (row.get("unknowns") or {}).items():
            key = (row["experiment"], row["problem_label"], row["sampler_label"], name)
            groups[key].append(_number(value))
    out = []
    for (exp, prob, samp, name), values in groups.items():
        vals = np.asarray(values)
        out.append(
            {
                "experiment": exp,
                "problem": prob,
                "sampler": samp,
                "unknown": name,
                "seeds": len(vals),
                "mean": float(np.mean(vals)),
                "std": float(np.std(vals, ddof=1)) if len(vals) > 1 else 0.0,
                "median": float(np.median(vals)),
                "min": float(np.min(vals)),
                "max": float(np.max(vals)),
            }
        )
    return out


def _number(value: Any) -> float:
    return math.nan if value is None else float(value)


def _fmt(mean: float, std: float, key: str) -> str:
    if math.isnan(mean):
        return "-"
    if key in ("l2_relative_error", "residual_mean", "oscillation"):
        return f"{mean:.3e} ± {std:.1e}"
    if key == "residual_evals":
        return f"{mean:,.0f}"
    return f"{mean:.2f} ± {std:.2f}"


def _write_csv(path: Path, rows: list[dict[str, Any]], fields: list[str]) -> None:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=fields, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


#: Columns of paired.csv, one row per comparison (see :mod:`glfpinn.bench.stats`).
PAIRED_FIELDS = [
    "experiment",
    "problem",
    "reference",
    "baseline",
    "budget",
    "time_s",
    "pairs",
    "dropped",
    "reference_median",
    "baseline_median",
    "log_ratio_median",
    "log_ratio_mean",
    "ci_low",
    "ci_high",
    "reference_better",
    "sign_p",
    "verdict",
]


def write_report(
    root: str | os.PathLike,
    command: str | None = None,
    *,
    reference: str = "glf",
    resamples: int = 10_000,
    seed: int = 0,
) -> Path:
    """results.md, results.csv, paired.csv and (if any run logged GLF's diagnostics)
    diagnostics.csv in ``root``; returns the markdown's path. ``reference`` is the sampler label
    the verdict compares with every other one, by a bootstrap of ``resamples`` draws from
    ``numpy.random.default_rng(seed)``."""
    root = Path(root)
    rows = collect(root)
    if not rows:
        raise ValueError(f"no finished runs under {str(root)!r} (expected */*/*/seed*/result.json)")
    if not isinstance(resamples, int) or isinstance(resamples, bool) or resamples < 1:
        raise ValueError(f"resamples={resamples!r} is not allowed; it must be an integer >= 1")
    summary = summarise(rows)
    paired = paired_comparisons(rows, reference, resamples=resamples, seed=seed)
    diagnostics = diagnostics_summary(rows)
    coverage = coverage_summary(rows)
    reached = time_to_accuracy_summary(rows)

    fields = ["experiment", "problem", "sampler", "seeds", "steps"] + [
        f"{k}_{s}" for k in METRICS_REPORTED for s in ("mean", "std", "median")
    ]
    _write_csv(root / "results.csv", summary, fields)
    _write_csv(root / "paired.csv", paired, PAIRED_FIELDS)
    if diagnostics:
        diag_fields = ["experiment", "problem", "sampler", "seeds", "resamples", *DIAGNOSTICS]
        _write_csv(root / "diagnostics.csv", diagnostics, diag_fields)
    if coverage:
        _write_csv(root / "coverage.csv", coverage, list(coverage[0]))
    if reached:
        _write_csv(root / "time_to_accuracy.csv", reached, list(reached[0]))
    unknowns = unknowns_summary(rows)
    if unknowns:
        _write_csv(root / "unknowns.csv", unknowns, list(unknowns[0]))

    lines = ["# Results", ""]
    meta = _bench_meta(root)
    if meta:
        lines += [f"Profile: **{meta.get('profile')}**. {meta.get('note', '')}", ""]
    missing = missing_cells(root, rows)
    if missing:
        warnings.warn(
            f"{len(missing)} of the bench's cells have no result and are not in the report: "
            + ", ".join(missing[:5])
            + (", ..." if len(missing) > 5 else ""),
            RuntimeWarning,
            stacklevel=2,
        )
        lines += [
            f"**{len(missing)} of the bench's cells have no result** (not run, failed: see "
            "their error.txt, or damaged) and are left out: "
            + ", ".join(f"`{c}`" for c in missing),
            "",
        ]
    if command:
        lines += [f"Produced by: `{command}`", ""]
    lines += ["Mean ± standard deviation over seeds; the L2 error's median beside it.", ""]
    for exp in dict.fromkeys(e["experiment"] for e in summary):
        lines += [f"## {exp}", ""]
        head = ["problem", "sampler", "seeds", "L2 median", *METRICS_REPORTED.values()]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in (e for e in summary if e["experiment"] == exp):
            median = e["l2_relative_error_median"]
            cells = [
                e["problem"],
                e["sampler"],
                str(e["seeds"]),
                "-" if math.isnan(median) else f"{median:.3e}",
            ] + [_fmt(e[f"{k}_mean"], e[f"{k}_std"], k) for k in METRICS_REPORTED]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    lines += _published_lines(summary, meta.get("published"))
    lines += _verdict_lines(paired, reference, resamples)
    lines += _time_to_accuracy_lines(reached)
    lines += _diagnostics_lines(diagnostics)
    lines += _coverage_lines(coverage)
    lines += _unknowns_lines(unknowns)
    plots = sorted((root / "plots").glob("*.png")) if (root / "plots").exists() else []
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    path = root / "results.md"
    atomic_write_text(path, "\n".join(lines))
    return path


def _num(value: float, fmt: str) -> str:
    return "-" if math.isnan(value) else format(value, fmt)


def _verdict_lines(paired: list[dict[str, Any]], reference: str, resamples: int) -> list[str]:
    if not paired:
        return []
    lines = [
        f"## Verdict: {reference} against each baseline",
        "",
        f"Seeds paired within each experiment x problem; d = log10({reference}'s L2 error / the "
        "baseline's), negative where "
        f"{reference} is better. Budgets: equal steps (final errors) and equal wall-clock time "
        "T (each run's last evaluation at or before T, T the earliest end among the two "
        f"samplers' runs). CI: 95% percentile bootstrap of the mean of d ({resamples:,} "
        "resamples, seeded). Verdict: win if the CI lies below 0, lose if above, tie otherwise; "
        "sign p: two-sided sign test. With 3 pairs a win means better on every seed, and no "
        "sign test reaches p < 0.25.",
        "",
    ]
    for exp in dict.fromkeys(p["experiment"] for p in paired):
        head = [
            "problem",
            "baseline",
            "budget",
            "T (s)",
            "pairs",
            f"{reference} median",
            "baseline median",
            "median d",
            "95% CI of mean d",
            f"{reference} better",
            "sign p",
            "verdict",
        ]
        lines += [f"### {exp}", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for p in (p for p in paired if p["experiment"] == exp):
            ci = f"[{_num(p['ci_low'], '+.3f')}, {_num(p['ci_high'], '+.3f')}]"
            cells = [
                p["problem"],
                p["baseline"],
                p["budget"],
                _num(p["time_s"], ".1f"),
                str(p["pairs"]) + (f" ({p['dropped']} dropped)" if p["dropped"] else ""),
                _num(p["reference_median"], ".3e"),
                _num(p["baseline_median"], ".3e"),
                _num(p["log_ratio_median"], "+.3f"),
                ci,
                f"{p['reference_better']}/{p['pairs']}",
                f"{p['sign_p']:.3g}",
                f"**{p['verdict']}**",
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def _section(title: str, text: str, head: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown section: its title, a paragraph and one table."""
    lines = [f"## {title}", "", text, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    return lines + ["| " + " | ".join(cells) + " |" for cells in rows] + [""]


def _time_to_accuracy_lines(reached: list[dict[str, Any]]) -> list[str]:
    if not reached:
        return []

    def cell(entry: dict[str, Any], target: float) -> str:
        key = f"{target:.0e}"
        hits = entry[f"reached_{key}"]
        if hits == 0:
            return "not reached"
        return (
            f"{entry[f'time_s_{key}']:,.0f} s / {entry[f'steps_{key}']:,.0f} steps "
            f"({hits}/{entry['seeds']})"
        )

    rows = [
        [e["experiment"], e["problem"], e["sampler"]] + [cell(e, t) for t in ACCURACY_TARGETS]
        for e in reached
    ]
    return _section(
        "Time to accuracy",
        "Training time and optimizer steps until the L2 relative error first reaches each "
        "target: the median over the seeds that reached it (how many, in brackets), at the "
        "evaluations' resolution (eval_every), evaluation time included.",
        ["experiment", "problem", "sampler", *(f"L2 <= {t:.0e}" for t in ACCURACY_TARGETS)],
        rows,
    )


def _published_lines(summary: list[dict[str, Any]], published: Any) -> list[str]:
    """Each published figure beside the bench's median: the best sampler's on that problem, or
    the sampler the figure names (bench.json's ``published``, from the bench file)."""
    if not isinstance(published, dict) or not isinstance(published.get("figures"), dict):
        return []
    rows = []
    for exp in dict.fromkeys(e["experiment"] for e in summary):
        for problem, figures in published["figures"].items():
            ours = [
                e
                for e in summary
                if e["experiment"] == exp
                and e["problem"] == problem
                and math.isfinite(e["l2_relative_error_median"])
            ]
            if not ours or not isinstance(figures, dict):
                continue
            best = min(ours, key=lambda e: e["l2_relative_error_median"])
            for label, figure in figures.items():
                named = figure.get("sampler")
                mine = (
                    best
                    if named is None
                    else next((e for e in ours if e["sampler"] == named), None)
                )
                if mine is None:
                    continue
                median, value = mine["l2_relative_error_median"], figure["value"]
                rows.append(
                    [exp, problem, label, f"{value:.3g}", mine["sampler"], f"{median:.3g}"]
                    + [f"{median / value:.3g}"]
                )
    if not rows:
        return []
    return _section(
        "Published figures beside ours",
        f"Published: {published.get('source', 'source not given')}. Ours: the median L2 error "
        "over seeds of the bench's best sampler on that problem, or of the sampler the figure "
        "is compared with; ratio: ours over published (below 1: ours is lower). A published "
        "figure comes from its own protocol, which the bench's note says how far it follows.",
        ["experiment", "problem", "published figure", "value", "ours: sampler", "median", "ratio"],
        rows,
    )


def _coverage_lines(coverage: list[dict[str, Any]]) -> list[str]:
    if not coverage:
        return []
    rows = [
        [c["experiment"], c["problem"], c["sampler"], str(c["seeds"])]
        + [f"{c['coverage_final']:.3f}", f"{c['coverage_min']:.3f}", str(c["runs_warned"])]
        for c in coverage
    ]
    return _section(
        "Coverage per resample",
        "Occupied cells of a grid at the set's mean spacing over a uniform draw's (about 1: "
        "spread like a uniform set; near 0: collapsed into clumps; glfpinn.samplers.coverage). "
        "Median over seeds of each run's final and lowest coverage; runs warned: runs whose "
        "coverage fell below their threshold (each got the collapse warning).",
        ["experiment", "problem", "sampler", "seeds", "final", "lowest", "runs warned"],
        rows,
    )


def _diagnostics_lines(diagnostics: list[dict[str, Any]]) -> list[str]:
    if not diagnostics:
        return []
    rows = [
        [d["experiment"], d["problem"], d["sampler"], str(d["seeds"]), str(d["resamples"])]
        + [_num(d[k], ".3g") for k in DIAGNOSTICS]
        for d in diagnostics
    ]
    return _section(
        "GLF diagnostics per resample",
        "Each value: its mean over a run's resamples, then the median over seeds "
        "(docs/samplers.md explains each; distinct_anchor_fraction = distinct_anchors / N; "
        "spearman_* only with diagnose_surrogate).",
        ["experiment", "problem", "sampler", "seeds", "resamples", *DIAGNOSTICS],
        rows,
    )


def _unknowns_lines(unknowns: list[dict[str, Any]]) -> list[str]:
    if not unknowns:
        return []
    rows = [
        [u["experiment"], u["problem"], u["sampler"], u["unknown"], str(u["seeds"])]
        + [f"{u['mean']:.6g} ± {u['std']:.2g}", f"{u['median']:.6g}"]
        + [f"[{u['min']:.6g}, {u['max']:.6g}]"]
        for u in unknowns
    ]
    return _section(
        "Recovered unknowns",
        "An inverse problem's coefficients at the end of each run (result.json's unknowns): "
        "mean ± standard deviation, median and range over seeds.",
        ["experiment", "problem", "sampler", "unknown", "seeds", "mean", "median", "range"],
        rows,
    )
