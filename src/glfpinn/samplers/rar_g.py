"""RAR-G: greedy residual-based adaptive refinement (Lu, Meng, Mao, Karniadakis, SIAM Review
2021, "DeepXDE"; code lululxvi/deepxde examples).

The training set grows: every resample scores a fresh uniform candidate set with the exact
residual and adds its ``n_add`` highest-residual points; the current points are kept. Cost:
``n_candidates`` residual evaluations per resample.

Ours: the default ``n_add`` = max(1, n_0 // 200) (RAR-D's rate, so the two compare at equal
growth; DeepXDE's Burgers example adds one point per round) and no stopping threshold on the mean
residual (DeepXDE's example stops adding once it falls below 0.005; here the schedule decides).
Ties between equal residuals go to the lower candidate index.
"""

from __future__ import annotations

from typing import final

import torch

from glfpinn._checks import check_int
from glfpinn.samplers.base import Resampled, SamplerState, SamplingContext
from glfpinn.samplers.refinement import Refinement

__all__ = ["RARG"]


@final
class RARG(Refinement):
    """RAR-G: add the ``n_add`` highest-residual points of scored uniform candidates.

    Args:
        n_candidates: uniform candidates scored per resample (DeepXDE's example: 100,000).
        n_add: points added per resample; None: max(1, n_0 // 200), n_0 the initial size.
    """

    def __init__(self, n_candidates: int = 100_000, n_add: int | None = None) -> None:
        self.n_candidates = check_int("n_candidates", n_candidates, minimum=1)
        self.n_add = None if n_add is None else check_int("n_add", n_add, minimum=1)

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        n_add = self.points_to_add(state, ctx.n)
        cand, r = self.scored_candidates(ctx)
        # A stable sort makes the choice among tied residuals deterministic on every device.
        order = torch.sort(r, descending=True, stable=True).indices[:n_add]
        pts = torch.cat([ctx.points, cand[order]])
        info = {
            "n_added": float(n_add),
            "added_residual_min": float(r[order].min()),
            "candidate_residual_mean": float(r.to(torch.float64).mean()),
        }
        return Resampled(pts, state, info=info)
