"""GLF: Global-Local Fusion sampling (Luo, Xu, Yang, arXiv 2510.24026).

Each current point (anchor) x_i with residual r_i spawns M Gaussian candidates
x_i + h_i xi, h_i = alpha / (r_i + eps): tight around hard points, wide around easy ones.
Candidates that leave the domain are reflected back. Each candidate inherits its anchor's
residual (the paper's cheap surrogate: no derivative evaluation at all), and the next N points
are drawn from the pool with RAD's weights r^k / mean(r^k) + c.

Choices that are ours, not the paper's (its full text is not available): eps, the cap on h (the
domain's diameter by default), k = c = 1 (RAD's defaults), drawing without replacement, a pool of
candidates only, and alpha's switch from 1e-4 to 1e-3 above 3 input coordinates.

Three options of ours answer the paper's open questions on alpha and M; none changes the
defaults, which are the paper's method (the third, ``moved_target``, is described below):

- ``alpha_scale="relative"``: h_i = alpha D / (r_i / s + eps), with D the domain's diameter and
  s the median of the current residuals (their mean if the median is 0). The paper's h =
  alpha / (r + eps) carries the residual's units, so one alpha moves points by very different
  distances on different problems; here an anchor with the median residual gets h = alpha D
  whatever the units, and alpha (default 0.02) is a fraction of the diameter.
- ``adaptive_M=True``: the N M candidates are shared out unequally, every anchor getting at least
  one and the other N (M - 1) going in proportion to the anchor's RAD weight (largest
  remainders, no random draw); each candidate's weight is divided by M_i / M, so an anchor's
  candidates carry the same total selection weight as the paper's M. Drawing without
  replacement, the paper's pool lets at most M points come from one anchor; this lifts that cap
  for hot anchors and spends fewer candidates on easy ones, at the same pool size.

The mechanics of those options are in ``glf_options.py``, the diagnostics in
``glf_diagnostics.py``: this file is the paper's method and the switches. Each resample also
measures, without touching the run's generator, how far the candidates move
and how many distinct anchors survive (see :meth:`GLF.resample`); with
``diagnose_surrogate=K`` it scores at most K random candidates exactly (K residual evaluations,
counted like any scoring) and reports how well the inherited (and the idw-interpolated)
residuals rank them.

On K ranks (data-parallel training) each rank perturbs its own anchors and draws its N/K
points from its own pool, with the normaliser mean(r^k) all-reduced so that every weight is
the single-process one; only the per-rank quota differs (docs/samplers.md, "On K ranks").

``density="rad"`` (ours) changes what the draw weighs. The paper's draw weighs a candidate by
its anchor's RAD weight, and the anchors are themselves last round's draw: the set's density is
multiplied by the weights at every resample, so where the residual's pattern persists the set
follows w^t, ever more concentrated, where RAD's fresh draw follows w. With ``density="rad"``
each point carries the density it was drawn from, q (1 for uniform points), and a candidate
weighs p(anchor) / q(anchor), p = (r^k / E_u[r^k] + c) / (1 + c) RAD's target density relative
to the uniform one: the set tracks p (sequential Monte Carlo's reweighting), however many rounds
pass, and where the residual has not changed the draw keeps the set where it is. The candidate
is taken to follow its anchor's density, an approximation where h is wide; and the move is not
neutral when h depends on the residual: a cold anchor's wide candidates that land where the
residual is high stay there (their own steps are short), so only with one step for every anchor
does the set hold RAD's density (measured: docs/results.md, design round 10).

``moved_target=m`` (ours) answers the paper's open question on alpha adapted during training: at
every resample alpha is solved (Brent's method on log alpha) so that a fraction m of the
candidates is expected to land at least one uniform spacing (V / N)^(1/d) from its anchor, the
distance at which a candidate leaves its anchor's share of the domain and the set can tell it
from a copy. The expectation is exact for Gaussian steps before reflection, P(|h xi| >= spacing)
being chi-squared's tail in d degrees of freedom, so no state and no controller gain are needed.
A fraction of the diameter (the diagnostic ``moved_fraction``) would mean ever less as d grows
(in 20-D almost every step moves 1% of D); the spacing grows with d as the set thins out.

``importance_weights=True`` (ours) returns loss weights 1/(N p_i), self-normalised to mean 1.
Unlike RAD's, GLF's pool is not uniform (it is a cloud around the anchors), so these weights undo
only the last weighted selection: the weighted loss follows the candidate pool's density, not the
uniform one. An ablation knob, not an unbiased uniform loss.
"""

from __future__ import annotations

import torch
from torch import Tensor

from glfpinn._checks import (
    check_bool,
    check_choice,
    check_fraction,
    check_int,
    check_positive,
)
from glfpinn.samplers import glf_diagnostics as diagnostics
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.samplers.glf_options import (
    RELATIVE_ALPHA,
    alpha_for_moved_target,
    idw,
    largest_remainders,
    rad_density,
    residual_scale,
    uniform_spacing,
)
from glfpinn.samplers.select import (
    capped_inclusion,
    effective_sample_size,
    importance_weights,
    rad_log_mean,
    rad_weights,
    systematic_draw,
    weighted_draw,
)

__all__ = ["GLF", "SURROGATES", "POOLS", "ALPHA_SCALES", "DRAWS", "DENSITIES", "RELATIVE_ALPHA"]

SURROGATES = ("inherit", "exact", "idw")
POOLS = ("candidates", "candidates+anchors")
ALPHA_SCALES = ("absolute", "relative")
DRAWS = ("race", "systematic")
DENSITIES = ("compound", "rad")

#: Above this many input coordinates GLF's default alpha is the paper's high-dimensional 1e-3.
LOW_DIM_LIMIT = 3


class GLF(Sampler):
    """Global-Local Fusion sampling.

    Args:
        M: candidates per anchor (paper: 3); with ``adaptive_M`` their mean number.
        alpha: perturbation scale numerator; None picks the paper's 1e-4 for problems with at
            most 3 input coordinates and 1e-3 above (``alpha_scale="relative"``: 0.02). With
            ``moved_target`` alpha is solved at every resample instead.
        eps: keeps h finite where the residual vanishes (ours; relative to the residuals'
            scale under ``alpha_scale="relative"``).
        h_max: cap on h; None caps it at the domain's diameter (ours).
        k, c: RAD weight exponent and offset.
        replace: draw the next set with replacement (default: without, like RAD's code).
        pool: "candidates" (the paper's reading) or "candidates+anchors".
        surrogate: "inherit" (the paper's GLF), "exact" (GLF-D: exact residual at every
            candidate, N*M evaluations) or "idw" (inverse-distance interpolation of the
            ``neighbors`` nearest anchors' residuals, to study the surrogate's quality).
        neighbors: anchors used by the "idw" surrogate.
        importance_weights: also return loss weights 1/(N p_i), mean 1 (see the module).
        alpha_scale: "absolute" (the paper's h = alpha / (r + eps)) or "relative" (ours:
            h = alpha D / (r / s + eps), D the diameter, s the residuals' median; see the module).
        adaptive_M: share the N M candidates out by the anchors' weights (ours; see the module).
        diagnose_surrogate: score at most this many random candidates exactly and report the
            surrogates' rank correlation with them (0: off; costs that many evaluations, none
            for GLF-D, whose candidates are scored already).
        h_min: floor on h as a fraction of the set's uniform spacing (V / N)^(1/d) (ours, 0:
            off): no anchor's candidates crowd closer than the spacing the set can resolve.
        explore: fraction of the N points drawn fresh and uniform at every resample instead of
            from the pool (ours, in [0, 1); 0: off): a restoring force towards the whole domain.
        draw: how the N points are drawn from the pool without replacement (ours): "race"
            (default: the exponential race, sequential weighted sampling) or "systematic"
            (inclusion probabilities proportional to the weights, capped at 1, and one
            systematic pass over the anchor-major pool: an anchor leaves as many points as its
            weight asks, give or take one, where the race lets equal anchors leave 0 to M).
        global_candidates: fresh uniform candidates added to the pool at every resample, as a
            multiple of N (ours; 0: off). Unlike the local ones they are scored exactly (that
            many residual evaluations, counted), so a hard region far from every anchor can
            win points in one resample, as in RAD's global draw.
        fixed: fraction of the N points that never move (ours, in [0, 1); 0: off): the first
            ``round(fixed * N)`` rows of the set (the initial uniform draw) are kept at every
            resample, and the draw fills the rest. They anchor local search like any point,
            and they give the optimizer a part of its loss that no resample changes.
        clip: weigh no point by a residual above ``clip`` times the anchors' median residual
            (ours; None: off): a singularity the network cannot resolve (a re-entrant corner)
            then draws at most that share of points, however large its residual stays.
        density: what the set's density follows (ours): "compound" (the paper's: each resample
            multiplies it by the RAD weights) or "rad" (each candidate weighs RAD's target
            density over the density its anchor was drawn from, so the set tracks RAD's
            density; see the module).
        moved_target: solve alpha at every resample so that this fraction of the candidates
            is expected to land at least one uniform spacing (V / N)^(1/d) from its anchor
            (ours, in (0, 1); None: alpha fixed): alpha adapted during training (the paper's
            open question on alpha) by a measure that means the same in any dimension; see the
            module.
    """

    def __init__(
        self,
        M: int = 3,
        alpha: float | None = None,
        eps: float = 1e-8,
        h_max: float | None = None,
        k: float = 1.0,
        c: float = 1.0,
        replace: bool = False,
        pool: str = "candidates",
        surrogate: str = "inherit",
        neighbors: int = 4,
        importance_weights: bool = False,
        alpha_scale: str = "absolute",
        adaptive_M: bool = False,
        diagnose_surrogate: int = 0,
        h_min: float = 0.0,
        explore: float = 0.0,
        draw: str = "race",
        global_candidates: float = 0.0,
        fixed: float = 0.0,
        clip: float | None = None,
        density: str = "compound",
        moved_target: float | None = None,
    ) -> None:
        if alpha is not None:
            check_positive("alpha", alpha)
        check_positive("eps", eps)
        if h_max is not None:
            check_positive("h_max", h_max)
        check_positive("k", k, allow_zero=True)
        check_positive("c", c, allow_zero=True)
        self.M = check_int("M", M, minimum=1)
        self.alpha = alpha
        self.eps = eps
        self.h_max = h_max
        self.k = k
        self.c = c
        self.replace = check_bool("replace", replace)
        self.pool = check_choice("pool", pool, POOLS)
        self.surrogate = check_choice("surrogate", surrogate, SURROGATES)
        self.neighbors = check_int("neighbors", neighbors, minimum=1)
        self.importance_weights = check_bool("importance_weights", importance_weights)
        self.alpha_scale = check_choice("alpha_scale", alpha_scale, ALPHA_SCALES)
        self.adaptive_M = check_bool("adaptive_M", adaptive_M)
        self.diagnose_surrogate = check_int("diagnose_surrogate", diagnose_surrogate, minimum=0)
        check_positive("h_min", h_min, allow_zero=True)
        self.h_min = h_min
        self.explore = check_fraction("explore", explore)
        self.draw = check_choice("draw", draw, DRAWS)
        if self.draw == "systematic" and self.replace:
            raise ValueError("draw='systematic' draws without replacement; it needs replace=False")
        check_positive("global_candidates", global_candidates, allow_zero=True)
        self.global_candidates = global_candidates
        self.fixed = check_fraction("fixed", fixed)
        if clip is not None:
            check_positive("clip", clip)
        self.clip = clip
        self.density = check_choice("density", density, DENSITIES)
        self.moved_target = (
            None
            if moved_target is None
            else check_fraction("moved_target", moved_target, allow_zero=False)
        )
        if self.explore + self.fixed >= 1:
            raise ValueError(
                f"explore={explore} and fixed={fixed} leave no point to draw; "
                "their sum must be below 1"
            )
        if self.importance_weights and (self.explore > 0 or self.fixed > 0):
            # the weights 1 / (N p_i) describe the drawn points only
            raise ValueError(
                f"importance_weights=True needs explore=0 and fixed=0; got explore={explore}, "
                f"fixed={fixed}"
            )
        if self.importance_weights and self.density == "rad":
            # 1 / (N p_i) undoes the draw from a pool whose own density is not the uniform one
            raise ValueError("importance_weights=True needs density='compound'; got density='rad'")

    def resamples_per_rank(self) -> bool:
        """On K ranks each rank perturbs its own anchors and draws its N/K points from its own
        pool, weighted by RAD's weights with the normaliser mean(r^k) all-reduced (equal to the
        single-process weights). The options below depend on the whole set in other ways (a
        global median, candidates shared out over every anchor, interpolation from every
        anchor, weights normalised over all N, alpha solved over every anchor): with any of
        them the whole set is gathered."""
        return not (
            self.alpha_scale == "relative"
            or self.adaptive_M
            or self.surrogate == "idw"
            or self.importance_weights
            or self.draw == "systematic"
            or self.global_candidates > 0
            or self.fixed > 0
            or self.clip is not None
            or self.density == "rad"
            or self.moved_target is not None
        )

    def init_state(self, points: Tensor) -> SamplerState:
        """With ``density="rad"``, the density each point was drawn from: 1 (uniform) at first."""
        if self.density == "compound":
            return {}
        return {"density": torch.ones(points.shape[0], dtype=torch.float64)}

    def carried_density(self, ctx: SamplingContext, state: SamplerState) -> Tensor:
        """The density each current point was drawn from (``density="rad"``), on the points'
        device; 1 (uniform) when the state has none for this many points (a first resample
        without ``init_state``, or a set replaced from outside)."""
        q = (state or {}).get("density")
        if q is None or q.shape[0] != ctx.n:
            return torch.ones(ctx.n, dtype=torch.float64, device=ctx.points.device)
        return q.to(ctx.points.device)

    def alpha_for(self, dim: int) -> float:
        if self.alpha is not None:
            return self.alpha
        if self.alpha_scale == "relative":
            return RELATIVE_ALPHA
        return 1e-4 if dim <= LOW_DIM_LIMIT else 1e-3

    def scales(self, residuals: Tensor, ctx: SamplingContext) -> Tensor:
        """h_i = alpha / (r_i + eps), or alpha D / (r_i / s + eps) if relative; floored, capped."""
        return self.step_sizes(residuals, ctx)[0]

    def step_sizes(
        self, residuals: Tensor, ctx: SamplingContext, counts: Tensor | None = None
    ) -> tuple[Tensor, float]:
        """The steps h (see :meth:`scales`) and the alpha they were taken with: the fixed one, or
        with ``moved_target`` the one solved for this resample's residuals (the fixed one where
        there is nothing to solve: under ``alpha_scale="relative"`` with every residual 0, when
        every step is the cap, or where the units span more than float64 can bracket).
        ``counts``: the candidates per anchor, if the caller has them (:meth:`candidate_counts`)."""
        h_max = self.h_max if self.h_max is not None else ctx.domain.diameter
        r = residuals.abs()
        s = residual_scale(r) if self.alpha_scale == "relative" else 1.0
        if s == 0:  # every residual is 0: no anchor is harder than another, all explore
            return torch.full_like(r, h_max), self.alpha_for(ctx.domain.dim)
        spacing = uniform_spacing(ctx.domain.volume, ctx.n, ctx.domain.dim)
        floor = min(self.h_min * spacing, h_max)
        alpha = None
        if self.moved_target is not None:
            # float64: a unit of 1 / (r + eps) can overflow float32 where r and eps are tiny
            unit = self._unit_steps(r.to(torch.float64), s, ctx)
            if self.adaptive_M and counts is None:
                counts = self.candidate_counts(r)
            alpha = alpha_for_moved_target(
                unit,
                self.moved_target,
                spacing,
                ctx.domain.dim,
                floor,
                h_max,
                counts if self.adaptive_M else None,
            )
        if alpha is None:
            alpha = self.alpha_for(ctx.domain.dim)
        h = self._unit_steps(r, s, ctx, alpha)
        if self.h_min > 0:
            h = h.clamp(min=floor)
        return h.clamp(max=h_max), alpha

    def _unit_steps(self, r: Tensor, s: float, ctx: SamplingContext, alpha: float = 1.0) -> Tensor:
        """alpha / (r + eps), or alpha D / (r / s + eps) when relative (s: the residuals' scale).
        The fixed-alpha steps are computed in this order, so ``GLF()`` steps as it always did."""
        if self.alpha_scale == "absolute":
            return alpha / (r + self.eps)
        return alpha * ctx.domain.diameter / (r / s + self.eps)

    def candidate_counts(self, residuals: Tensor) -> Tensor:
        """Candidates per anchor, shape (N,), summing to N M: all M, or with ``adaptive_M`` one
        each plus N (M - 1) shared in proportion to the anchors' RAD weights."""
        n = residuals.shape[0]
        if not self.adaptive_M:
            return torch.full((n,), self.M, dtype=torch.long, device=residuals.device)
        extra = largest_remainders(rad_weights(residuals, self.k, self.c), n * (self.M - 1))
        return 1 + extra.to(residuals.device)

    def candidates(self, ctx: SamplingContext, h: Tensor, counts: Tensor | None = None) -> Tensor:
        """Reflected Gaussian perturbations, ``counts[i]`` (default M) of anchor i, anchor-major."""
        x = ctx.points
        if counts is None:
            counts = torch.full((x.shape[0],), self.M, dtype=torch.long, device=x.device)
        noise = torch.randn(
            int(counts.sum()), x.shape[1], generator=ctx.generator, device=x.device, dtype=x.dtype
        )
        counts = counts.to(x.device)
        cand = x.repeat_interleave(counts, dim=0)
        cand = cand + h.to(x.dtype).repeat_interleave(counts).unsqueeze(1) * noise
        return ctx.domain.reflect(cand, ctx.generator)

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        """The next N points, and in ``info`` (measured without drawing from the run's generator):

        - ``ess``: the pool weights' effective sample size over their number;
        - ``h_min``, ``h_median``, ``h_max``; ``h_rel_q10``, ``h_rel_median``, ``h_rel_q90``
          (h over the domain's diameter D);
        - ``moved_fraction``: candidates that landed at least 1% of D from their anchor;
          ``moved_spacing_fraction``: at least the uniform spacing (V / N)^(1/d) (the measure
          ``moved_target`` holds);
        - ``alpha``: the alpha of this resample's steps (solved, with ``moved_target``);
        - ``distinct_anchors``: anchors with a descendant in the new set (the trainer's
          ``duplicate_fraction`` gives the distinct points);
        - ``points_per_volume`` (N over the bounding box's volume, the L-shape's own) and
          ``nn_distance_rel`` (mean nearest-neighbour distance of the anchors over D): the
          density the surrogate extrapolates from;
        - ``M_max``: the most candidates of one anchor (``adaptive_M`` only);
        - ``spearman_inherit``, ``spearman_idw``, ``surrogate_checked``
          (``diagnose_surrogate`` only): the rank correlation of the inherited and of the
          idw-interpolated residuals with the exact ones at the scored candidates.
        """
        who = type(self).__name__
        r = ctx.current_residuals(who).detach().abs()
        counts = self.candidate_counts(r)
        h, alpha = self.step_sizes(r, ctx, counts)
        cand = self.candidates(ctx, h, counts)
        counts = counts.to(r.device)
        anchor_of = torch.repeat_interleave(torch.arange(ctx.n, device=r.device), counts)
        if self.surrogate == "inherit":
            r_cand = r[anchor_of]
        elif self.surrogate == "exact":
            r_cand = ctx.score(cand, f"{who}(surrogate='exact')")
        else:
            r_cand = idw(ctx.points, r, cand, self.neighbors)
        # each candidate stands for M / M_i of the paper's: an anchor's total weight is unchanged
        mass = (self.M / counts.to(torch.float64))[anchor_of] if self.adaptive_M else None
        pool, r_pool, pool_anchor = cand, r_cand, anchor_of
        if self.pool == "candidates+anchors":
            pool = torch.cat([cand, ctx.points])
            r_pool = torch.cat([r_cand, r])
            pool_anchor = torch.cat([anchor_of, torch.arange(ctx.n, device=r.device)])
            if mass is not None:
                mass = torch.cat([mass, torch.ones(ctx.n, dtype=torch.float64, device=r.device)])
        n_local = pool.shape[0]
        n_global = round(self.global_candidates * ctx.n)
        if n_global:
            fresh = ctx.domain.sample(n_global, ctx.generator, dtype=pool.dtype).to(pool.device)
            r_fresh = ctx.score(fresh, f"{who}(global_candidates)").detach().abs()
            pool = torch.cat([pool, fresh])
            r_pool = torch.cat([r_pool, r_fresh.to(r_pool.device, r_pool.dtype)])
            if mass is not None:
                mass = torch.cat([mass, torch.ones(n_global, dtype=torch.float64, device=r.device)])
        if self.clip is not None:
            r_pool = r_pool.clamp(max=self.clip * residual_scale(r))
        # on K ranks the normaliser mean(r^k) is the whole pool's, so each weight is the one a
        # single process gives that candidate; only the quota (N/K from each rank) is local
        log_mean = None
        if ctx.group is not None and self.k > 0:
            log_mean = rad_log_mean(r_pool, self.k, mass=mass, group=ctx.group)
        if self.density == "rad":
            q = self.carried_density(ctx, state)
            r_anchor = r if self.clip is None else r.clamp(max=self.clip * residual_scale(r))
            p_pool = rad_density(r_pool, r_anchor, q, self.k, self.c)
            q_pool = torch.ones_like(p_pool)  # the global candidates are uniform
            q_pool[:n_local] = q[pool_anchor]
            w = p_pool / q_pool if mass is None else p_pool / q_pool * mass
        else:
            w = rad_weights(r_pool, self.k, self.c, mass=mass, log_mean=log_mean)
        n_explore = round(self.explore * ctx.n)
        n_fixed = round(self.fixed * ctx.n)
        n_drawn = ctx.n - n_explore - n_fixed
        if self.draw == "systematic":
            idx = systematic_draw(w, n_drawn, ctx.generator)
        else:
            idx = weighted_draw(w, n_drawn, ctx.generator, replace=self.replace)
        pts = pool[idx.to(pool.device)]
        if n_fixed:
            pts = torch.cat([ctx.points[:n_fixed], pts])
        if n_explore:
            fresh = ctx.domain.sample(n_explore, ctx.generator, dtype=pts.dtype)
            pts = torch.cat([pts, fresh.to(pts.device)])
        if self.density == "rad":
            # a drawn point follows p (where its candidate was scored), a fixed or fresh one is
            # uniform
            ones = torch.ones(n_explore, dtype=torch.float64, device=r.device)
            drawn = p_pool[idx.to(p_pool.device)]
            state = {**(state or {}), "density": torch.cat([q[:n_fixed], drawn, ones]).cpu()}
        info = {
            "ess": effective_sample_size(w),
            "alpha": alpha,
            "h_min": float(h.min()),
            "h_median": float(h.median()),
            "h_max": float(h.max()),
            **diagnostics.spread(ctx, h, cand, anchor_of),
            "distinct_anchors": diagnostics.distinct_anchors(
                pool_anchor, idx.to(r.device), n_local
            ),
            "points_per_volume": ctx.n / ctx.domain.volume,
            "nn_distance_rel": diagnostics.mean_nn_distance(ctx.points) / ctx.domain.diameter,
        }
        if self.adaptive_M:
            info["M_max"] = int(counts.max())
        if n_global:
            info["global_fraction"] = float((idx >= n_local).sum()) / ctx.n
        if self.diagnose_surrogate:
            exact = r_cand if self.surrogate == "exact" else None
            info.update(diagnostics.surrogate_check(self, ctx, r, cand, anchor_of, exact))
        if not self.importance_weights:
            return Resampled(pts, state, info=info)
        exact = capped_inclusion(w, idx.numel()) if self.draw == "systematic" else None
        iw = importance_weights(w, idx, replace=self.replace, inclusion=exact)
        info["iw_ess"] = effective_sample_size(iw)
        return Resampled(pts, state, weights=iw.to(pts.device, pts.dtype), info=info)
