"""PNG figures from a bench directory (matplotlib, imported lazily, Agg backend)."""

from __future__ import annotations

import io
import math
import os
import warnings
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from glfpinn._io import atomic_write_bytes, read_jsonl
from glfpinn.bench.report import collect, summarise
from glfpinn.bench.stats import error_curve, eval_records

__all__ = ["write_plots"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _evals(cell: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    steps, l2, residual, loss = [], [], [], []
    metrics = cell / "metrics.jsonl"
    for rec in read_jsonl(metrics) if metrics.exists() else []:
        if rec.get("event") == "eval":
            steps.append(rec["step"])
            l2.append(_or_nan(rec["l2_relative_error"]))
            residual.append(_or_nan(rec.get("residual_mean")))
            loss.append(_or_nan(rec["loss"]))
    return np.asarray(steps), np.asarray(l2), np.asarray(residual), np.asarray(loss)


def _or_nan(value: float | None) -> float:
    """A metric as logged: a number, or null (none, or not finite) as NaN."""
    return math.nan if value is None else value


def _arrays(file: Path, *names: str) -> tuple[np.ndarray, ...] | None:
    """The arrays ``names`` of the .npz ``file``; None, with a warning naming the file, when it
    is damaged (a torn zip, a missing array): the plot is drawn without it."""
    try:
        with np.load(file, allow_pickle=False) as data:
            return tuple(np.asarray(data[name], dtype=np.float64) for name in names)
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
        warnings.warn(
            f"left out {str(file)!r}: damaged ({type(err).__name__})", RuntimeWarning, stacklevel=2
        )
        return None


def _save(fig, path: Path) -> Path:
    """Rendered in memory, written atomically: a link planted at ``path`` is replaced, never
    written through."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())
    return path


def write_plots(root: str | os.PathLike) -> list[Path]:
    """Error and loss curves, error against wall-clock time, cost bars, point snapshots and
    error maps; returns the files."""
    plt = _plt()
    root = Path(root)
    rows = collect(root)
    out_dir = root / "plots"
    written: list[Path] = []
    by_problem: dict[tuple[str, str], list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        by_problem[(row["experiment"], row["problem_label"])].append(row)

    for (exp, prob), members in by_problem.items():
        fig, (ax_err, ax_res, ax_osc) = plt.subplots(1, 3, figsize=(16, 4), layout="constrained")
        by_sampler: dict[str, list[Path]] = defaultdict(list)
        for m in members:
            by_sampler[m["sampler_label"]].append(Path(m["path"]))
        for sampler, cells in by_sampler.items():
            curves = [_evals(c) for c in cells]
            n = min(len(c[0]) for c in curves)
            steps = curves[0][0][:n]
            l2 = np.stack([c[1][:n] for c in curves])
            residual = np.stack([c[2][:n] for c in curves])
            for ax, values in ((ax_err, l2), (ax_res, residual)):
                if not np.isfinite(values).any():
                    continue
                ax.plot(steps, np.exp(np.log(values).mean(0)), label=sampler)
                if len(cells) > 1:
                    ax.fill_between(steps, values.min(0), values.max(0), alpha=0.2)
            loss = np.log10(np.stack([c[3][:n] for c in curves]))
            window = max(3, n // 10)
            if n > window:
                var = [loss[:, i : i + window].var(axis=1).mean() for i in range(n - window)]
                ax_osc.plot(steps[window:], var, label=sampler)
        ax_err.set(
            xlabel="step",
            ylabel="L2 relative error",
            title=f"{exp}: {prob} (geometric mean; band: min-max over seeds)",
        )
        ax_res.set(xlabel="step", ylabel="mean |residual| (held-out points)")
        ax_osc.set(
            xlabel="step",
            ylabel="variance of log10(loss)",
            title="training stability (sliding window)",
        )
        for ax in (ax_err, ax_res, ax_osc):
            if ax.get_legend_handles_labels()[0]:
                ax.set_yscale("log")  # only with something drawn (all-NaN data cannot be)
                ax.legend(fontsize=8)
        written.append(_save(fig, out_dir / f"{exp}_{prob}_curves.png"))
        plt.close(fig)
        written += _time_curves(plt, exp, prob, by_sampler, out_dir / f"{exp}_{prob}_time.png")

        summary = [s for s in summarise(members)]
        fig, axes = plt.subplots(1, 3, figsize=(13, 3.5), layout="constrained")
        labels = [s["sampler"] for s in summary]
        for ax, key, title in zip(
            axes,
            ("peak_memory_mb", "wall_time_s", "sampling_time_s"),
            ("peak memory (MB)", "wall time (s)", "time in sampling (s)"),
        ):
            ax.bar(
                labels,
                [s[f"{key}_mean"] for s in summary],
                yerr=[s[f"{key}_std"] for s in summary],
                capsize=3,
            )
            ax.set_title(title)
            ax.tick_params(axis="x", rotation=45)
        fig.suptitle(f"{exp}: {prob}")
        written.append(_save(fig, out_dir / f"{exp}_{prob}_costs.png"))
        plt.close(fig)

        first_seed = {}
        for m in sorted(members, key=lambda m: m["seed"]):
            first_seed.setdefault(m["sampler_label"], Path(m["path"]))
        written += _snapshots(plt, first_seed, out_dir / f"{exp}_{prob}_points.png")
        written += _error_maps(plt, first_seed, out_dir / f"{exp}_{prob}_errors.png")
    return written


def _time_curves(
    plt, exp: str, prob: str, by_sampler: dict[str, list[Path]], path: Path
) -> list[Path]:
    """The L2 error and the mean |residual| against wall-clock time: per sampler the median
    over seeds and the min-max band, over the time span every seed covers
    (``stats.error_curve``)."""
    fig, axes = plt.subplots(1, 2, figsize=(13, 4.5), layout="constrained")
    drawn = False
    for ax, key, label in zip(
        axes,
        ("l2_relative_error", "residual_mean"),
        ("L2 relative error", "mean |residual| (held-out points)"),
        strict=True,
    ):
        for sampler, cells in by_sampler.items():
            times, values = error_curve([eval_records(c, key) for c in cells])
            if times.size == 0 or not np.isfinite(values).any():
                continue
            median = np.nanmedian(values, axis=0)
            (line,) = ax.plot(times, median, label=f"{sampler} ({len(cells)})")
            if values.shape[0] > 1:
                ax.fill_between(
                    times, values.min(0), values.max(0), alpha=0.2, color=line.get_color()
                )
            drawn = True
        ax.set(xlabel="wall-clock training time (s)", ylabel=label)
        if ax.get_legend_handles_labels()[0]:
            ax.set_yscale("log")
            ax.legend(fontsize=8)
    if not drawn:
        plt.close(fig)
        return []
    fig.suptitle(f"{exp}: {prob} (median over seeds; band: min-max)")
    out = _save(fig, path)
    plt.close(fig)
    return [out]


def _snapshots(plt, cells: dict[str, Path], path: Path) -> list[Path]:
    """Training points coloured by residual at up to four steps, one row per sampler."""
    rows = {s: sorted((c / "snapshots").glob("*.npz")) for s, c in cells.items()}
    rows = {s: files for s, files in rows.items() if files}
    if not rows:
        return []
    cols = min(4, max(len(files) for files in rows.values()))
    fig, axes = plt.subplots(
        len(rows), cols, figsize=(3.4 * cols, 3 * len(rows)), squeeze=False, layout="constrained"
    )
    for i, (sampler, files) in enumerate(rows.items()):
        picks = [files[int(j)] for j in np.unique(np.linspace(0, len(files) - 1, cols).round())]
        for j, file in enumerate(picks):
            ax = axes[i, j]
            arrays = _arrays(file, "points", "residuals")
            if arrays is None:  # damaged: this panel stays empty
                ax.set_axis_off()
                continue
            pts, res = arrays
            sc = ax.scatter(
                pts[:, 0],
                pts[:, -1] if pts.shape[1] == 2 else pts[:, 1],
                s=1.5,
                c=np.log10(res + 1e-12),
                cmap="viridis",
            )
            ax.set_title(f"{sampler}, step {int(file.stem[4:])}", fontsize=8)
            fig.colorbar(sc, ax=ax, fraction=0.046)
    fig.suptitle("collocation points coloured by log10 |residual| (first two coordinates)")
    out = _save(fig, path)
    plt.close(fig)
    return [out]


def _error_maps(plt, cells: dict[str, Path], path: Path) -> list[Path]:
    preds = {
        s: arrays
        for s, c in cells.items()
        if (c / "prediction.npz").exists()
        and (arrays := _arrays(c / "prediction.npz", "x", "u", "u_ref")) is not None
    }
    if not preds:
        return []
    fig, axes = plt.subplots(
        1, len(preds), figsize=(3.8 * len(preds), 3.2), squeeze=False, layout="constrained"
    )
    for ax, (sampler, (x, u, u_ref)) in zip(axes[0], preds.items()):
        err = np.abs(u - u_ref)
        cols = (0, x.shape[1] - 1) if x.shape[1] == 2 else (0, 1)
        sc = ax.tricontourf(x[:, cols[0]], x[:, cols[1]], err, levels=30, cmap="magma")
        ax.set_title(f"|u - u_ref|, {sampler}", fontsize=9)
        fig.colorbar(sc, ax=ax, fraction=0.046)
    out = _save(fig, path)
    plt.close(fig)
    return [out]
