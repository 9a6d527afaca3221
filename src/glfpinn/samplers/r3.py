"""R3: Retain-Resample-Release sampling (Daw, Bu, Wang, Perdikaris, Karpatne, ICML 2023; code
arkadaw9/r3_sampling_icml2023).

An evolutionary rule on the current population: the points whose residual exceeds the
population's mean residual are retained, every other point is released and replaced by a fresh
uniform one. N stays fixed, and the residuals are the free ones of the last training step, so a
resample costs no residual evaluation at all. High-residual points accumulate over rounds while
the replacements keep exploring the whole domain.

Ours: ``method`` for the replacements (uniform like the authors, or a re-scrambled QMC set), the
strict ">" (with all residuals equal nothing is retained and the set is redrawn), and the mean
computed in float64 (robust to huge residuals). The paper's causal variant (a time gate for
evolution equations) is not implemented.
"""

from __future__ import annotations

from typing import final

import torch

from glfpinn._checks import check_choice
from glfpinn.domains import SAMPLING_METHODS
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext

__all__ = ["R3"]


@final
class R3(Sampler):
    """R3: keep the points with above-mean residual, redraw the rest.

    Args:
        method: how replacements are drawn: "uniform" (the authors'), "sobol", "halton", "lhs".
    """

    def __init__(self, method: str = "uniform") -> None:
        self.method = check_choice("method", method, SAMPLING_METHODS)

    def retained(self, residuals: torch.Tensor) -> torch.Tensor:
        """Mask of the points R3 keeps: residual strictly above the mean residual."""
        r = residuals.detach().abs().to(torch.float64)
        return r > r.mean()

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        keep = self.retained(ctx.current_residuals(type(self).__name__)).to(ctx.points.device)
        n_new = ctx.n - int(keep.sum())
        fresh = ctx.domain.sample(n_new, ctx.generator, method=self.method, dtype=ctx.points.dtype)
        pts = torch.cat([ctx.points[keep], fresh.to(ctx.points.device)])
        return Resampled(pts, state, info={"kept_fraction": 1.0 - n_new / max(ctx.n, 1)})
