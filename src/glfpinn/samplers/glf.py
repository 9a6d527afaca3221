"""GLF: Global-Local Fusion sampling (Luo, Xu, Yang, arXiv 2510.24026).

Each current point (anchor) x_i with residual r_i spawns M Gaussian candidates
x_i + h_i xi, h_i = alpha / (r_i + eps): tight around hard points, wide around easy ones.
Candidates that leave the domain are reflected back. Each candidate inherits its anchor's
residual (the paper's cheap surrogate: no derivative evaluation at all), and the next N points
are drawn from the pool with RAD's weights r^k / mean(r^k) + c.

Choices that are ours, not the paper's (its full text is not available): eps, the cap on h (the
domain's diameter by default), k = c = 1 (RAD's defaults), drawing without replacement, a pool of
candidates only, and alpha's switch from 1e-4 to 1e-3 above 3 input coordinates.

``importance_weights=True`` (ours) returns loss weights 1/(N p_i), self-normalised to mean 1.
Unlike RAD's, GLF's pool is not uniform (it is a cloud around the anchors), so these weights undo
only the last weighted selection: the weighted loss follows the candidate pool's density, not the
uniform one. An ablation knob, not an unbiased uniform loss.
"""

from __future__ import annotations

from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_bool, check_choice, check_int, check_positive
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.samplers.select import (
    effective_sample_size,
    importance_weights,
    rad_weights,
    weighted_draw,
)

__all__ = ["GLF", "SURROGATES", "POOLS"]

SURROGATES = ("inherit", "exact", "idw")
POOLS = ("candidates", "candidates+anchors")

#: Above this many input coordinates GLF's default alpha is the paper's high-dimensional 1e-3.
LOW_DIM_LIMIT = 3


def _idw(anchors: Tensor, values: Tensor, queries: Tensor, k: int, chunk: int = 4096) -> Tensor:
    """Inverse-squared-distance interpolation of anchor values from the k nearest anchors."""
    k = min(k, anchors.shape[0])
    out = torch.empty(queries.shape[0], dtype=values.dtype, device=values.device)
    for start in range(0, queries.shape[0], chunk):
        q = queries[start : start + chunk]
        # Exact distances: the matmul shortcut is off by ~1e-3 and would miss exact hits.
        dist = torch.cdist(q, anchors, compute_mode="donot_use_mm_for_euclid_dist")
        dist, idx = torch.topk(dist, k, dim=1, largest=False)
        w = 1.0 / (dist.to(values.dtype) ** 2 + torch.finfo(values.dtype).tiny)
        exact = dist[:, :1] == 0  # a query on an anchor takes that anchor's value
        w = torch.where(exact, (dist == 0).to(w.dtype), w)
        out[start : start + chunk] = (w * values[idx]).sum(1) / w.sum(1)
    return out


@final
class GLF(Sampler):
    """Global-Local Fusion sampling.

    Args:
        M: candidates per anchor (paper: 3).
        alpha: perturbation scale numerator; None picks the paper's 1e-4 for problems with at
            most 3 input coordinates and 1e-3 above.
        eps: keeps h finite where the residual vanishes (ours).
        h_max: cap on h; None caps it at the domain's diameter (ours).
        k, c: RAD weight exponent and offset.
        replace: draw the next set with replacement (default: without, like RAD's code).
        pool: "candidates" (the paper's reading) or "candidates+anchors".
        surrogate: "inherit" (the paper's GLF), "exact" (GLF-D: exact residual at every
            candidate, N*M evaluations) or "idw" (inverse-distance interpolation of the
            ``neighbors`` nearest anchors' residuals, to study the surrogate's quality).
        neighbors: anchors used by the "idw" surrogate.
        importance_weights: also return loss weights 1/(N p_i), mean 1 (see the module).
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

    def alpha_for(self, dim: int) -> float:
        if self.alpha is not None:
            return self.alpha
        return 1e-4 if dim <= LOW_DIM_LIMIT else 1e-3

    def scales(self, residuals: Tensor, ctx: SamplingContext) -> Tensor:
        """h_i = alpha / (r_i + eps), capped."""
        h_max = self.h_max if self.h_max is not None else ctx.domain.diameter
        h = self.alpha_for(ctx.domain.dim) / (residuals.abs() + self.eps)
        return h.clamp(max=h_max)

    def candidates(self, ctx: SamplingContext, h: Tensor) -> Tensor:
        """M reflected Gaussian perturbations per anchor, anchor-major: rows i*M .. i*M+M-1."""
        x = ctx.points
        noise = torch.randn(
            x.shape[0], self.M, x.shape[1], generator=ctx.generator, device=x.device, dtype=x.dtype
        )
        cand = x.unsqueeze(1) + h.to(x.dtype).view(-1, 1, 1) * noise
        return ctx.domain.reflect(cand.reshape(-1, x.shape[1]), ctx.generator)

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        r = ctx.current_residuals(type(self).__name__).detach().abs()
        h = self.scales(r, ctx)
        cand = self.candidates(ctx, h)
        if self.surrogate == "inherit":
            r_cand = r.repeat_interleave(self.M)
        elif self.surrogate == "exact":
            r_cand = ctx.score(cand, f"{type(self).__name__}(surrogate='exact')")
        else:
            r_cand = _idw(ctx.points, r, cand, self.neighbors)
        if self.pool == "candidates+anchors":
            cand = torch.cat([cand, ctx.points])
            r_cand = torch.cat([r_cand, r])
        w = rad_weights(r_cand, self.k, self.c)
        idx = weighted_draw(w, ctx.n, ctx.generator, replace=self.replace)
        info = {
            "ess": effective_sample_size(w),
            "h_min": float(h.min()),
            "h_median": float(h.median()),
            "h_max": float(h.max()),
        }
        pts = cand[idx.to(cand.device)]
        if not self.importance_weights:
            return Resampled(pts, state, info=info)
        iw = importance_weights(w, idx, replace=self.replace)
        info["iw_ess"] = effective_sample_size(iw)
        return Resampled(pts, state, weights=iw.to(pts.device, pts.dtype), info=info)
