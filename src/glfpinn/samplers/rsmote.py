"""RSmote: residual-based SMOTE oversampling (Luo, Yang, Yuan, Xu, Hao, arXiv 2501.11222).

RSmote treats the high-residual points as the "minority class" and oversamples them with
SMOTE-style interpolation, using only the residuals at the current points (free: no residual
evaluation, memory O(N)). Its exact algorithm is not available to us, so this is standard SMOTE
(Chawla, Bowyer, Hall, Kegelmeyer, JAIR 2002) wrapped in a fixed-size population update. Every
rule below is ours:

1. Rank the current points by residual (ties to the lower index). The top set H is the
   ceil(top_fraction N) highest (at least 2, so every point has a neighbour).
2. The floor(replace_fraction N) lowest-residual points are released (never more than N - |H|,
   so H is always kept).
3. Of the released slots, round(uniform_fraction * released) get fresh uniform points
   (exploration; 0 by default, i.e. pure SMOTE), the rest synthetic points: pick a base x_i
   uniformly from H, one of its ``k_neighbors`` nearest neighbours x_nn in H (Euclidean distance
   over all input coordinates, time included), lambda ~ U(0, 1), and place x_i + lambda
   (x_nn - x_i).
4. A synthetic point lies on a segment between two points of the domain, so it is inside any
   convex domain (a box) up to rounding; on a non-convex one (the L-shape) a segment can cross
   the hole, and such a point is reflected back by ``domain.reflect`` (for the L-shape: mirrored
   across the nearer re-entrant edge), or replaced by a uniform point where reflection fails.

N is conserved; the new set is the kept points (in their old order), then the synthetic ones,
then the uniform ones.
"""

from __future__ import annotations

import math
import numbers
from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_int, short_repr
from glfpinn.samplers.base import (
    Resampled,
    Sampler,
    SamplerState,
    SamplingContext,
    into_domain,
)

__all__ = ["RSmote"]


def _fraction(name: str, value: float, *, allow_zero: bool, allow_one: bool) -> None:
    # Comparisons with NaN are false, so NaN fails ``ok`` like any value out of range.
    ok = (
        isinstance(value, numbers.Real)
        and not isinstance(value, bool)
        and (value >= 0 if allow_zero else value > 0)
        and (value <= 1 if allow_one else value < 1)
    )
    if not ok:
        lo = "[0" if allow_zero else "(0"
        hi = "1]" if allow_one else "1)"
        raise ValueError(
            f"{name}={short_repr(value)} is not allowed; {name} must lie in {lo}, {hi}"
        )


@final
class RSmote(Sampler):
    """SMOTE over the high-residual points, N fixed, no residual evaluations.

    Args:
        top_fraction: fraction q of the points, by residual, that form the high set H.
        k_neighbors: SMOTE's k (Chawla et al.'s default 5), neighbours searched within H.
        replace_fraction: fraction of all points, the lowest-residual ones, replaced per
            resample; top_fraction + replace_fraction must not exceed 1.
        uniform_fraction: share of the replaced points drawn uniformly instead of by SMOTE.
        chunk: bases per distance block in the neighbour search (memory chunk x |H|).
    """

    def __init__(
        self,
        top_fraction: float = 0.2,
        k_neighbors: int = 5,
        replace_fraction: float = 0.2,
        uniform_fraction: float = 0.0,
        chunk: int = 4096,
    ) -> None:
        _fraction("top_fraction", top_fraction, allow_zero=False, allow_one=True)
        _fraction("replace_fraction", replace_fraction, allow_zero=True, allow_one=False)
        _fraction("uniform_fraction", uniform_fraction, allow_zero=True, allow_one=True)
        if top_fraction + replace_fraction > 1:
            raise ValueError(
                f"top_fraction={top_fraction!r} + replace_fraction={replace_fraction!r} exceeds 1:"
                " the replaced points must come from outside the high-residual set"
            )
        self.top_fraction = top_fraction
        self.k_neighbors = check_int("k_neighbors", k_neighbors, minimum=1)
        self.replace_fraction = replace_fraction
        self.uniform_fraction = uniform_fraction
        self.chunk = check_int("chunk", chunk, minimum=1)

    def counts(self, n: int) -> tuple[int, int, int]:
        """(|H|, synthetic, uniform) for a population of ``n`` points."""
        n_top = min(n, max(2, math.ceil(self.top_fraction * n)))
        n_rep = min(math.floor(self.replace_fraction * n), n - n_top)
        n_uni = math.floor(self.uniform_fraction * n_rep + 0.5)
        if n_top < 2:  # no neighbour to interpolate towards
            n_uni = n_rep
        return n_top, n_rep - n_uni, n_uni

    def synthesize(
        self, high: Tensor, n: int, generator: torch.Generator
    ) -> tuple[Tensor, Tensor, Tensor]:
        """``n`` SMOTE points from the rows of ``high``: x_i + lambda (x_nn - x_i).

        Returns the points and, per point, the row of its base x_i and of its neighbour x_nn.
        """
        m, dev = high.shape[0], high.device
        k = min(self.k_neighbors, m - 1)
        base = torch.randint(0, m, (n,), generator=generator, device=dev)
        pick = torch.randint(0, k, (n,), generator=generator, device=dev)
        lam = torch.rand(n, 1, generator=generator, device=dev, dtype=high.dtype)
        nb = torch.empty(n, dtype=torch.long, device=dev)
        for start in range(0, n, self.chunk):
            b = base[start : start + self.chunk]
            # Exact distances: the matmul shortcut can misorder near-ties and miss duplicates.
            dist = torch.cdist(high[b], high, compute_mode="donot_use_mm_for_euclid_dist")
            dist[torch.arange(b.numel(), device=dev), b] = math.inf  # a point is not its neighbour
            knn = torch.topk(dist, k, dim=1, largest=False).indices
            # topk's order among equal distances is unspecified; sorting the k indices fixes it.
            knn = torch.sort(knn, dim=1).values
            nb[start : start + self.chunk] = knn.gather(1, pick[start : start + self.chunk, None])[
                :, 0
            ]
        pts = high[base] + lam * (high[nb] - high[base])
        return pts, base, nb

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        r = ctx.current_residuals(type(self).__name__).detach().abs().to(ctx.points.device)
        order = torch.sort(r, descending=True, stable=True).indices
        n_top, n_syn, n_uni = self.counts(ctx.n)
        n_rep = n_syn + n_uni
        keep = torch.sort(order[: ctx.n - n_rep]).values  # everything but the lowest n_rep
        high = ctx.points[order[:n_top]]
        parts = [ctx.points[keep]]
        reflected = 0
        if n_syn:
            syn, _, _ = self.synthesize(high, n_syn, ctx.generator)
            syn, outside = into_domain(syn, ctx.domain, ctx.generator)
            reflected = int(outside.sum())
            parts.append(syn)
        if n_uni:
            fresh = ctx.domain.sample(n_uni, ctx.generator, dtype=ctx.points.dtype)
            parts.append(fresh.to(ctx.points.device))
        info = {
            "n_synthetic": float(n_syn),
            "n_uniform": float(n_uni),
            "reflected_fraction": reflected / max(n_syn, 1),
            "top_residual_min": float(r[order[n_top - 1]]) if n_top else 0.0,
        }
        return Resampled(torch.cat(parts), state, info=info)
