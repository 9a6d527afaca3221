"""What each GLF resample reports about itself, measured without drawing from the run's
generator (so no point changes): the spread of the candidates, how far they moved, the density
the surrogate extrapolates from, and (``diagnose_surrogate``) how well the inherited and the
idw-interpolated residuals rank the exact ones. docs/samplers.md, "GLF's per-resample
diagnostics", explains each."""

from __future__ import annotations

import hashlib
import math
import warnings
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from glfpinn.samplers.base import SamplingContext
from glfpinn.samplers.glf_options import idw, uniform_spacing

if TYPE_CHECKING:
    from glfpinn.samplers.glf import GLF

__all__ = [
    "MOVE_THRESHOLD",
    "NN_QUERIES",
    "distinct_anchors",
    "mean_nn_distance",
    "spread",
    "surrogate_check",
]

#: A candidate "moves" (diagnostic ``moved_fraction``) if it lands this fraction of the
#: diameter or more away from its anchor.
MOVE_THRESHOLD = 0.01
#: Query points of the nearest-neighbour diagnostic: its cost stays O(256 N d) per resample.
NN_QUERIES = 256


def _side_generator(generator: torch.Generator) -> torch.Generator:
    """A CPU generator seeded by a hash of ``generator``'s state. Reading a state draws nothing,
    so a diagnostic drawing from it leaves the run's random stream (and the points) unchanged,
    and every resample, which sees a different state, gets a different subset."""
    state = generator.get_state().numpy().tobytes()
    seed = int.from_bytes(hashlib.blake2b(state, digest_size=8).digest(), "little") >> 1
    return torch.Generator().manual_seed(seed)


def mean_nn_distance(x: Tensor) -> float:
    """Mean distance from a point to its nearest other point, over at most ``NN_QUERIES``
    evenly strided query points (no random draw)."""
    n = x.shape[0]
    if n < 2:
        return math.nan
    queries = torch.arange(0, n, math.ceil(n / NN_QUERIES), device=x.device)
    # the matmul form errs by ~1e-3 of |x| near 0 distance: harmless in a mean, and 5x faster
    dist = torch.cdist(x[queries], x, compute_mode="use_mm_for_euclid_dist")
    dist[torch.arange(queries.numel(), device=x.device), queries] = math.inf
    return float(dist.min(dim=1).values.to(torch.float64).mean())


def _spearman(a: Tensor, b: Tensor) -> float:
    """Spearman's rank correlation; NaN if either side is constant (no ranking to compare)."""
    from scipy import stats  # here: scipy.stats takes seconds to import

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", stats.ConstantInputWarning)
        rho = stats.spearmanr(a.double().cpu().numpy(), b.double().cpu().numpy()).statistic
    return float(rho)


def spread(ctx: SamplingContext, h: Tensor, cand: Tensor, anchor_of: Tensor) -> dict:
    """Quantiles of h over the diameter, the fraction of candidates that moved at least
    ``MOVE_THRESHOLD`` of it from their anchor, and the fraction that moved at least the set's
    uniform spacing (V / N)^(1/d) (both after reflection)."""
    diameter = ctx.domain.diameter
    q = torch.quantile(
        h.to(torch.float64) / diameter,
        torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64, device=h.device),
    )
    spacing = uniform_spacing(ctx.domain.volume, ctx.n, ctx.domain.dim)
    # after reflection: a candidate folded back near its anchor did not move far
    moved = torch.linalg.vector_norm(cand - ctx.points[anchor_of.to(cand.device)], dim=1)
    return {
        "h_rel_q10": float(q[0]),
        "h_rel_median": float(q[1]),
        "h_rel_q90": float(q[2]),
        "moved_fraction": float((moved >= MOVE_THRESHOLD * diameter).double().mean()),
        "moved_spacing_fraction": float((moved >= spacing).double().mean()),
    }


def surrogate_check(
    sampler: GLF,
    ctx: SamplingContext,
    r: Tensor,
    cand: Tensor,
    anchor_of: Tensor,
    exact: Tensor | None,
) -> dict:
    """Spearman's rank correlation of the inherited and the idw-interpolated residuals with the
    exact ones at ``sampler.diagnose_surrogate`` random candidates (drawn from a side generator;
    ``exact`` when the candidates are scored already, GLF-D)."""
    k = min(sampler.diagnose_surrogate, cand.shape[0])
    sub = torch.randperm(cand.shape[0], generator=_side_generator(ctx.generator))[:k]
    sub = sub.to(cand.device)
    if exact is None:
        exact = ctx.score(cand[sub], f"{type(sampler).__name__}(diagnose_surrogate)")
    else:
        exact = exact[sub.to(exact.device)]
    inherited = r[anchor_of[sub.to(anchor_of.device)]]
    interpolated = idw(ctx.points, r, cand[sub], sampler.neighbors)
    return {
        "spearman_inherit": _spearman(inherited, exact),
        "spearman_idw": _spearman(interpolated, exact),
        "surrogate_checked": k,
    }


def distinct_anchors(pool_anchor: Tensor, idx: Tensor, n_local: int) -> int:
    """Anchors with a descendant among the drawn pool members ``idx`` (global candidates, at
    positions n_local and beyond, descend from none)."""
    local = idx[idx < n_local]
    return int((torch.bincount(pool_anchor[local]) > 0).sum()) if local.numel() else 0
