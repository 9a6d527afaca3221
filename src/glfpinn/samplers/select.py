"""Weighted draws shared by every sampler that picks points by weight.

``torch.multinomial`` refuses more than 2^24 categories; the draw without replacement here is an
exponential race (equivalently Gumbel top-k): key_j = E_j / w_j with E_j ~ Exp(1), keep the n
smallest keys. That is exactly sequential sampling without replacement proportional to w, works
for any pool size, and costs one sort-free top-k.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

if TYPE_CHECKING:  # a single-process run never imports glfpinn.distributed
    from glfpinn.distributed import ProcessGroup

__all__ = [
    "rad_weights",
    "rad_log_mean",
    "weighted_draw",
    "systematic_draw",
    "capped_inclusion",
    "effective_sample_size",
    "importance_weights",
    "inclusion_scale",
]


def rad_weights(
    residuals: Tensor,
    k: float,
    c: float,
    *,
    mass: Tensor | None = None,
    log_mean: Tensor | None = None,
) -> Tensor:
    """RAD's density weights w = r^k / mean(r^k) + c, computed in log space.

    r^k overflows for large k or large residuals; log-space normalisation never does. When every
    residual is zero the first term is undefined: it is taken as 0 (so w = c), and as 1 when
    c = 0 too, so the draw is uniform and every weight stays finite.

    ``mass`` (positive, one per residual) makes member j stand for ``mass[j]`` members of an
    equivalent pool: the mean is weighted by it and w_j is multiplied by it. GLF's adaptive M
    uses it so that an anchor's candidates carry the same total weight however many there are.

    ``log_mean``: log mean(r^k) of a pool that ``residuals`` is a part of (every rank's, from
    :func:`rad_log_mean`), used instead of this part's own; each weight is then the one the
    whole pool gives that member, so a rank weighs its share exactly as one process would.
    """
    r = residuals.detach().abs().to(torch.float64)
    # whether every residual is 0 is a property of the whole pool, which a given mean describes
    all_zero = not bool((r > 0).any()) if log_mean is None else bool(torch.isneginf(log_mean))
    if k == 0:
        ratio = torch.ones_like(r)
    elif all_zero:
        ratio = torch.zeros_like(r) if c > 0 else torch.ones_like(r)
    else:
        logs = k * torch.log(r)  # -inf where r == 0, which exp maps back to 0
        if log_mean is None:
            if mass is None:
                log_mean = torch.logsumexp(logs, dim=0) - math.log(r.numel())
            else:
                m = mass.detach().to(r.device, torch.float64)
                log_mean = torch.logsumexp(logs + torch.log(m), dim=0) - torch.log(m.sum())
        ratio = torch.exp(logs - log_mean.to(r.device))
    if mass is None:
        return ratio + c
    return (ratio + c) * mass.detach().to(r.device, torch.float64)


def rad_log_mean(
    residuals: Tensor, k: float, *, mass: Tensor | None = None, group: ProcessGroup | None = None
) -> Tensor:
    """log mean(r^k) (weighted by ``mass`` as in :func:`rad_weights`) over the union of every
    rank's ``residuals``, a 0-d float64 tensor; -inf when every residual is 0.

    Each rank's part is two numbers, its log-sum-exp of k log r (+ log mass) and its total
    mass; one all-gather brings them together and they combine in log space, so the global mean
    neither overflows nor depends on how the pool is split. ``k`` must be > 0 (with k = 0 every
    ratio is 1 and no mean is needed). ``group`` None: this process's residuals alone.
    """
    if k <= 0:
        raise ValueError(f"k={k} has no RAD normaliser; it needs k > 0")
    r = residuals.detach().abs().to(torch.float64)
    logs = k * torch.log(r)
    if mass is None:
        total = torch.tensor(float(r.numel()), dtype=torch.float64, device=r.device)
    else:
        m = mass.detach().to(r.device, torch.float64)
        logs, total = logs + torch.log(m), m.sum()
    part = torch.stack([torch.logsumexp(logs, dim=0), total])
    parts = part[None] if group is None else group.all_gather(part)
    return torch.logsumexp(parts[:, 0], dim=0) - torch.log(parts[:, 1].sum())


def weighted_draw(
    weights: Tensor, n: int, generator: torch.Generator, *, replace: bool = False
) -> Tensor:
    """Indices of ``n`` draws from categories with probabilities proportional to ``weights``."""
    w = weights.detach()
    if w.ndim != 1:
        raise ValueError(f"weights must be 1-D, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError("weights must be finite and >= 0")
    positive = int((w > 0).sum())
    if positive == 0:
        raise ValueError("weights are all zero: nothing to draw from")
    if not replace and n > positive:
        raise ValueError(
            f"cannot draw n={n} points without replacement from a pool with {positive} "
            "points of positive weight; lower n, enlarge the pool, or draw with replacement"
        )
    dev = generator.device
    w = w.to(dev, torch.float64)
    if replace:
        cdf = torch.cumsum(w, 0)
        u = torch.rand(n, generator=generator, device=dev, dtype=torch.float64) * cdf[-1]
        return torch.searchsorted(cdf, u, right=True).clamp_(max=w.numel() - 1)
    e = torch.empty_like(w).exponential_(generator=generator)
    keys = e / w  # +inf for zero weights: never chosen while positives remain
    return torch.topk(keys, n, largest=False, sorted=False).indices


def capped_inclusion(weights: Tensor, n: int) -> Tensor:
    """Inclusion probabilities pi_j = min(1, t w_j) summing to ``n`` (float64).

    The classical proportional-to-size design (Hajek 1964; Tillé, *Sampling Algorithms*, 2006,
    section 2.10): members whose share would exceed 1 are taken for certain and the rest share
    what remains in proportion to their weights. Repeats until no share exceeds 1; each pass
    fixes at least one member, so it ends in at most n passes (in practice a few).
    """
    w = weights.detach().to(torch.float64)
    positive = int((w > 0).sum())
    if not 0 < n <= positive:
        raise ValueError(f"n={n} must be in [1, {positive}] (the members of positive weight)")
    certain = torch.zeros_like(w, dtype=torch.bool)
    while True:
        free = w.masked_fill(certain, 0.0)
        pi = free * ((n - int(certain.sum())) / float(free.sum()))
        pi = pi.masked_fill(certain, 1.0)
        over = (pi > 1.0) & ~certain
        if not bool(over.any()):
            return pi.clamp_(max=1.0)
        certain |= over


def systematic_draw(weights: Tensor, n: int, generator: torch.Generator) -> Tensor:
    """Indices of ``n`` distinct members drawn by systematic sampling (Madow 1949) with the
    inclusion probabilities of :func:`capped_inclusion`, in the pool's order.

    One uniform offset u places the n points u, u + 1, ..., u + n - 1 on the cumulative sum of
    the inclusion probabilities; each lands in one member's interval, and no interval is longer
    than 1, so no member is drawn twice. Unlike the exponential race of :func:`weighted_draw`,
    the number drawn from any run of consecutive members varies by at most one around its
    expectation: a block of members whose probabilities sum to 1 (GLF's candidates of one
    anchor with flat residuals) gives exactly one.
    """
    if weights.ndim != 1:
        raise ValueError(f"weights must be 1-D, got shape {tuple(weights.shape)}")
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError("weights must be finite and >= 0")
    dev = generator.device
    cdf = torch.cumsum(capped_inclusion(weights, n).to(dev), 0)
    cdf *= n / cdf[-1]  # exactly n at the end, so every mark (< n) falls inside
    u = torch.rand(1, generator=generator, device=dev, dtype=torch.float64)
    marks = u + torch.arange(n, device=dev, dtype=torch.float64)
    # right=True: a mark on a boundary belongs to the next member of positive length
    return torch.searchsorted(cdf, marks, right=True)


def effective_sample_size(weights: Tensor) -> float:
    """Kish's effective sample size of the weights divided by their number, in (0, 1]:
    1 for uniform weights, near 0 when a few points take all the mass (a collapsed draw)."""
    w = weights.detach().to(torch.float64)
    return float(w.sum() ** 2 / (w.numel() * (w**2).sum()))


def inclusion_scale(weights: Tensor, n: int, iterations: int = 100) -> float:
    """The t with sum_j (1 - exp(-t w_j)) = n: for a draw of n without replacement by the
    exponential race, item j is included with probability close to 1 - exp(-t w_j) (Rosén's
    approximation for order sampling, accurate when the pool is much larger than n)."""
    w = weights.detach().to(torch.float64)
    positive = int((w > 0).sum())
    if n >= positive:
        return math.inf  # every positive-weight item is drawn

    def expected(t: float) -> float:
        return float((-torch.expm1(-t * w)).sum())

    lo, hi = 0.0, n / float(w.sum())
    while expected(hi) < n:
        lo, hi = hi, 2 * hi
    for _ in range(iterations):  # bisection: expected(t) is increasing in t
        mid = 0.5 * (lo + hi)
        if expected(mid) < n:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-12 * hi:
            break
    return 0.5 * (lo + hi)


def importance_weights(
    weights: Tensor, idx: Tensor, *, replace: bool, inclusion: Tensor | None = None
) -> Tensor:
    """Loss weights 1/(N p_i) for the points drawn at ``idx`` with p ∝ ``weights``, normalised
    to mean 1 over the drawn points (self-normalised importance sampling).

    A loss mean(w_i r_i^2) over points drawn from a uniform candidate set then estimates the
    candidate set's plain mean of r^2, i.e. the uniform-density loss, instead of the p-weighted
    one. Self-normalising divides out the unknown constants (sum of weights, pool size) at the
    price of an O(1/N) bias. With replacement, a point's expected multiplicity is N p_i, so the
    weight is 1/p_i. Without replacement the inclusion probability pi_i saturates for heavy
    points (it cannot exceed 1), and 1/p_i would over-weight the light ones; the weight is
    1/pi_i with pi_i = 1 - exp(-t w_i) (:func:`inclusion_scale`), which tends to 1/p_i when
    N p_i << 1. ``inclusion``: the pool's exact inclusion probabilities where the draw knows
    them (:func:`systematic_draw`'s are :func:`capped_inclusion`'s), used instead.
    Returns float64 on ``idx``'s device.
    """
    w = weights.detach().to(idx.device, torch.float64)
    if inclusion is not None:
        pi = inclusion.to(idx.device, torch.float64)[idx]
    elif replace:
        pi = w[idx]
    else:
        t = inclusion_scale(w, int(idx.numel()))
        pi = torch.ones_like(w[idx]) if math.isinf(t) else -torch.expm1(-t * w[idx])
    pi = pi.clamp(min=torch.finfo(torch.float64).tiny)
    inv = pi.min() / pi  # in (0, 1]: never overflows, whatever the weights' dynamic range
    return inv / inv.mean()
