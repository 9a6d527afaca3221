"""Non-adaptive baselines: a fixed set, and a fresh (quasi-)random set at every resample."""

from __future__ import annotations

from typing import final

from glfpinn._checks import check_choice
from glfpinn.domains import SAMPLING_METHODS
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext

__all__ = ["Uniform", "UniformResample"]


@final
class Uniform(Sampler):
    """A fixed training set drawn once (uniform, Sobol, Halton or LHS) and never changed."""

    stochastic = False

    def __init__(self, method: str = "uniform") -> None:
        self.method = check_choice("method", method, SAMPLING_METHODS)

    def initial_points(self, n, domain, generator, dtype):
        return domain.sample(n, generator, method=self.method, dtype=dtype)

    def resamples_per_rank(self) -> bool:
        return True  # each rank's share is a uniform set of its own

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        return Resampled(ctx.points, state)


@final
class UniformResample(Sampler):
    """A fresh set at every resample; QMC sequences are re-scrambled each time, so the points
    really change (a fixed, unscrambled sequence would return the same set forever)."""

    def __init__(self, method: str = "uniform") -> None:
        self.method = check_choice("method", method, SAMPLING_METHODS)

    def initial_points(self, n, domain, generator, dtype):
        return domain.sample(n, generator, method=self.method, dtype=dtype)

    def resamples_per_rank(self) -> bool:
        return True  # each rank draws a fresh uniform share from its own generator

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        pts = ctx.domain.sample(ctx.n, ctx.generator, method=self.method, dtype=ctx.points.dtype)
        return Resampled(pts.to(ctx.points.device), state)
