"""Weighted draws shared by every sampler that picks points by weight.

``torch.multinomial`` refuses more than 2^24 categories; the draw without replacement here is an
exponential race (equivalently Gumbel top-k): key_j = E_j / w_j with E_j ~ Exp(1), keep the n
smallest keys. That is exactly sequential sampling without replacement proportional to w, works
for any pool size, and costs one sort-free top-k.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["rad_weights", "weighted_draw", "effective_sample_size"]


def rad_weights(residuals: Tensor, k: float, c: float) -> Tensor:
    """RAD's density weights w = r^k / mean(r^k) + c, computed in log space.

    r^k overflows for large k or large residuals; log-space normalisation never does. When every
    residual is zero the first term is undefined: it is taken as 0 (so w = c), and as 1 when
    c = 0 too, so the draw is uniform and every weight stays finite.
    """
    r = residuals.detach().abs().to(torch.float64)
    if k == 0:
        ratio = torch.ones_like(r)
    elif not bool((r > 0).any()):
        ratio = torch.zeros_like(r) if c > 0 else torch.ones_like(r)
    else:
        logs = k * torch.log(r)  # -inf where r == 0, which exp maps back to 0
        log_mean = torch.logsumexp(logs, dim=0) - math.log(r.numel())
        ratio = torch.exp(logs - log_mean)
    return ratio + c


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


def effective_sample_size(weights: Tensor) -> float:
    """Kish's effective sample size of the weights divided by their number, in (0, 1]:
    1 for uniform weights, near 0 when a few points take all the mass (a collapsed draw)."""
    w = weights.detach().to(torch.float64)
    return float(w.sum() ** 2 / (w.numel() * (w**2).sum()))
