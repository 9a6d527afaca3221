"""RAR-D: residual-based adaptive refinement with distribution (Wu, Zhu, Tan, Kartha, Lu, CMAME
2023; code lu-group/pinn-sampling).

The training set grows: every resample scores a fresh uniform candidate set with the exact
residual and *adds* ``n_add`` of its points, drawn without replacement with RAD's density
p ∝ r^k / mean(r^k) + c (the authors' defaults for RAR-D: k = 2, c = 0). The current points are
kept. Cost: ``n_candidates`` residual evaluations per resample; the set, and every training step
after it, grows by ``n_add`` points per resample.

The authors start from half their point budget N and add N/200 per round. ``initial_points``
draws the ``n`` it is asked for, so to follow them pass ``n_points = N/2`` to the trainer and
``n_add = N/200`` here. Our default ``n_add`` is max(1, n_0 // 200), with n_0 the number of points
at ``init_state`` (so, without an explicit ``n_add``, half the authors' rate under the N/2
convention).
"""

from __future__ import annotations

from typing import final

import torch

from glfpinn._checks import check_int, check_positive
from glfpinn.samplers.base import Resampled, SamplerState, SamplingContext
from glfpinn.samplers.refinement import Refinement
from glfpinn.samplers.select import effective_sample_size, rad_weights, weighted_draw

__all__ = ["RARD"]


@final
class RARD(Refinement):
    """RAR-D: add ``n_add`` points per resample, drawn from scored uniform candidates.

    Args:
        k, c: density exponent and offset (the authors' RAR-D defaults 2 and 0).
        n_candidates: uniform candidates scored per resample (the authors' 100,000).
        n_add: points added per resample; None: max(1, n_0 // 200), n_0 the initial size.
    """

    def __init__(
        self,
        k: float = 2.0,
        c: float = 0.0,
        n_candidates: int = 100_000,
        n_add: int | None = None,
    ) -> None:
        check_positive("k", k, allow_zero=True)
        check_positive("c", c, allow_zero=True)
        self.k = k
        self.c = c
        self.n_candidates = check_int("n_candidates", n_candidates, minimum=1)
        self.n_add = None if n_add is None else check_int("n_add", n_add, minimum=1)

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        n_add = self.points_to_add(state, ctx.n)
        cand, r = self.scored_candidates(ctx)
        w = rad_weights(r, self.k, self.c)
        idx = weighted_draw(w, n_add, ctx.generator).to(cand.device)
        pts = torch.cat([ctx.points, cand[idx]])
        info = {"ess": effective_sample_size(w), "n_added": float(n_add)}
        return Resampled(pts, state, info=info)
