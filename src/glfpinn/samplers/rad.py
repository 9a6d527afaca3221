"""RAD: residual-based adaptive distribution (Wu, Zhu, Tan, Kartha, Lu, CMAME 2023).

Score a dense uniform candidate set with the exact residual, draw the next N points from it with
p ∝ r^k / mean(r^k) + c (without replacement, as the authors' code does), replace the whole set.
Its cost is the scoring pass: ``n_candidates`` residual evaluations per resample.
"""

from __future__ import annotations

from typing import final

from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext, check_positive
from glfpinn.samplers.select import effective_sample_size, rad_weights, weighted_draw

__all__ = ["RAD"]


@final
class RAD(Sampler):
    """``n_candidates`` defaults to the authors' 100,000 (their 2-D setting)."""

    def __init__(
        self, k: float = 1.0, c: float = 1.0, n_candidates: int = 100_000, replace: bool = False
    ) -> None:
        check_positive("k", k, allow_zero=True)
        check_positive("c", c, allow_zero=True)
        check_positive("n_candidates", n_candidates)
        self.k = k
        self.c = c
        self.n_candidates = int(n_candidates)
        self.replace = replace

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        cand = ctx.domain.sample(self.n_candidates, ctx.generator, dtype=ctx.points.dtype)
        cand = cand.to(ctx.points.device)
        w = rad_weights(ctx.residual_fn(cand), self.k, self.c)
        idx = weighted_draw(w, ctx.n, ctx.generator, replace=self.replace)
        return Resampled(cand[idx.to(cand.device)], state, info={"ess": effective_sample_size(w)})
