"""Settle (ours): resample while the residual's ranking persists, else settle on a quiet set.

Design rounds 3-5 of robust GLF (docs/results.md) found two kinds of problem. On sharp moving
fronts (Burgers, Allen-Cahn) the points must follow the residual; on smooth solutions and in
10-D (Helmholtz, Laplace, the dispersive problem) a set that never moves beats every sampler
that moves its points, and no residual-driven rule found that out. What tells them apart is
whether training keeps the residual's pattern: on a front the points that were hard at one
resample are still the hard ones at the next; on a smooth problem each stretch of training
reshuffles which points are hard, and a sampler that follows the residual moves its points for
nothing.

So ``Settle(inner)`` resamples with ``inner`` and measures, at each resample, the
*persistence*: the Spearman rank correlation between the residual each point was drawn with
(its nearest previous point's residual at the last resample: for GLF, its anchor's) and its
residual now. After ``watch`` measured resamples it decides once: if their mean persistence is
below ``below``, the run settles: by default (``then="initial"``) on its initial uniform set,
which it keeps to the end; with ``then="uniform-resample"`` it draws a fresh uniform set at
every later resample instead. Else ``inner`` resamples to the end. The decision is made once
because a held set's persistence is not comparable (the same points, not a fresh draw), and
because an L-BFGS stage reshuffles every problem's ranking alike (measured: docs/results.md,
"Design round 7").

With ``watch_on="initial"`` (design round 12) nothing moves before the decision: the initial set
is held and its own residuals are compared point for point, so a problem that settles has
trained on the initial set alone, as a fixed uniform set would, instead of on the sets ``inner``
drew during the watch. A held set's persistence runs higher than a moved one's (its worst-fitted
points stay its worst), so it takes its own ``below``.

The fresh draws were tried for what the initial set lost (round 7: a fixed set of 500 points in
15-D is worse than a moving one); they mended that and gave back Helmholtz, where the fixed set
leads (docs/results.md, "Design round 8").

``overfit=g`` (design round 13) tells the two apart as a held-out loss would: at every resample
at which a settled run has trained on its initial set, it draws a fresh uniform set of the same
size, scores it (one residual evaluation of N points), and logs ``holdout_ratio``, the fresh
set's RMS residual over the held set's. A ratio above ``g`` says training has fitted the held
points and not the PDE between them (500 points in 10-D and 20-D); from then on the run trains
on fresh uniform draws, starting with the one just scored. The switch, like the decision, is
made once. Nothing is measured before the decision, so a run that never settles is the same,
draw for draw, without ``overfit``.
"""

from __future__ import annotations

import math
import sys
from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_between, check_choice, check_int
from glfpinn.domains import Domain
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext, check_inner
from glfpinn.samplers.glf_options import idw
from glfpinn.samplers.uniform import UniformResample

__all__ = [
    "Settle",
    "SETTLE_BELOW",
    "SETTLE_THEN",
    "SETTLE_WATCH",
    "SETTLE_WATCH_ON",
    "carried_residuals",
    "holdout_ratio",
    "persistence",
]

#: Default threshold on the mean persistence: between the design problems' two groups (seeds
#: 100-102: the fronts 0.41-0.62, but for one Allen-Cahn seed whose front formed late, 0.29; the
#: smooth and high-dimensional problems 0.02-0.25).
SETTLE_BELOW = 1 / 3
#: Default number of measured resamples before the decision.
SETTLE_WATCH = 2
#: What a settled run does at each later resample: keep its initial set, or draw a fresh
#: uniform one.
SETTLE_THEN = ("initial", "uniform-resample")
#: Which set the persistence is measured on before the decision: the one ``inner`` moves, or the
#: initial set, held still.
SETTLE_WATCH_ON = ("inner", "initial")


def carried_residuals(points: Tensor, residuals: Tensor, new_points: Tensor) -> Tensor:
    """The residual each of ``new_points`` carries into the next persistence: its nearest
    current point's (for GLF, its anchor's; for a fresh uniform point, its region's now). An
    exact nearest-point search, chunked, of len(new_points) x len(points) distances."""
    return idw(points, residuals.to(points.dtype), new_points, 1)


def persistence(before: Tensor, now: Tensor) -> float:
    """Spearman rank correlation of two residual vectors (ties ranked by their mean rank); 0
    where either is constant, as a ranking that says nothing cannot persist."""
    from scipy.stats import spearmanr

    a = before.detach().to("cpu", torch.float64).numpy()
    b = now.detach().to("cpu", torch.float64).numpy()
    if a.min() == a.max() or b.min() == b.max():
        return 0.0
    rho = float(spearmanr(a, b).statistic)
    return rho if math.isfinite(rho) else 0.0


def holdout_ratio(fresh: Tensor, held: Tensor) -> float:
    """RMS of ``fresh`` residuals over RMS of ``held`` ones: the loss's square root at points
    training never saw over the same at the points it trains on (1 where both vanish)."""
    fresh_ms = float(fresh.detach().double().square().mean())
    held_ms = float(held.detach().double().square().mean())
    if held_ms == 0.0:
        return 1.0 if fresh_ms == 0.0 else math.inf
    return math.sqrt(fresh_ms / held_ms)


@final
class Settle(Sampler):
    """Resample with ``inner`` while the residual's ranking persists (see the module).

    Args:
        inner: the sampler that moves the points; it must keep their number.
        below: settle when the mean persistence over the watched resamples is below this, in
            [-1, 1] (-1: never settle).
        watch: resamples measured before the decision (the first resample has nothing to
            measure against, so the decision comes at resample ``watch + 1``).
        then: what a settled run does at each later resample: ``"initial"`` returns to the
            initial set and keeps it, ``"uniform-resample"`` draws a fresh uniform set.
        watch_on: the set the persistence is measured on before the decision: ``"inner"``
            (``inner`` moves the points from the first resample) or ``"initial"`` (the initial
            set is held still until the decision, and ``inner`` starts only if the ranking
            persisted: look before moving). A held set's persistence runs higher than a moved
            one's, so ``below`` needs another value (see the module).
        overfit: with ``then="initial"``, measure ``holdout_ratio`` at every resample at which
            a settled run has trained on its initial set (from the decision on with
            ``watch_on="initial"``, from the resample after it with ``"inner"``), and leave the
            set for fresh uniform draws once the ratio exceeds this (> 1); ``None`` (default)
            neither measures nor leaves. It needs a ``residual_fn``.
    """

    def __init__(
        self,
        inner: Sampler,
        below: float = SETTLE_BELOW,
        watch: int = SETTLE_WATCH,
        then: str = "initial",
        watch_on: str = "inner",
        overfit: float | None = None,
    ) -> None:
        self.inner = check_inner("Settle", inner, "returns to the initial set")
        self.below = check_between("below", below, -1, 1)
        self.watch = check_int("watch", watch, minimum=1)
        self.then = check_choice("then", then, SETTLE_THEN)
        self.watch_on = check_choice("watch_on", watch_on, SETTLE_WATCH_ON)
        if overfit is not None:
            if isinstance(overfit, bool) or not isinstance(overfit, int | float) or not overfit > 1:
                raise ValueError(f"overfit={overfit!r} must be a number above 1, or None")
            if then != "initial":
                raise ValueError(f"overfit={overfit!r} watches a held set; it needs then='initial'")
        self.overfit = None if overfit is None else float(overfit)
        self._fresh = UniformResample()

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return self.inner.stochastic

    def initial_points(
        self, n: int, domain: Domain, generator: torch.Generator, dtype: torch.dtype
    ) -> Tensor:
        return self.inner.initial_points(n, domain, generator, dtype)

    def init_state(self, points: Tensor) -> SamplerState:
        return {"inner": self.inner.init_state(points), "initial": points.clone(), "measured": []}

    def _quiet_set(
        self, ctx: SamplingContext, state: SamplerState, info: dict[str, float], held: bool
    ) -> tuple[Tensor, SamplerState]:
        """A settled run's next points (on the run's current device and in its current dtype: a
        stage may have changed it since the initial set was drawn) and its state: a fresh
        uniform set, or the initial set until ``overfit`` finds it overfitted, when the fresh
        draw that found it out takes its place. ``held``: the current points are the initial
        set, trained on, so their residuals are the held set's (not at a decision after
        ``inner`` moved the points)."""
        if self.then == "uniform-resample" or state.get("overfit"):
            return self._fresh.resample(ctx, {}).points, state
        initial = self._initial(ctx, state)
        if self.overfit is None or not held:
            return initial, state
        fresh = self._fresh.resample(ctx, {}).points
        ratio = holdout_ratio(
            ctx.score(fresh, "Settle(overfit=...)"), ctx.current_residuals("Settle")
        )
        info["holdout_ratio"] = min(ratio, sys.float_info.max)  # a vanishing held loss: inf
        if ratio > self.overfit:
            info["overfit"] = 1.0
            return fresh, {**state, "overfit": True}
        return initial, state

    @staticmethod
    def _initial(ctx: SamplingContext, state: SamplerState) -> Tensor:
        """The initial set, on the run's current device and in its current dtype."""
        return state["initial"].to(device=ctx.points.device, dtype=ctx.points.dtype)

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        """The next points, and in ``info``: ``persistence`` (when measured), ``settled`` (1
        from the decision to settle on), ``holdout_ratio`` (with ``overfit`` set, while a
        settled run holds its initial set), ``overfit`` (1 at the switch to fresh draws), and
        ``inner``'s own diagnostics."""
        if not state:  # called without init_state: the current points are the initial set
            state = self.init_state(ctx.points)
        if state.get("settled"):
            info = {"settled": 1.0}
            return Resampled(*self._quiet_set(ctx, state, info, held=True), info=info)
        r = ctx.current_residuals("Settle")
        measured = list(state["measured"])
        info: dict[str, float] = {}
        if "carried" in state:
            measured.append(persistence(state["carried"], r))
            info["persistence"] = measured[-1]
        if len(measured) == self.watch and sum(measured) / self.watch < self.below:
            settled = {k: v for k, v in state.items() if k != "carried"}
            settled.update(measured=measured, settled=True)
            info["settled"] = 1.0
            held = self.watch_on == "initial"
            return Resampled(*self._quiet_set(ctx, settled, info, held=held), info=info)
        if self.watch_on == "initial" and len(measured) < self.watch:
            # look before moving: the initial set stays, and the next persistence compares its
            # residuals now with its residuals then, point for point
            held = {**state, "measured": measured, "carried": r.detach().clone()}
            return Resampled(self._initial(ctx, state), held, info={**info, "settled": 0.0})
        out = self.inner.resample(ctx, state["inner"])
        new_state = {**state, "inner": out.state, "measured": measured}
        if len(measured) < self.watch:
            # an N x N search, so only while the decision is still to come
            new_state["carried"] = carried_residuals(ctx.points, r, out.points)
        else:
            new_state.pop("carried", None)
        return Resampled(
            out.points, new_state, weights=out.weights, info={**out.info, **info, "settled": 0.0}
        )
