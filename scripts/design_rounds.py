"""Every sampler of a bench against a set of baselines, by issue #23's goals.

For each sampler label that is not a baseline: on how many problems it wins or ties against
every baseline by the report's seed-paired rule at equal steps (the verdicts of `glfpinn report
--reference <sampler>`, same bootstrap, same generator), the baselines it loses to where it
does, and its median L2 error over one baseline's median on each problem: the worst ratio and
the geometric mean (docs/results.md, "The design rounds at a glance"). CSV on stdout.

    python scripts/design_rounds.py runs/robust-design \\
        --baselines glf-scaled,rad,r3,uniform-resample,uniform
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path

from glfpinn.bench.report import collect
from glfpinn.bench.stats import paired_comparisons

FIELDS = [
    "sampler",
    "problems",
    "win_or_tie_all",
    "loses",
    "worst_ratio",
    "worst_problem",
    "geomean_ratio",
]


def goals(rows: list[dict], sampler: str, baselines: list[str], ratio_to: str) -> dict:
    """``sampler``'s row of the table: its verdicts at equal steps against ``baselines`` on
    every problem where it ran, and its medians over ``ratio_to``'s."""
    verdicts: dict[str, list[str]] = {}
    ratios: dict[str, float] = {}
    for p in paired_comparisons(rows, sampler):
        if p["budget"] != "steps" or p["baseline"] not in baselines:
            continue
        problem = f"{p['experiment']}/{p['problem']}"
        losses = verdicts.setdefault(problem, [])
        if p["verdict"] == "lose":
            losses.append(p["baseline"])
        if p["baseline"] == ratio_to:
            ratios[problem] = p["reference_median"] / p["baseline_median"]
    worst = max(ratios, key=ratios.get) if ratios else ""
    logs = [math.log(r) for r in ratios.values()]
    return {
        "sampler": sampler,
        "problems": len(verdicts),
        "win_or_tie_all": sum(not losses for losses in verdicts.values()),
        "loses": "; ".join(
            f"{problem}: {' '.join(sorted(losses))}"
            for problem, losses in sorted(verdicts.items())
            if losses
        ),
        "worst_ratio": ratios[worst] if worst else math.nan,
        "worst_problem": worst,
        "geomean_ratio": math.exp(sum(logs) / len(logs)) if logs else math.nan,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bench", type=Path, help="a bench output folder")
    parser.add_argument(
        "--baselines", required=True, help="comma-separated sampler labels to hold every other to"
    )
    parser.add_argument(
        "--ratio-to",
        default="uniform-resample",
        help="the baseline whose median each sampler's is divided by (default: uniform-resample)",
    )
    args = parser.parse_args()
    baselines = [b for b in args.baselines.split(",") if b]
    rows = collect(args.bench)
    labels = sorted({row["sampler_label"] for row in rows})
    unknown = [b for b in [*baselines, args.ratio_to] if b not in labels]
    if unknown:
        ran = ", ".join(labels)
        parser.exit(2, f"design_rounds: no sampler {', '.join(unknown)} in {args.bench}: {ran}\n")
    out = csv.DictWriter(sys.stdout, FIELDS, lineterminator="\n")
    out.writeheader()
    for sampler in (label for label in labels if label not in baselines):
        row = goals(rows, sampler, baselines, args.ratio_to)
        out.writerow({k: f"{v:.3g}" if isinstance(v, float) else v for k, v in row.items()})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
