"""The sampler protocol: what every collocation-point method receives and returns.

A sampler is configured by its constructor (hyperparameters only, like a scikit-learn
estimator) and keeps anything that evolves during training in an explicit ``state`` dict of
tensors and numbers (like an optax transformation), so a run can be checkpointed and resumed
exactly. It never touches global random state: every draw uses ``ctx.generator``.
"""

from __future__ import annotations

import abc
import inspect
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor

from glfpinn.domains import Domain

__all__ = [
    "Sampler",
    "SamplingContext",
    "Resampled",
    "SamplerState",
    "into_domain",
]

SamplerState = dict[str, Any]


@dataclass(frozen=True)
class SamplingContext:
    """Everything a sampler may use at a resampling step.

    ``residuals`` are |L u - f| at ``points`` as computed by the last training step (detached):
    free for the sampler. ``residual_fn`` scores new points (|residual|, shape (n,)); it is
    chunked, runs without building a graph, and is counted and timed by the trainer, so methods
    that need exact residuals (RAD, GLF-D) pay visibly for them. ``residual_grad_fn`` returns
    (|r|, d(r^2)/dx) for methods that move points along the residual's gradient (PACMANN).
    """

    points: Tensor
    residuals: Tensor | None
    residual_fn: Callable[[Tensor], Tensor]
    domain: Domain
    step: int
    generator: torch.Generator
    residual_grad_fn: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None

    def __post_init__(self) -> None:
        """Refuse points a sampler could silently mistreat: wrong shape, dtype, device, or
        outside the domain. One pass over N points; negligible next to a training step."""
        self.domain.check_points(self.points)
        if self.points.device.type != self.generator.device.type:
            raise ValueError(
                f"points are on {self.points.device} but the generator is on "
                f"{self.generator.device}; both must be on the same device"
            )
        if self.residuals is not None and tuple(self.residuals.shape) != (self.n,):
            raise ValueError(
                f"residuals have shape {tuple(self.residuals.shape)}; expected ({self.n},)"
            )

    @property
    def n(self) -> int:
        return int(self.points.shape[0])

    def current_residuals(self) -> Tensor:
        """Residuals at the current points: the free ones if given, else scored now."""
        if self.residuals is not None:
            return self.residuals
        return self.residual_fn(self.points)


@dataclass
class Resampled:
    """A sampler's answer: the next points, its new state, optional loss weights, diagnostics.

    ``weights``, when given, multiply each point's squared residual in the loss (importance
    weights 1/(N p) make the loss an unbiased estimate of the uniform one).
    """

    points: Tensor
    state: SamplerState = field(default_factory=dict)
    weights: Tensor | None = None
    info: dict[str, float] = field(default_factory=dict)


class Sampler(abc.ABC):
    """Base of all samplers. Subclasses implement :meth:`resample`; constructors only store
    (and validate) hyperparameters under attributes of the same name."""

    #: Whether a resample keeps the number of points (False for RAR-style growing sets).
    conserves_population: bool = True
    #: Whether a resample draws from the generator (False: deterministic given its context).
    stochastic: bool = True

    def initial_points(
        self, n: int, domain: Domain, generator: torch.Generator, dtype: torch.dtype
    ) -> Tensor:
        """The training set before the first resample: uniform by default."""
        return domain.sample(n, generator, dtype=dtype)

    def init_state(self, points: Tensor) -> SamplerState:
        """State before the first resample (most samplers have none)."""
        return {}

    @abc.abstractmethod
    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        """The next training points."""

    @classmethod
    def _param_names(cls) -> list[str]:
        params = inspect.signature(cls.__init__).parameters.values()
        plain = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
        return [p.name for p in params if p.name != "self" and p.kind in plain]

    def get_params(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._param_names()}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def into_domain(x: Tensor, domain: Domain, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """Points moved or interpolated by a sampler, brought back inside ``domain``.

    Rows outside are reflected by ``domain.reflect``; a row still outside afterwards (a domain
    whose reflection cannot always land inside) is replaced by a uniform point drawn from
    ``generator``. Returns the points and the mask of rows that were outside.
    """
    outside = ~domain.contains(x)
    if not bool(outside.any()):
        return x, outside
    x = x.clone()
    x[outside] = domain.reflect(x[outside], generator)
    still = ~domain.contains(x)
    if bool(still.any()):
        fresh = domain.sample(int(still.sum()), generator, dtype=x.dtype)
        x[still] = fresh.to(x.device)
    return x, outside
