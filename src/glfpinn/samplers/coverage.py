"""Coverage: is a collocation set still spread over its domain, or has it collapsed into clumps?

A sampler that concentrates points where the residual is high can overshoot: GLF with the
paper's alpha = 1e-4 on a PDE whose residuals are of order 1-100 moves its points about 1e-5
per resample, and the RAD-style draw then duplicates the hot anchors until the set sits in a
few clumps (docs/samplers.md, "Collapse"). Nothing in the loss says so: the training loss falls
on the clumps while the error elsewhere grows.

The measure (ours) is the occupancy of a grid at the set's own mean spacing, relative to what a
uniform draw of the same size occupies:

- the bounding box is cut into about N cells of equal side ``(V_box / N) ** (1 / d)`` (at
  least 2 cells per axis, so that in 20-D the grid still has 2^20 cells and not one);
- the set occupies K distinct cells (one integer row per point, ``unique`` over the rows:
  O(N d log N), no distances, cheap in any dimension);
- a uniform draw of N points in a domain covering C_in = C V / V_box of the C cells occupies
  E = C_in (1 - (1 - 1 / C_in)^N) of them in expectation (the occupancy of N balls in C_in
  bins; about 0.63 C_in when C_in = N);
- coverage = K / E. A uniform set scores about 1 whatever N, d and the domain; RAD's draw
  (half its weight uniform with c = 1) stays above 0.5 on our problems; the collapsed GLF sets
  of issue #23 scored below 0.2 (docs/samplers.md has the figures per sampler).

``DEFAULT_THRESHOLD`` (0.3) is where a run is told, once, that its set has collapsed
(:class:`CollapseMonitor`). The figure is a ratio of counts: below 1/3 the set fills fewer than a
third of the cells a uniform set of its size fills, i.e. most of its points sit in clumps of
several points per cell.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor

from glfpinn._checks import check_fraction
from glfpinn.domains import Domain
from glfpinn.samplers.base import Sampler

__all__ = [
    "CollapseMonitor",
    "CollapseWarning",
    "DEFAULT_THRESHOLD",
    "check_threshold",
    "coverage",
]

#: Coverage below which a run gets the collapse warning (see the module docstring).
DEFAULT_THRESHOLD = 0.3
#: The sampler the warning recommends instead.
ROBUST_SAMPLER = "glf-robust"


class CollapseWarning(UserWarning):
    """A sampler's collocation set collapsed into clumps (coverage below the threshold)."""


def check_threshold(threshold: float) -> float:
    """``threshold`` as a float in (0, 1), or a one-line ValueError naming it."""
    return check_fraction("coverage_threshold", threshold, allow_zero=False)


def _cells(domain: Domain, n: int) -> tuple[Tensor, Tensor, float]:
    """The grid's side, its cells per axis (float64, on the CPU) and how many cells lie in the
    domain (by volume)."""
    lo, hi = domain.bounds
    widths = (hi - lo).to(torch.float64)
    box_volume = float(torch.prod(widths))
    side = (box_volume / n) ** (1.0 / domain.dim)
    per_axis = torch.clamp(torch.ceil(widths / side), min=2.0)
    n_cells = math.exp(float(torch.log(per_axis).sum()))  # 2^20 and beyond: a float is enough
    inside = n_cells * min(1.0, domain.volume / box_volume)
    return widths / per_axis, per_axis, inside


def coverage(points: Tensor, domain: Domain) -> float:
    """The occupancy of ``points`` (n, dim) on a grid of about n cells over ``domain``'s
    bounding box, over a uniform draw's expected occupancy (see the module): about 1 for a
    uniform set, near 0 for a set collapsed into clumps. NaN for fewer than 2 points."""
    n = int(points.shape[0])
    if n < 2:
        return math.nan
    cell_side, per_axis, inside = _cells(domain, n)
    lo = domain.bounds[0].to(points.device, torch.float64)
    index = torch.floor((points.detach().to(torch.float64) - lo) / cell_side.to(points.device))
    # a point on the upper face belongs to the last cell, not to one past it
    index = torch.minimum(index.clamp(min=0), per_axis.to(points.device) - 1).to(torch.int64)
    occupied = torch.unique(index, dim=0).shape[0]
    expected = -inside * math.expm1(n * math.log1p(-1.0 / inside)) if inside > 1 else 1.0
    return occupied / expected


class CollapseMonitor:
    """Reads each resample's coverage and warns once per run when it drops below ``threshold``:
    the figure, what it means and the fix, as one :class:`CollapseWarning` line. The training
    loop and the DeepXDE and PINA callbacks each hold one."""

    def __init__(self, threshold: float = DEFAULT_THRESHOLD) -> None:
        self.threshold = check_threshold(threshold)
        self.warned = False

    def message(self, value: float, sampler: Sampler, label: str, step: int) -> str:
        from glfpinn.samplers.glf_robust import RobustGLF

        advice = (
            "raise its explore share or h_min"
            if isinstance(sampler, RobustGLF)
            else f"use {ROBUST_SAMPLER}, whose step is scale-free and keeps a uniform share"
        )
        return (
            f"sampler {label!r} collapsed its points at step {step}: coverage {value:.3f} "
            f"(occupied cells over a uniform draw's; threshold {self.threshold:g}), so most "
            f"points sit in clumps and the rest of the domain goes untrained; {advice}"
        )

    def check(self, value: float, sampler: Sampler, label: str, step: int) -> bool:
        """Warn (the first time only) if ``value`` is below the threshold; whether it is.
        ``label`` is what the run calls ``sampler`` (its registry name)."""
        low = value < self.threshold
        if low and not self.warned:
            self.warned = True
            message = self.message(value, sampler, label, step)
            warnings.warn(message, CollapseWarning, stacklevel=2)
        return low
