"""One resample of the training points, and its bookkeeping (shared with the framework
integrations, :mod:`glfpinn.integrations`).

The trainer owns the points and swaps them in place: the sampler gets the residuals the last
training step computed anyway (free) and a counted, chunked scorer for new points; the new
points replace the old ones on the same device and in the same dtype, and no optimizer is
touched. On K ranks the strategy says what the sampler sees (this rank's share, or the whole
set gathered) and what this rank keeps of the draw.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, final

import torch
from torch import Tensor

from glfpinn.domains import Domain
from glfpinn.samplers.base import Sampler, SamplingContext
from glfpinn.samplers.coverage import coverage
from glfpinn.strategy import Strategy
from glfpinn.training.costs import Costs
from glfpinn.training.scorer import Scorer
from glfpinn.training.state import TrainState

__all__ = ["ResampleClock", "check_points", "duplicate_fraction", "resample"]


def duplicate_fraction(points: Tensor) -> float:
    """Fraction of rows that repeat an earlier row. Rows are compared through one float64
    projection on fixed irrational weights (a 1-D unique is ~10x cheaper than unique(dim=0));
    distinct rows colliding exactly would need a measure-zero coincidence."""
    if points.shape[0] == 0:
        return 0.0
    weights = torch.arange(1, points.shape[1] + 1, dtype=torch.float64, device=points.device)
    keys = points.to(torch.float64) @ torch.sqrt(weights + 1.0)
    return 1.0 - torch.unique(keys).shape[0] / points.shape[0]


def check_points(points: Tensor, dim: int, who: str) -> None:
    """Refuse, in one line naming the sampler ``who``, points a run cannot train on: not a
    tensor of shape (n, dim) with n >= 1, not floating point (integer points would train on
    a lattice, and fail at the first derivative), or not finite. Without it an empty set
    trains on a NaN loss, which is blamed on the learning rate."""
    if not isinstance(points, Tensor) or points.ndim != 2 or points.shape[1] != dim:
        shape = tuple(points.shape) if isinstance(points, Tensor) else type(points).__name__
        raise ValueError(f"sampler {who} returned points of shape {shape}, not (n, {dim})")
    if points.shape[0] == 0:
        raise ValueError(f"sampler {who} returned no points (shape {tuple(points.shape)})")
    if not points.is_floating_point():
        raise ValueError(
            f"sampler {who} returned points of dtype {points.dtype}; collocation points must "
            "be floating point"
        )
    if not bool(torch.isfinite(points).all()):
        raise ValueError(f"sampler {who} returned non-finite points (NaN or inf)")


@final
@dataclass
class ResampleClock:
    """What one resample spends, counted into ``costs``: started before the resample,
    :meth:`stop` after it (adds its time to ``sampling_time_s`` and one to ``resamples``)."""

    costs: Costs
    t0: float
    evals0: int
    scoring0: float

    @classmethod
    def start(cls, costs: Costs) -> ResampleClock:
        return cls(costs, time.perf_counter(), costs.residual_evals, costs.scoring_time_s)

    def stop(self) -> dict[str, Any]:
        """The resample's residual evaluations, scoring time and time, now counted."""
        elapsed = time.perf_counter() - self.t0
        self.costs.sampling_time_s += elapsed
        self.costs.resamples += 1
        return {
            "residual_evals": self.costs.residual_evals - self.evals0,
            "scoring_time_s": self.costs.scoring_time_s - self.scoring0,
            "time_s": elapsed,
        }


def resample(
    s: TrainState,
    sampler: Sampler,
    strategy: Strategy,
    scorer: Scorer,
    domain: Domain,
) -> dict[str, Any]:
    """Ask ``sampler`` for the next points of ``s`` (kept on the current points' device and in
    their precision) and swap them in; return the resample's
    record: ``step``, ``n_points`` (over every process), ``duplicate_fraction``, ``coverage``
    (of the sampler's draw, :mod:`glfpinn.samplers.coverage`), ``residual_evals``,
    ``scoring_time_s``, ``time_s`` and the sampler's own figures."""
    clock = ResampleClock.start(s.costs)
    points, residuals, residual_fn, residual_grad_fn, group = strategy.resample_view(
        s.points, s.last_residuals, scorer, scorer.with_grad
    )
    ctx = SamplingContext(
        points=points,
        residuals=residuals,
        residual_fn=residual_fn,
        domain=domain,
        step=s.step,
        generator=s.generator,
        residual_grad_fn=residual_grad_fn,
        group=group,
    )
    out = sampler.resample(ctx, s.sampler_state)
    pts = out.points.detach()
    check_points(pts, domain.dim, repr(sampler))
    duplicates = duplicate_fraction(pts)
    spread = coverage(pts, domain)
    pts, weights, n_total = strategy.keep(pts, out.weights, int(s.points.shape[0]), repr(sampler))
    s.points = pts.to(s.points)
    s.weights = None if weights is None else weights.detach().to(s.points)
    s.sampler_state = out.state
    s.last_residuals = None
    spent = clock.stop()
    return {
        "step": s.step,
        "n_points": n_total,
        "duplicate_fraction": duplicates,
        "coverage": spread,
        **spent,
        **out.info,
    }
