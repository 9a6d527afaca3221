"""Follow (ours): follow the residual as far as its ranking persists, the rest fresh and uniform.

:class:`~glfpinn.samplers.settle.Settle` decides once, after two resamples, between following
the residual and a quiet set; its rounds (docs/results.md, design rounds 7, 8, 12 and 13) found
the decision right on most runs and costly where it came late (a front that formed after the
watch) or went the wrong way on one seed. ``Follow(inner)`` decides at every resample and by
degree: ``inner`` places a share ``s`` of the N points and the rest are drawn fresh and uniform,
with

    s = clip((rho_bar - low) / (high - low), 0, 1),

``rho_bar`` the mean of every persistence measured so far in the run
(:func:`~glfpinn.samplers.settle.persistence`: the Spearman correlation between the residual
each point was drawn with, its nearest previous point's, and its residual now). Before the
first measurement the share is ``start``.

Why these choices, from robust GLF's and uniform resampling's persistence at every resample on
the seven design problems (seed 100, the medium budget; docs/results.md, "Design round 14"):

- in the Adam stage the fronts (Burgers, Allen-Cahn once its front has formed) measure 0.55-0.9
  on robust GLF's sets and 0.58-0.83 on fresh uniform ones, diffusion-reaction 0.3-0.73, and
  Helmholtz, Laplace and the 10-D and 20-D problems 0.0-0.37 on robust GLF's sets and mostly
  below 0.35 on fresh uniform ones: ``low`` = 0.3 and ``high`` = 0.6 lie between;
- an L-BFGS stage drops every problem's persistence (Burgers' robust-GLF sets to 0.0-0.27), so
  the last measurement alone would stop following a front for the quasi-Newton stage; the mean
  over the run keeps what the Adam stage found and still moves with a ranking that changes for
  good (a front that forms late raises it resample by resample);
- a share, not a switch: a problem between the two kinds gets both kinds of point.

The fresh points are anchors for ``inner`` at the next resample (every current point is), so a
front that forms later is found by the local search too. The share is applied by keeping a
random subset of ``inner``'s N points (drawn with the run's generator), so any ``inner`` that
keeps the number of points works; its loss weights, if any, stay with its points and the fresh
points weigh 1. State that ``inner`` keeps row by row (PACMANN's ``keep_moments``, GLF's
``density="rad"``) is not rearranged with the points; robust GLF, the default, keeps none.

What it did (docs/results.md, "Design round 14"): with Adam-driven resampling it is within 10% of
uniform resampling's median on all seven design problems and robust GLF's equal on six unseen
ones; under quasi-Newton rounds (the frontier profile) every problem's persistence runs lower,
Burgers' included, the share stays near 0 and it loses Burgers to robust GLF by 39x. So it is
an option for runs that resample during an Adam stage, not the default.

Cost: one nearest-point search of at most ``probe`` new points against the N current ones per
resample (chunked like GLF's idw surrogate), and a Spearman correlation; no residual
evaluation. With N above ``probe`` the measured points are a random subset.
"""

from __future__ import annotations

from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_between, check_int
from glfpinn.domains import Domain
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext, check_inner
from glfpinn.samplers.settle import carried_residuals, persistence

__all__ = ["Follow", "FOLLOW_HIGH", "FOLLOW_LOW", "FOLLOW_PROBE", "follow_share"]

#: Mean persistence at or below which no point follows the residual (see the module).
FOLLOW_LOW = 0.3
#: Mean persistence at or above which every point follows it.
FOLLOW_HIGH = 0.6
#: Most points whose persistence is measured at one resample.
FOLLOW_PROBE = 2048


def follow_share(rho_bar: float, low: float = FOLLOW_LOW, high: float = FOLLOW_HIGH) -> float:
    """The share of points that follow the residual at a mean persistence ``rho_bar``."""
    return min(1.0, max(0.0, (rho_bar - low) / (high - low)))


@final
class Follow(Sampler):
    """``inner`` places a share of the points that grows with the residual's persistence, the
    rest are fresh and uniform (see the module).

    Args:
        inner: the sampler that follows the residual; it must keep the number of points.
        low: mean persistence at or below which the share is 0, in [-1, 1).
        high: mean persistence at or above which the share is 1, in (low, 1].
        start: the share before the first measurement (the first resample), in [0, 1].
        probe: most points measured per resample (a random subset above it), at least 2.
    """

    def __init__(
        self,
        inner: Sampler,
        low: float = FOLLOW_LOW,
        high: float = FOLLOW_HIGH,
        start: float = 1.0,
        probe: int = FOLLOW_PROBE,
    ) -> None:
        self.inner = check_inner("Follow", inner, "shares N points with fresh uniform ones")
        self.low = check_between("low", low, -1, 1)
        self.high = check_between("high", high, -1, 1)
        if not low < high:
            raise ValueError(f"low={low!r} must be below high={high!r}")
        self.start = check_between("start", start, 0, 1)
        self.probe = check_int("probe", probe, minimum=2)

    def initial_points(
        self, n: int, domain: Domain, generator: torch.Generator, dtype: torch.dtype
    ) -> Tensor:
        return self.inner.initial_points(n, domain, generator, dtype)

    def init_state(self, points: Tensor) -> SamplerState:
        return {"inner": self.inner.init_state(points), "measured": []}

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        """The next points, and in ``info``: ``persistence`` (from the second resample on),
        ``follow_share`` (the share ``inner`` placed) and ``inner``'s own diagnostics."""
        if not state:  # called without init_state
            state = self.init_state(ctx.points)
        r = ctx.current_residuals("Follow")
        measured = list(state["measured"])
        info: dict[str, float] = {}
        if "carried" in state:
            at = state["probed"]
            now = r if at is None else r[at.to(r.device)]
            measured.append(persistence(state["carried"], now))
            info["persistence"] = measured[-1]
        share = self.start
        if measured:
            share = follow_share(sum(measured) / len(measured), self.low, self.high)
        out = self.inner.resample(ctx, state["inner"])
        n = out.points.shape[0]
        n_follow = round(share * n)
        points, weights = out.points, out.weights
        if n_follow < n:
            kept = torch.randperm(n, generator=ctx.generator, device=ctx.generator.device)
            kept = kept[:n_follow].to(points.device)
            fresh = ctx.domain.sample(n - n_follow, ctx.generator, dtype=points.dtype)
            points = torch.cat([points[kept], fresh.to(points.device)])
            if weights is not None:
                weights = torch.cat([weights[kept], weights.new_ones(n - n_follow)])
        probed = None
        if n > self.probe:
            probed = torch.randperm(n, generator=ctx.generator, device=ctx.generator.device)
            probed = probed[: self.probe].cpu()
        query = points if probed is None else points[probed.to(points.device)]
        new_state = {
            "inner": out.state,
            "measured": measured,
            "carried": carried_residuals(ctx.points, r, query),
            "probed": probed,
        }
        info["follow_share"] = n_follow / n
        return Resampled(points, new_state, weights=weights, info={**out.info, **info})
