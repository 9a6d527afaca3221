"""PNG figures of one run directory: the network's u, its error and its residual on a 2-D view
of the problem, the training points, and the training curves.

Figures are built as ``matplotlib.figure.Figure`` objects (imported lazily) and written by the
Agg renderer, without pyplot: no global backend switch in the caller's session (a notebook keeps
its inline backend) and no figure left open when a plot fails halfway. Each PNG is rendered in
memory and written atomically (a fresh temporary file renamed over its name), so a link planted
where a plot goes is replaced, never written through.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from glfpinn._io import atomic_write_bytes
from glfpinn.problems.base import Problem
from glfpinn.runs.directory import PLOTS, SNAPSHOTS
from glfpinn.runs.load import Run, load_run
from glfpinn.training import Scorer
from glfpinn.training.network import ModelSpec

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["plot_run"]

#: Side of the grid of a 2-D view: 26k points, well under a second to predict and score on a CPU.
GRID = 161
#: Points of the line view of a 1-D problem.
LINE = 401
#: Log colour scales span at most this ratio, so exact zeros stay drawable.
FLOOR = 1e-6


@dataclass(frozen=True)
class _View:
    """Where the fields are drawn: a plane (coordinates 0 and 1 of ``x`` vary) or a line."""

    x: np.ndarray  # (m, dim)
    inside: np.ndarray  # (m,) bool: which points lie in the domain (the others are masked)
    shape: tuple[int, ...]  # (rows, cols) of a plane, rows along x_2; (m,) of a line
    extent: tuple[float, float, float, float] | None  # x_1 and x_2 ranges of a plane
    caption: str  # which plane, for the titles of problems in more than two dimensions


def _view(problem: Problem) -> _View:
    lo, hi = (b.double().numpy() for b in problem.domain.bounds)
    caption = ""
    if problem.dim == 1:
        x = np.linspace(lo[0], hi[0], LINE)[:, None]
        shape, extent = (LINE,), None
    elif problem.dim > 2 and hasattr(problem, "slice_2d"):
        # The problem's own plane (e.g. through a moving bump): n * n points, rows along x_2.
        x = np.asarray(problem.slice_2d(), dtype=np.float64)
        n = math.isqrt(len(x))
        if n * n != len(x) or x.ndim != 2 or x.shape[1] != problem.dim:
            raise ValueError(
                f"{problem.name}.slice_2d() gave shape {x.shape}; expected (n * n, {problem.dim})"
            )
        shape = (n, n)
        extent = (x[:, 0].min(), x[:, 0].max(), x[:, 1].min(), x[:, 1].max())
        caption = " (slice_2d plane)"
    else:
        g0, g1 = np.linspace(lo[0], hi[0], GRID), np.linspace(lo[1], hi[1], GRID)
        a, b = np.meshgrid(g0, g1)
        x = np.tile((lo + hi) / 2, (GRID * GRID, 1))
        x[:, 0], x[:, 1] = a.ravel(), b.ravel()
        shape, extent = (GRID, GRID), (lo[0], hi[0], lo[1], hi[1])
        if problem.dim > 2:
            caption = " (x_3.. at the box centre)"
    inside = problem.domain.contains(torch.as_tensor(x)).cpu().numpy()
    return _View(x, inside, shape, tuple(map(float, extent)) if extent else None, caption)


def _figure(panels: int = 1) -> tuple[Figure, np.ndarray]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(4.8 * panels, 3.8), layout="constrained")
    return fig, fig.subplots(1, panels, squeeze=False)[0]


def _save(fig: Figure, path: Path) -> Path:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    atomic_write_bytes(path, buf.getvalue())
    return path


def _floored(values: np.ndarray) -> tuple[np.ndarray, float, float]:
    """``values`` raised to the bottom of their log colour range, and that range (NaN stays)."""
    positive = values[np.isfinite(values) & (values > 0)]
    if not positive.size:
        return np.maximum(values, FLOOR), FLOOR, 1.0
    top = float(positive.max())
    # The 1st percentile, not the minimum: the few points where an error or a residual crosses
    # zero would otherwise stretch the scale over decades that the rest of the field never uses.
    bottom = max(float(np.percentile(positive, 1)), FLOOR * top)
    return np.maximum(values, bottom), bottom, top


def _field(view: _View, values: np.ndarray, title: str, log: bool) -> Figure:
    """``values`` (at the view's points inside the domain) as a map, or a curve for a line."""
    full = np.full(len(view.x), np.nan)
    full[view.inside] = values
    fig, (ax,) = _figure()
    if view.extent is None:
        if log:
            full, _, _ = _floored(full)
            ax.set_yscale("log")
        ax.plot(view.x[:, 0], full)
        ax.set_xlabel("x_1")
        ax.set_title(title, fontsize=9)
        return fig
    norm = None
    if log:
        from matplotlib.colors import LogNorm

        full, vmin, vmax = _floored(full)
        norm = LogNorm(vmin=vmin, vmax=vmax)
    image = ax.imshow(
        np.ma.masked_invalid(full.reshape(view.shape)),
        origin="lower",
        extent=view.extent,
        aspect="auto",
        norm=norm,
        cmap="magma" if log else "viridis",
        interpolation="nearest",
    )
    fig.colorbar(image, ax=ax)
    ax.set(xlabel="x_1", ylabel="x_2")
    ax.set_title(title + view.caption, fontsize=9)
    return fig


def _points(run: Run) -> Figure:
    """The last checkpoint's training points and, with snapshots, the last snapshot's points
    coloured by their residual; first two coordinates, or a strip in 1-D."""
    dim = run.problem.dim
    lo, hi = (b.double().numpy() for b in run.problem.domain.bounds)
    pts = run.points.detach().cpu().double().numpy()
    snaps = sorted((run.path / SNAPSHOTS).glob("step*.npz"))
    fig, axes = _figure(2 if snaps else 1)
    ax = axes[0]
    if dim == 1:
        ax.plot(pts[:, 0], np.zeros(len(pts)), "|", markersize=30, alpha=0.5)
        ax.set_yticks([])
    else:
        ax.scatter(pts[:, 0], pts[:, 1], s=2)
        ax.set(ylabel="x_2", ylim=(lo[1], hi[1]))
    ax.set(xlabel="x_1", xlim=(lo[0], hi[0]))
    ax.set_title(f"training points of the last checkpoint (N = {len(pts)})", fontsize=9)
    if snaps:
        try:
            with np.load(snaps[-1], allow_pickle=False) as snap:
                at, residuals = np.asarray(snap["points"]), np.asarray(snap["residuals"])
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
            raise ValueError(
                f"snapshot {str(snaps[-1])!r} is damaged ({type(err).__name__}); delete it"
            ) from None
        log_r = np.log10(np.abs(residuals) + 1e-12)
        ax = axes[1]
        if dim == 1:
            ax.scatter(at[:, 0], log_r, s=3)
            ax.set(ylabel="log10 |residual|")
        else:
            dots = ax.scatter(at[:, 0], at[:, 1], c=log_r, s=3, cmap="viridis")
            fig.colorbar(dots, ax=ax, label="log10 |residual|")
            ax.set(ylabel="x_2", ylim=(lo[1], hi[1]))
        ax.set(xlabel="x_1", xlim=(lo[0], hi[0]))
        # Snapshot files are named step<8 digits>.npz.
        ax.set_title(f"last snapshot, step {int(snaps[-1].stem[4:])}", fontsize=9)
    return fig


def _curves(evaluations: list[dict[str, Any]], title: str) -> Figure:
    steps = np.array([rec["step"] for rec in evaluations])
    fig, (ax,) = _figure()
    for key, label in (
        ("loss", "loss"),
        ("l2_relative_error", "L2 relative error"),
        ("residual_mean", "mean |residual| (held out)"),
    ):
        y = np.array([math.nan if rec.get(key) is None else rec[key] for rec in evaluations])
        if np.isfinite(y).any():  # l2_relative_error is null throughout without a reference
            ax.plot(steps, y, marker=".", label=label)
    ax.set(yscale="log", xlabel="step")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    return fig


def plot_run(
    path: str | os.PathLike,
    out: str | os.PathLike | None = None,
    *,
    problem: Problem | None = None,
    model: ModelSpec | None = None,
    trust: bool = False,
) -> list[Path]:
    """PNGs of the run in ``path``, written into ``out`` (default ``path/plots``); returns them.
    The run is loaded by :func:`~glfpinn.runs.load_run` with ``problem``, ``model`` and
    ``trust`` (a problem or network the config names by import path needs one of them).

    ``solution.png`` (the network's u), ``error.png`` (|u - u_ref|, only for a problem whose
    ``solution`` answers anywhere: a reference file alone is known at its own points only)
    and ``residual.png`` (|residual|; a system's per-point score, the run's ``score``) on one
    view (a system of several outputs: ``solution_<output>.png`` and ``error_<output>.png``):
    the domain's bounding box in 2-D with the
    points outside the domain masked, ``problem.slice_2d()`` or else a plane through
    the box centre over x_1, x_2 in higher dimension, the interval in 1-D. ``points.png``: the
    training points of the last checkpoint and, if the run took snapshots, the last snapshot's
    points coloured by log10 |residual|. ``curves.png``: loss, L2 relative error and mean
    residual against step (only if the run recorded evaluations). A directory without a run
    raises :func:`~glfpinn.runs.load_run`'s ValueError.
    """
    run = load_run(path, problem=problem, model=model, trust=trust)
    out_dir = run.path / PLOTS if out is None else Path(out)
    if out is None and out_dir.is_symlink():  # a run directory's own folder never is a link
        raise ValueError(
            f"{str(out_dir)!r} is a symbolic link; plots go into the run directory itself "
            "(remove it, or give another folder with --out)"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    problem = run.problem
    view = _view(problem)
    x = view.x[view.inside]
    u = run.predict(x)
    param = next(iter(run.model.parameters()))
    score = "l2" if run.config.score is None else run.config.score
    scorer = Scorer(lambda pts: problem.residual(run.model, pts), score=score)
    residual = scorer(torch.as_tensor(x).to(param.device, param.dtype)).double().cpu().numpy()
    name = f"{problem.name}, {run.config.sampler}"

    outputs = tuple(getattr(problem, "outputs", ("u",)))
    figures: dict[str, Any] = {}
    if len(outputs) == 1:
        figures["solution"] = _field(view, u, f"u: {name}", log=False)
        if problem.has_solution:  # a reference file's values are known at its points only
            u_ref = np.asarray(problem.solution(x), dtype=np.float64).reshape(-1)
            figures["error"] = _field(view, np.abs(u - u_ref), f"|u - u_ref|: {name}", log=True)
    else:  # a system: one figure per output, solution_<output>.png and error_<output>.png
        refs = (
            np.asarray(problem.solution(x), dtype=np.float64).reshape(len(x), len(outputs))
            if problem.has_solution
            else None
        )
        for k, out_name in enumerate(outputs):
            figures[f"solution_{out_name}"] = _field(view, u[:, k], f"{out_name}: {name}", False)
            if refs is not None:
                error = np.abs(u[:, k] - refs[:, k])
                figures[f"error_{out_name}"] = _field(
                    view, error, f"|{out_name} - {out_name}_ref|: {name}", log=True
                )
    figures["residual"] = _field(view, residual, f"|residual|: {name}", log=True)
    figures["points"] = _points(run)
    evaluations = run.evaluations()
    if evaluations:
        figures["curves"] = _curves(evaluations, name)
    return [_save(fig, out_dir / f"{key}.png") for key, fig in figures.items()]
