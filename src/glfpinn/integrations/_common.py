"""What the framework callbacks share: naming a sampler, one resample of a framework's points
through a counted, chunked scorer, and the residual's norm per point. (A framework's geometry,
known only by an inside test, is a :class:`glfpinn.domains.Region`.)"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from glfpinn import samplers
from glfpinn._checks import short_repr
from glfpinn.domains import Domain
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.samplers.coverage import CollapseMonitor, coverage
from glfpinn.training.resampling import ResampleClock
from glfpinn.training.scorer import Scorer

__all__ = ["resolve_sampler", "resample_points", "residual_norm"]


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


def sampler_label(sampler: Sampler) -> str:
    """The registry name of ``sampler``'s class where it has one (``glf``, ``glf-robust``),
    else the class name: what a warning calls it."""
    return samplers.registry.name_of(type(sampler)) or type(sampler).__name__


def resample_points(
    sampler: Sampler,
    state: SamplerState,
    points: Tensor,
    domain: Domain,
    step: int,
    generator: torch.Generator,
    scorer: Scorer,
    monitor: CollapseMonitor,
) -> Resampled:
    """One resample of ``points``, every residual through ``scorer`` (so it is counted in
    ``scorer.costs``, with the resample's time). The new points' coverage goes into the
    result's ``info`` and to ``monitor``, which warns once if the set collapsed.

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
    out.info["coverage"] = coverage(out.points, domain)
    monitor.check(out.info["coverage"], sampler, sampler_label(sampler), step)
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
