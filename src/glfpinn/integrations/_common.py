"""What the framework callbacks share: naming a sampler, a domain known only by an inside test,
one resample of a framework's points through a counted, chunked scorer, and the residual's
norm per point."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from glfpinn import samplers
from glfpinn._checks import short_repr
from glfpinn.domains import Box, Domain, _fold
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.training.resampling import ResampleClock
from glfpinn.training.scorer import Scorer

__all__ = ["Region", "resolve_sampler", "resample_points", "residual_norm"]

#: Rejection rounds before a region whose inside test accepts nothing is given up.
_MAX_ROUNDS = 200


def resolve_sampler(sampler: Sampler | str) -> Sampler:
    """A glfpinn sampler, given as an instance or a registry name (``"glf"``, ``"rad"``, ...)."""
    if isinstance(sampler, Sampler):
        return sampler
    if isinstance(sampler, str):
        return samplers.get(sampler)
    raise ValueError(
        f"sampler={short_repr(sampler)} must be a glfpinn Sampler or one of: "
        f"{', '.join(samplers.names())}"
    )


class Region(Domain):
    """A domain known only by its bounding box and a vectorised inside test.

    Sampling draws uniform points in the box from the run's generator and keeps those inside
    (rejection); reflection folds strays into the box and redraws those still outside, since a
    mere inside test cannot say where the boundary is. ``inside`` maps a numpy array (n, dim)
    to a boolean array (n,).
    """

    def __init__(
        self,
        lower: Sequence[float],
        upper: Sequence[float],
        inside: Callable[[np.ndarray], np.ndarray],
        name: str,
    ) -> None:
        self._box = Box(lower, upper)
        self.dim = self._box.dim
        self.inside = inside
        self.name = name

    def __repr__(self) -> str:
        return f"Region({self.name}, {self._box!r})"

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        return self._box.bounds

    def contains(self, x: Tensor) -> Tensor:
        mask = np.asarray(self.inside(x.detach().cpu().numpy()), dtype=bool).reshape(-1)
        return torch.as_tensor(mask, device=x.device)

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        parts, found = [], 0
        for _ in range(_MAX_ROUNDS):
            if found >= n:
                break
            # Draw more than missing so that a region filling half its box needs ~2 rounds.
            cand = self._box.sample(max(2 * (n - found), 64), generator, method=method, dtype=dtype)
            keep = cand[self.contains(cand)]
            parts.append(keep)
            found += keep.shape[0]
        if found < n:
            raise ValueError(
                f"{self!r}: the inside test accepted {found} of the points drawn in its bounding "
                f"box, fewer than the {n} needed; is the geometry empty or degenerate?"
            )
        return torch.cat(parts)[:n]

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        raise NotImplementedError(
            f"{self!r} has no boundary sampler: boundary points stay the framework's own"
        )

    def reflect(self, x, generator=None):
        lo, hi = (b.to(x) for b in self._box.bounds)
        # The fold's arithmetic may move a point inside by an ulp: leave those exactly alone.
        y = torch.where(self._box.contains(x).unsqueeze(1), x, _fold(x, lo, hi))
        outside = ~self.contains(y)
        if bool(outside.any()):
            if generator is None:
                raise ValueError(f"{self!r} redraws points outside it and needs a generator")
            y = y.clone()
            y[outside] = self.sample(int(outside.sum()), generator, dtype=y.dtype).to(y.device)
        return y


def resample_points(
    sampler: Sampler,
    state: SamplerState,
    points: Tensor,
    domain: Domain,
    step: int,
    generator: torch.Generator,
    scorer: Scorer,
) -> Resampled:
    """One resample of ``points``, every residual through ``scorer`` (so it is counted in
    ``scorer.costs``, with the resample's time).

    The context gets no free residuals: a framework does not hand back its last step's
    residuals, so a sampler that reads the current ones (GLF, R3, RSmote) pays exactly one
    chunked evaluation of the current points, and RAD pays only for its candidates. The
    bookkeeping is the trainer's (:class:`~glfpinn.training.resampling.ResampleClock`).
    """
    clock = ResampleClock.start(scorer.costs)
    ctx = SamplingContext(
        points=points,
        residuals=None,
        domain=domain,
        step=step,
        generator=generator,
        residual_fn=scorer,
        residual_grad_fn=scorer.with_grad,
    )
    out = sampler.resample(ctx, state)
    domain.check_points(out.points, f"{type(sampler).__name__}'s points")
    clock.stop()
    return out


def residual_norm(module: nn.Module, residual: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """``residual(x)`` (a framework's PDE residual, any shape with one leading row per point)
    computed with ``module`` in eval mode, reduced to one norm per row.

    ``x`` is differentiated with respect to when it already requires grad (the scorer's
    ``with_grad``, for samplers that move points along d(r^2)/dx such as PACMANN); otherwise a
    detached copy that requires grad is used, as a residual needs derivatives in x."""
    was_training = module.training
    module.eval()
    try:
        r = residual(x if x.requires_grad else x.detach().requires_grad_(True))
    finally:
        module.train(was_training)
    return torch.linalg.vector_norm(r.reshape(len(x), -1), dim=1)
