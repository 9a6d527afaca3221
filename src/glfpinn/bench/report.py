"""Tables from a bench directory: mean +- std over seeds per experiment x problem x sampler."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from glfpinn._io import atomic_write_text

__all__ = ["collect", "summarise", "write_report", "METRICS_REPORTED", "oscillation"]

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
    for line in metrics_path.read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("event") == "eval" and rec.get("loss", 0) > 0:
            losses.append(rec["loss"])
    half = np.log10(np.asarray(losses[len(losses) // 2 :]))
    return float(np.abs(np.diff(half)).mean()) if half.size > 1 else math.nan


def collect(root: str | os.PathLike) -> list[dict[str, Any]]:
    """Every finished cell under ``root``: its labels and its result.json fields."""
    rows = []
    root = Path(root)
    for result in sorted(root.glob("*/*/*/seed*/result.json")):
        cell = result.parent
        experiment, problem, sampler = cell.relative_to(root).parts[:3]
        try:
            data = json.loads(result.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            continue
        metrics = cell / "metrics.jsonl"
        data["oscillation"] = oscillation(metrics) if metrics.exists() else math.nan
        rows.append(
            {
                "experiment": experiment,
                "problem_label": problem,
                "sampler_label": sampler,
                "path": str(cell),
                **data,
            }
        )
    return rows


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
        out.append(entry)
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


def write_report(root: str | os.PathLike, command: str | None = None) -> Path:
    """results.md and results.csv in ``root``; returns the markdown's path."""
    root = Path(root)
    rows = collect(root)
    if not rows:
        raise ValueError(f"no finished runs under {str(root)!r} (expected */*/*/seed*/result.json)")
    summary = summarise(rows)

    buf = io.StringIO()
    fields = ["experiment", "problem", "sampler", "seeds", "steps"] + [
        f"{k}_{s}" for k in METRICS_REPORTED for s in ("mean", "std")
    ]
    writer = csv.DictWriter(buf, fieldnames=fields)
    writer.writeheader()
    writer.writerows(summary)
    atomic_write_text(root / "results.csv", buf.getvalue())

    lines = ["# Results", ""]
    note = root / "bench.json"
    if note.exists():
        meta = json.loads(note.read_text())
        lines += [f"Profile: **{meta.get('profile')}**. {meta.get('note', '')}", ""]
    if command:
        lines += [f"Produced by: `{command}`", ""]
    lines += ["Mean ± standard deviation over seeds.", ""]
    for exp in dict.fromkeys(e["experiment"] for e in summary):
        lines += [f"## {exp}", ""]
        head = ["problem", "sampler", "seeds", *METRICS_REPORTED.values()]
        lines += ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for e in (e for e in summary if e["experiment"] == exp):
            cells = [e["problem"], e["sampler"], str(e["seeds"])] + [
                _fmt(e[f"{k}_mean"], e[f"{k}_std"], k) for k in METRICS_REPORTED
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    plots = sorted((root / "plots").glob("*.png")) if (root / "plots").exists() else []
    if plots:
        lines += ["## Plots", ""] + [f"![{p.stem}](plots/{p.name})" for p in plots] + [""]
    path = root / "results.md"
    atomic_write_text(path, "\n".join(lines))
    return path
