"""The sampler protocol: what every collocation-point method receives and returns.

A sampler is configured by its constructor (hyperparameters only, like a scikit-learn
estimator) and keeps anything that evolves during training in an explicit ``state`` dict of
tensors and numbers (like an optax transformation), so a run can be checkpointed and resumed
exactly. It never touches global random state: every draw uses ``ctx.generator``.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from dataclasses import KW_ONLY, dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from glfpinn._checks import short_repr
from glfpinn._params import Params
from glfpinn.domains import Domain

if TYPE_CHECKING:  # a single-process run never imports glfpinn.distributed
    from glfpinn.distributed import ProcessGroup

__all__ = [
    "Sampler",
    "SamplingContext",
    "Resampled",
    "SamplerState",
    "check_inner",
    "into_domain",
]

SamplerState = dict[str, Any]


#: How to build the residual functions a scoring sampler needs, for its error message.
_SCORER_HINT = "glfpinn.Scorer(lambda x: problem.residual(model, x))"


@dataclass(frozen=True)
class SamplingContext:
    """Everything a sampler may use at a resampling step.

    ``residuals`` are |L u - f| at ``points`` as computed by the last training step (detached):
    free for the sampler. ``residual_fn`` scores new points (|residual|, shape (n,)); the trainer
    passes a :class:`glfpinn.Scorer`, chunked, without a graph, counted and timed, so methods
    that need exact residuals (RAD, GLF-D) pay visibly for them. ``residual_grad_fn`` returns
    (|r|, d(r^2)/dx) for methods that move points along the residual's gradient (PACMANN).

    ``group`` is set when the run is data-parallel (:mod:`glfpinn.distributed`) and the
    sampler resamples per rank (:meth:`Sampler.resamples_per_rank`): ``points`` and
    ``residuals`` are then this rank's share, and what its draw needs of the whole set (a
    normaliser) it reduces over the group. Any other sampler sees the whole set, as in one
    process.

    Both functions are optional, keyword-only: a sampler that only reads the free residuals
    (GLF, R3, RSmote, the uniform ones) runs in a hand-written loop from points, residuals,
    domain, step and generator alone. Samplers reach them through :meth:`score`,
    :meth:`score_with_grad` and :meth:`current_residuals`, which say what is missing, and which
    refuse residuals that are NaN or infinite (a diverged network): no sampler can rank those,
    and a weighted draw over them would return NaN points or silently ignore the worst ones.
    """

    points: Tensor
    residuals: Tensor | None
    domain: Domain
    step: int
    generator: torch.Generator
    _: KW_ONLY
    residual_fn: Callable[[Tensor], Tensor] | None = None
    residual_grad_fn: Callable[[Tensor], tuple[Tensor, Tensor]] | None = None
    group: ProcessGroup | None = None

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

    def score(self, x: Tensor, who: str) -> Tensor:
        """|residual| at new points ``x``, shape (n,), by ``residual_fn``; ``who`` (the
        sampler's name) is named in the error when the context has none."""
        if self.residual_fn is None:
            raise ValueError(
                f"{who} scores new points: give the SamplingContext a residual_fn "
                f"(e.g. {_SCORER_HINT})"
            )
        # A user's own function may return signed residuals still attached to the graph.
        return _finite(self.residual_fn(x).detach().abs(), who, "at new points")

    def score_with_grad(self, x: Tensor, who: str) -> tuple[Tensor, Tensor]:
        """(|residual|, d(r^2)/dx) at ``x`` by ``residual_grad_fn``; ``who`` as in :meth:`score`."""
        if self.residual_grad_fn is None:
            raise ValueError(
                f"{who} moves points along d(r^2)/dx: give the SamplingContext a "
                f"residual_grad_fn (e.g. {_SCORER_HINT}.with_grad)"
            )
        r, grad = self.residual_grad_fn(x)
        return _finite(r, who, "at the points it moves"), grad

    def current_residuals(self, who: str = "this sampler") -> Tensor:
        """Residuals at the current points: the free ones if given, else scored now."""
        if self.residuals is not None:
            return _finite(self.residuals, who, "at the current points")
        if self.residual_fn is None:
            raise ValueError(
                f"{who} needs residuals at the current points: give the SamplingContext "
                f"residuals (|r| of the last training step) or a residual_fn (e.g. {_SCORER_HINT})"
            )
        return self.score(self.points, who)


def _finite(residuals: Tensor, who: str, where: str) -> Tensor:
    """``residuals`` if every one is finite; else a one-line ValueError naming ``who``."""
    bad = int((~torch.isfinite(residuals)).sum())
    if bad:
        raise ValueError(
            f"{who} got {bad} non-finite residuals (NaN or inf) of {residuals.numel()} {where}; "
            "the network or the problem's residual has diverged there"
        )
    return residuals


@dataclass
class Resampled:
    """A sampler's answer: the next points, its new state, optional loss weights, diagnostics.

    ``weights`` is None (every point weighs 1) or one weight per row of ``points``, shape (n,),
    multiplying that point's squared residual in the loss: mean_i(w_i r_i^2). The built-in
    samplers give them only when asked for importance weights: w_i ∝ 1/(N p_i) for a point drawn
    with probability p_i, normalised to mean 1, so that a draw from uniform candidates (RAD) still
    trains on an estimate of the uniform-density loss. A hand-written loop swaps them in with
    the points and uses both until the next resample.
    """

    points: Tensor
    state: SamplerState = field(default_factory=dict)
    weights: Tensor | None = None
    info: dict[str, float] = field(default_factory=dict)


class Sampler(Params, abc.ABC):
    """Base of all samplers. Subclasses implement :meth:`resample`; constructors only store
    (and validate) hyperparameters under attributes of the same name, which
    :meth:`~glfpinn._params.Params.get_params` reads back."""

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

    def resamples_per_rank(self) -> bool:
        """Whether this sampler, so configured, resamples each rank's share of a data-parallel
        run on its own (with what must be global reduced over ``ctx.group``), rather than the
        whole set.

        False (the default, right for any sampler): the trainer gathers every rank's points
        and residuals, every rank runs the same draw from the same stream, with the scoring of
        new points split over the ranks, and keeps its slice; the K-rank draw is then the
        single-process draw. True: each rank draws from its own stream and the sampler itself
        makes its draw consistent across ranks; nothing is gathered, which scales further."""
        return False

    @abc.abstractmethod
    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        """The next training points."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


def check_inner(combinator: str, inner: object, why: str) -> Sampler:
    """``inner`` if it is a :class:`Sampler` that keeps the number of points, which a
    combinator that swaps points in and out of its set needs (``why`` says what it does); else
    a one-line ValueError."""
    if not isinstance(inner, Sampler):
        raise ValueError(f"inner={short_repr(inner)} is not a Sampler")
    if not inner.conserves_population:
        raise ValueError(
            f"inner={inner!r} grows the set; {combinator} {why} and needs a sampler that keeps "
            "the number of points"
        )
    return inner


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
