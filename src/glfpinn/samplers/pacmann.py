"""PACMANN: Point Adaptive Collocation Method for Artificial Neural Networks (Visser, Heinlein,
Giovanardi, arXiv 2411.19632; code CoenVisser/PACMANN).

Instead of redrawing, every point climbs the squared residual: ``n_moves`` gradient-ascent steps
on x -> r(x)^2, each needing r and d(r^2)/dx at every point (``ctx.residual_grad_fn``), so a
resample costs N * n_moves residual-and-gradient evaluations and O(N d) memory. N is conserved.

From the authors' code (their Burgers and Allen-Cahn setups): Adam on the points with
beta1 = 0.9, beta2 = 0.999, eps = 1e-7, step size 1e-5 in input units and 15 steps per
resample, its moment estimates restarted at every resample. Ours:

- ``boundary="reflect"`` (default): a point that leaves the domain after a move is reflected
  back (``domain.reflect``), after every move, so no gradient is ever taken outside the domain.
  The authors instead replace escaped points by uniform ones once, after the last move:
  ``boundary="uniform"`` does that replacement (after every move).
- ``optimizer="gd"``: normalised gradient ascent, each point moves the distance ``step_size``
  along its gradient's direction (the authors' plain gradient ascent moves step_size * grad,
  whose scale depends on the residual's). Adam moves each coordinate by about ``step_size``.
- ``keep_moments=True`` carries Adam's moment estimates (and step count) from one resample to
  the next in the sampler state instead of restarting them; a change in the number of points
  restarts them.
- Gradients that are NaN count as 0 and are clipped to +-1e150 (float64), so residuals large
  enough to overflow r^2 still give finite moves.
"""

from __future__ import annotations

from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_bool, check_choice, check_int, check_positive
from glfpinn.samplers.base import (
    Resampled,
    Sampler,
    SamplerState,
    SamplingContext,
    into_domain,
)

__all__ = ["PACMANN", "OPTIMIZERS", "BOUNDARIES"]

OPTIMIZERS = ("adam", "gd")
BOUNDARIES = ("reflect", "uniform")

#: Adam's constants in the authors' code.
BETA1, BETA2, ADAM_EPS = 0.9, 0.999, 1e-7
#: |gradient| cap: its square still fits in float64.
GRAD_LIMIT = 1e150


def _clean(g: Tensor) -> Tensor:
    return torch.nan_to_num(g.detach().to(torch.float64), nan=0.0).clamp(-GRAD_LIMIT, GRAD_LIMIT)


def _unit(g: Tensor) -> Tensor:
    """Rows of ``g`` scaled to unit length (zero rows stay zero), without overflow."""
    amax = g.abs().amax(dim=1, keepdim=True)
    u = torch.where(amax > 0, g / amax.clamp(min=torch.finfo(g.dtype).tiny), 0.0)
    norm = torch.linalg.vector_norm(u, dim=1, keepdim=True)
    return torch.where(norm > 0, u / norm.clamp(min=torch.finfo(g.dtype).tiny), 0.0)


@final
class PACMANN(Sampler):
    """Move every point ``n_moves`` steps up the gradient of r^2.

    Args:
        step_size: Adam's step size (each coordinate moves about this far per move) or, for
            "gd", the distance each point moves per move; in input units (authors: 1e-5).
        n_moves: gradient steps per resample (authors: 15).
        optimizer: "adam" (the authors' best) or "gd" (normalised gradient ascent).
        boundary: "reflect" escaped points back (ours) or replace them by "uniform" ones
            (the authors' rule).
        keep_moments: carry Adam's moments across resamples in the state (ours; the authors
            restart them at every resample).
    """

    #: Its moves are deterministic given the points; only escaped points with
    #: ``boundary="uniform"`` use the generator (read by ``glfpinn.testing.check_sampler``).
    stochastic = False

    def __init__(
        self,
        step_size: float = 1e-5,
        n_moves: int = 15,
        optimizer: str = "adam",
        boundary: str = "reflect",
        keep_moments: bool = False,
    ) -> None:
        check_positive("step_size", step_size)
        self.step_size = step_size
        self.n_moves = check_int("n_moves", n_moves, minimum=1)
        self.optimizer = check_choice("optimizer", optimizer, OPTIMIZERS)
        self.boundary = check_choice("boundary", boundary, BOUNDARIES)
        self.keep_moments = check_bool("keep_moments", keep_moments)

    def init_state(self, points: Tensor) -> SamplerState:
        if not (self.keep_moments and self.optimizer == "adam"):
            return {}
        zeros = torch.zeros(points.shape, dtype=torch.float64, device=points.device)
        return {"m": zeros, "v": zeros.clone(), "t": 0}

    def _moments(self, state: SamplerState, x: Tensor) -> tuple[Tensor, Tensor, int]:
        m, v = state.get("m"), state.get("v")
        if self.keep_moments and m is not None and v is not None and m.shape == x.shape:
            return m.to(x.device, torch.float64), v.to(x.device, torch.float64), int(state["t"])
        zeros = torch.zeros(x.shape, dtype=torch.float64, device=x.device)
        return zeros, zeros.clone(), 0

    def _bring_back(self, y: Tensor, ctx: SamplingContext) -> tuple[Tensor, Tensor]:
        if self.boundary == "reflect":
            return into_domain(y, ctx.domain, ctx.generator)
        outside = ~ctx.domain.contains(y)
        if bool(outside.any()):
            y = y.clone()
            fresh = ctx.domain.sample(int(outside.sum()), ctx.generator, dtype=y.dtype)
            y[outside] = fresh.to(y.device)
        return y, outside

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        x0 = ctx.points
        x = x0
        m, v, t = self._moments(state, x)
        escaped = torch.zeros(ctx.n, dtype=torch.bool, device=x.device)
        for _ in range(self.n_moves):
            _, grad = ctx.score_with_grad(x, type(self).__name__)
            g = _clean(grad).to(x.device)
            if self.optimizer == "adam":
                t += 1
                m = BETA1 * m + (1 - BETA1) * g
                v = BETA2 * v + (1 - BETA2) * g * g
                m_hat, v_hat = m / (1 - BETA1**t), v / (1 - BETA2**t)
                step = self.step_size * m_hat / (v_hat.sqrt() + ADAM_EPS)
            else:
                step = self.step_size * _unit(g)
            x, out = self._bring_back(x + step.to(x.dtype), ctx)
            escaped |= out
        new_state: SamplerState = dict(state)
        if self.keep_moments and self.optimizer == "adam":
            new_state = {"m": m, "v": v, "t": t}
        moved = torch.linalg.vector_norm((x - x0).to(torch.float64), dim=1)
        info = {
            "move_mean": float(moved.mean()) if ctx.n else 0.0,
            "move_max": float(moved.max()) if ctx.n else 0.0,
            "escaped_fraction": float(escaped.float().mean()) if ctx.n else 0.0,
        }
        return Resampled(x, new_state, info=info)
