"""RAD: residual-based adaptive distribution (Wu, Zhu, Tan, Kartha, Lu, CMAME 2023).

Score a dense uniform candidate set with the exact residual, draw the next N points from it with
p ∝ r^k / mean(r^k) + c (without replacement, as the authors' code does), replace the whole set.
Its cost is the scoring pass: ``n_candidates`` residual evaluations per resample.

With ``importance_weights=True`` (ours, after Nabian et al. 2021) each drawn point also gets the
loss weight 1/(N p_i), self-normalised to mean 1, so the weighted loss estimates the
uniform-density loss rather than the p-weighted one.
"""

from __future__ import annotations

from typing import final

from glfpinn._checks import check_bool, check_int, check_positive
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.samplers.select import (
    effective_sample_size,
    importance_weights,
    rad_weights,
    weighted_draw,
)

__all__ = ["RAD"]


@final
class RAD(Sampler):
    """``n_candidates`` defaults to the authors' 100,000 (their 2-D setting).
    ``importance_weights`` returns loss weights 1/(N p_i) normalised to mean 1 (see the module)."""

    def __init__(
        self,
        k: float = 1.0,
        c: float = 1.0,
        n_candidates: int = 100_000,
        replace: bool = False,
        importance_weights: bool = False,
    ) -> None:
        check_positive("k", k, allow_zero=True)
        check_positive("c", c, allow_zero=True)
        self.k = k
        self.c = c
        self.n_candidates = check_int("n_candidates", n_candidates, minimum=1)
        self.replace = check_bool("replace", replace)
        self.importance_weights = check_bool("importance_weights", importance_weights)

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        cand = ctx.domain.sample(self.n_candidates, ctx.generator, dtype=ctx.points.dtype)
        cand = cand.to(ctx.points.device)
        w = rad_weights(ctx.score(cand, type(self).__name__), self.k, self.c)
        idx = weighted_draw(w, ctx.n, ctx.generator, replace=self.replace)
        pts = cand[idx.to(cand.device)]
        info = {"ess": effective_sample_size(w)}
        if not self.importance_weights:
            return Resampled(pts, state, info=info)
        iw = importance_weights(w, idx, replace=self.replace)
        info["iw_ess"] = effective_sample_size(iw)
        return Resampled(pts, state, weights=iw.to(pts.device, pts.dtype), info=info)
