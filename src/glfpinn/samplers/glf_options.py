"""GLF's options that are ours, not the paper's: a scale-free step (``alpha_scale="relative"``),
an adaptive M, the idw surrogate, a set that tracks RAD's density, alpha solved for a target
moved fraction (the mechanics;
:class:`~glfpinn.samplers.glf.GLF` takes them as constructor switches, and
``samplers/glf.py`` keeps the paper's method)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from glfpinn.samplers.select import rad_weights

__all__ = [
    "RELATIVE_ALPHA",
    "idw",
    "residual_scale",
    "largest_remainders",
    "rad_density",
    "uniform_spacing",
    "leave_probability",
    "alpha_for_moved_target",
]

#: ``alpha_scale="relative"``'s default alpha (ours): an anchor with the median residual gets a
#: per-coordinate spread of 2% of the diameter, so in 2-D its candidates land a median 2.4% of
#: the diameter away (|xi| has median 1.18 in 2-D) - local, yet well past float32 rounding -
#: while an anchor 50x easier than the median reaches the whole domain (h capped at D).
RELATIVE_ALPHA = 0.02


def idw(anchors: Tensor, values: Tensor, queries: Tensor, k: int, chunk: int = 4096) -> Tensor:
    """Inverse-squared-distance interpolation of anchor values from the k nearest anchors."""
    k = min(k, anchors.shape[0])
    out = torch.empty(queries.shape[0], dtype=values.dtype, device=values.device)
    for start in range(0, queries.shape[0], chunk):
        q = queries[start : start + chunk]
        # Exact distances: the matmul shortcut is off by ~1e-3 and would miss exact hits.
        dist = torch.cdist(q, anchors, compute_mode="donot_use_mm_for_euclid_dist")
        dist, idx = torch.topk(dist, k, dim=1, largest=False)
        w = 1.0 / (dist.to(values.dtype) ** 2 + torch.finfo(values.dtype).tiny)
        exact = dist[:, :1] == 0  # a query on an anchor takes that anchor's value
        w = torch.where(exact, (dist == 0).to(w.dtype), w)
        out[start : start + chunk] = (w * values[idx]).sum(1) / w.sum(1)
    return out


def residual_scale(r: Tensor) -> float:
    """The residuals' own scale for ``alpha_scale="relative"``: their median, robust to the few
    hot points that dominate a mean; the mean if over half of them are exactly 0."""
    s = float(r.median())
    return s if s > 0 else float(r.mean())


def largest_remainders(weights: Tensor, total: int) -> Tensor:
    """Integers summing to ``total`` in proportion to ``weights`` (Hamilton's method): the
    floors, then one more for the largest fractional parts, ties to the lower index."""
    share = weights.to(torch.float64) / weights.to(torch.float64).sum() * total
    counts = share.floor().to(torch.long)
    left = total - int(counts.sum())
    order = torch.argsort(share - counts, descending=True, stable=True)
    counts[order[:left]] += 1
    return counts


def rad_density(
    residuals: Tensor, anchor_residuals: Tensor, anchor_density: Tensor, k: float, c: float
) -> Tensor:
    """RAD's target density p = (r^k / E_u[r^k] + c) / (1 + c) at ``residuals``, relative to the
    uniform one (so E_u[p] = 1, and a uniform set has density 1 everywhere).

    E_u[r^k], the mean over the whole domain, is estimated from the anchors, which are not
    uniform: they follow ``anchor_density``, so the estimate is the self-normalised importance
    mean sum(r^k / q) / sum(1 / q), handed to :func:`~glfpinn.samplers.select.rad_weights` as
    its normaliser. Every anchor's residual 0 (or k = 0) leaves nothing to weigh: p = 1."""
    ra = anchor_residuals.detach().abs().to(torch.float64)
    if k == 0 or not bool((ra > 0).any()):
        return torch.ones_like(residuals, dtype=torch.float64)
    log_q = torch.log(anchor_density.detach().to(ra.device, torch.float64))
    log_mean = torch.logsumexp(k * torch.log(ra) - log_q, dim=0) - torch.logsumexp(-log_q, dim=0)
    return rad_weights(residuals, k, c, log_mean=log_mean) / (1 + c)


def uniform_spacing(volume: float, n: int, dim: int) -> float:
    """The spacing (V / N)^(1/d) of N points spread evenly over a domain of volume V."""
    return (volume / n) ** (1.0 / dim)


def leave_probability(h: Tensor, distance: float, dim: int) -> Tensor:
    """P(|h xi| >= distance) for xi ~ N(0, I_dim): the chance that a candidate of step h lands at
    least ``distance`` from its anchor (before reflection). |xi|^2 is chi-squared with ``dim``
    degrees of freedom: this is its upper regularised incomplete gamma at (distance / h)^2 / 2."""
    h = h.to(torch.float64)
    half = torch.full_like(h, dim / 2.0)
    return torch.special.gammaincc(half, 0.5 * (distance / h) ** 2)


def alpha_for_moved_target(
    unit: Tensor,
    target: float,
    distance: float,
    dim: int,
    floor: float,
    h_max: float,
    counts: Tensor | None = None,
) -> float | None:
    """The alpha for which the candidates of steps h_i = clamp(alpha unit_i, floor, h_max) are
    expected to land at least ``distance`` from their anchors in a ``target`` fraction of cases
    (anchor i having ``counts[i]`` candidates; the same number each by default).

    The expected fraction is a nondecreasing function of alpha, so Brent's method on log alpha
    finds it. Where the floor alone already moves more than ``target`` (or the cap alone moves
    less), no alpha can hold it: the alpha at which every step sits on the floor (on the cap) is
    returned, the nearest the set can come. None where ``unit`` spans more than float64 can
    bracket (a unit of 0 or inf)."""
    from scipy import optimize  # here: scipy.optimize takes a second to import

    unit = unit.detach().to(torch.float64)
    share = None if counts is None else counts.to(unit.device, torch.float64) / counts.sum()
    lowest = max(floor, 1e-6 * distance)  # below this no candidate moves the distance

    def excess(log_alpha: float) -> float:
        h = (math.exp(log_alpha) * unit).clamp(min=floor, max=h_max)
        moved = leave_probability(h, distance, dim)
        return float(moved.mean() if share is None else (moved * share).sum()) - target

    widest, narrowest = float(unit.max()), float(unit.min())
    if not (0 < narrowest <= widest < math.inf):
        return None
    lo = math.log(lowest / widest)
    hi = math.log(h_max / narrowest)
    if hi <= lo or excess(lo) >= 0:
        return math.exp(lo)
    if excess(hi) <= 0:
        return math.exp(hi)
    return math.exp(optimize.brentq(excess, lo, hi, xtol=1e-6))
