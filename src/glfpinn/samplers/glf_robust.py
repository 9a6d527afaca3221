"""Robust GLF (ours): GLF that keeps its set spread on a PDE nobody tuned it for.

The paper's GLF (:class:`~glfpinn.samplers.glf.GLF`, registry name ``glf``) steps h = alpha /
(r + eps): its alpha carries the residual's units. Where residuals are of order 1-100 the
points move about 1e-5 per resample and the RAD-style draw duplicates the hot anchors until the
set collapses into clumps (issue #23: 0.80 against RAD's 0.070 on Helmholtz, 3.0 against 0.012
on DeepXDE's diffusion-reaction). Robust GLF is the same global-local fusion with three changes,
each a parameter, chosen on single-seed probes of Burgers and Helmholtz, then run on seven
problems that took part in the design and two that did not (docs/samplers.md, "Robust GLF";
docs/results.md, "Robust GLF: a sampler to pick blind"):

1. a scale-free step, h_i = alpha D / (r_i / s + eps) with D the domain's diameter and s the
   residuals' median (``glf-scaled``'s): an anchor with the median residual spreads its
   candidates over ``alpha`` = 2% of the diameter whatever the PDE's units;
2. a floor on h at ``h_min`` times the set's uniform spacing (V / N)^(1/d): the hottest anchors'
   clouds never shrink below the scale the N points can resolve, so they cannot pile up into
   clumps of near-copies;
3. an exploration share: ``explore`` of the N points are drawn fresh and uniform at every
   resample. They join the anchors of the next round, so a region that becomes hard later is
   found by the local search (which a fixed :class:`~glfpinn.samplers.mix.Mix` share would not
   do: its uniform part never seeds the GLF part), and the set is pulled back towards the whole
   domain at every resample.

The rest is the paper's: M = 3 candidates per anchor that inherit its residual (no derivative
evaluation), RAD weights r^k / mean(r^k) + c, a draw without replacement (at most M copies of
one anchor per round).
"""

from __future__ import annotations

from typing import final

from glfpinn.samplers.glf import GLF, RELATIVE_ALPHA

__all__ = ["RobustGLF", "ROBUST_H_MIN", "ROBUST_EXPLORE"]

#: Default floor on h, as a fraction of the uniform spacing (V / N)^(1/d).
ROBUST_H_MIN = 0.25
#: Default share of fresh uniform points per resample.
ROBUST_EXPLORE = 0.1


@final
class RobustGLF(GLF):
    """GLF with a scale-free step, a floor on h and an exploration share (see the module).

    Args:
        M: candidates per anchor (the paper's 3).
        alpha: an anchor with the median residual spreads its candidates over ``alpha`` times
            the domain's diameter (per coordinate).
        h_min: floor on h as a fraction of the uniform spacing (V / N)^(1/d); 0 turns it off.
        explore: share of fresh uniform points per resample, in [0, 1).
        eps, h_max, k, c, replace, draw, global_candidates, fixed, clip, density,
            moved_target: as for :class:`GLF` (with ``moved_target`` alpha is solved at every
            resample and the ``alpha`` given here is unused).
    """

    def __init__(
        self,
        M: int = 3,
        alpha: float = RELATIVE_ALPHA,
        h_min: float = ROBUST_H_MIN,
        explore: float = ROBUST_EXPLORE,
        eps: float = 1e-8,
        h_max: float | None = None,
        k: float = 1.0,
        c: float = 1.0,
        replace: bool = False,
        draw: str = "race",
        global_candidates: float = 0.0,
        fixed: float = 0.0,
        clip: float | None = None,
        density: str = "compound",
        moved_target: float | None = None,
    ) -> None:
        super().__init__(
            M=M,
            alpha=alpha,
            eps=eps,
            h_max=h_max,
            k=k,
            c=c,
            replace=replace,
            alpha_scale="relative",
            h_min=h_min,
            explore=explore,
            draw=draw,
            global_candidates=global_candidates,
            fixed=fixed,
            clip=clip,
            density=density,
            moved_target=moved_target,
        )
