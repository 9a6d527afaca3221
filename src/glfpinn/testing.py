"""The conformance suites: ``check_sampler(sampler)`` runs the contract every collocation
sampler must keep, ours or a user's (like scikit-learn's ``check_estimator``), and
``check_domain(domain)`` the one every geometry keeps (:mod:`glfpinn._domain_checks`).

It builds its own domains (boxes in a few dimensions, the L-shape) and contexts with a cheap
synthetic residual, calls the sampler exactly as the trainer does, and raises ``AssertionError``
naming the failed check, the sampler's repr, the domain and the dtype. The checks:

- ``protocol``: the sampler derives from :class:`glfpinn.samplers.Sampler` (anything else is
  refused before any other check).
- ``params``: the constructor stores every argument under an attribute of the same name, so
  ``type(s)(**s.get_params())`` rebuilds a sampler with the same repr.
- ``initial points`` / ``resample``: a tensor of shape (n', d) (n' == n when the sampler
  ``conserves_population``, n' >= n otherwise; exactly n initially) in the input dtype and on the
  input device, finite, inside the domain; weights, if any, finite, >= 0 and one per point;
  ``info`` a dict of finite numbers (it goes to metrics.jsonl).
- ``global RNG``: torch's, numpy's and Python's global random states are untouched.
- ``determinism``: two fresh generators with the same seed give identical points.
- ``seed`` and ``generator`` (samplers that draw at resample time): different seeds give
  different points, and so does a different generator on the same context. A sampler whose
  resample is a deterministic function of its context (a fixed set, gradient moves) declares
  ``stochastic = False`` as a class attribute and skips these two.
- ``state round trip``: the state survives ``torch.save`` / ``torch.load(weights_only=True)``
  (tensors, numbers, strings, lists and dicts only), resample leaves its input state unchanged
  (it returns a new one, like an optax update), and resampling from the restored state gives
  identical points.
- ``zero residuals`` / ``huge residuals``: all residuals 0, or around 1e30 (whose squares
  overflow float32), still give finite points inside the domain.

The synthetic residual and the context factory are public too (``bump``, ``make_context``), for
tests of one's own sampler; the context's residual function is a :class:`glfpinn.Scorer`, which
counts the points it scores.
"""

from __future__ import annotations

import io
import math
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from glfpinn._domain_checks import check_domain as check_domain
from glfpinn.domains import Box, Domain, LShape
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.training.scorer import Scorer

__all__ = ["check_sampler", "check_domain", "bump", "make_context"]


def bump(x: Tensor) -> Tensor:
    """A residual landscape peaked at 0.25 in every coordinate, never zero (floor 1e-3)."""
    return torch.exp(-20 * ((x - 0.25) ** 2).sum(dim=1)) + 1e-3


def _zero(x: Tensor) -> Tensor:
    return 0 * x.sum(dim=1)  # stays in the graph, so its gradient exists (and is zero)


def _huge(x: Tensor) -> Tensor:
    return 1e30 * bump(x)


def make_context(
    domain: Domain | None = None,
    n: int = 256,
    seed: int = 0,
    residual: Callable[[Tensor], Tensor] = bump,
    dtype: torch.dtype = torch.float32,
    free_residuals: bool = True,
    device: str | torch.device = "cpu",
    points: Tensor | None = None,
) -> tuple[SamplingContext, Scorer]:
    """A context over ``n`` uniform points of ``domain`` (default [-1, 1]^2), or over ``points``,
    with ``residual``'s values as the free residuals, and the scorer that counts its evaluations."""
    domain = domain or Box.cube(2, -1.0, 1.0)
    gen = torch.Generator(device).manual_seed(seed)
    if points is None:
        points = domain.sample(n, gen, dtype=dtype)
    fn = Scorer(residual)
    r = residual(points).detach().abs() if free_residuals else None
    ctx = SamplingContext(
        points=points,
        residuals=r,
        residual_fn=fn,
        domain=domain,
        step=100,
        generator=gen,
        residual_grad_fn=fn.with_grad,
    )
    return ctx, fn


def _is_stochastic(sampler: Sampler) -> bool:
    """Whether ``sampler``'s resample draws from the generator (:attr:`Sampler.stochastic`)."""
    return bool(sampler.stochastic)


def _describe(sampler: Any) -> str:
    """The sampler's repr, or its class name when even the repr fails (a broken get_params)."""
    try:
        return repr(sampler)
    except Exception as err:
        return f"<{type(sampler).__name__}: repr raised {type(err).__name__}: {err}>"


def _global_rng() -> tuple[Any, ...]:
    states: list[Any] = [torch.random.get_rng_state(), np.random.get_state(), random.getstate()]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        states.append(torch.cuda.get_rng_state_all())
    return tuple(states)


def _same(a: Any, b: Any) -> bool:
    """Exact structural equality of tensors, arrays, numbers and containers."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return (
            isinstance(a, Tensor)
            and isinstance(b, Tensor)
            and a.shape == b.shape
            and a.dtype == b.dtype
            and bool(torch.equal(a.cpu(), b.cpu()) or _equal_nan(a.cpu(), b.cpu()))
        )
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, list | tuple) and isinstance(b, list | tuple):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _equal_nan(a: Tensor, b: Tensor) -> bool:
    """Equal where NaNs count as equal to NaNs (torch.equal says a NaN differs from itself)."""
    if not a.is_floating_point():
        return False
    return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())


def _roundtrip(state: SamplerState) -> SamplerState:
    buf = io.BytesIO()
    torch.save(state, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=True)


@dataclass
class _Run:
    """What one pipeline produced: the initial points and the two resamples' answers."""

    initial: Tensor
    outputs: list[Resampled] = field(default_factory=list)

    def same_draws(self, other: _Run) -> bool:
        """Identical points and weights at every stage (states may hold anything)."""
        mine = [self.initial] + [x for o in self.outputs for x in (o.points, o.weights)]
        theirs = [other.initial] + [x for o in other.outputs for x in (o.points, o.weights)]
        return _same(mine, theirs)


class _Case:
    """One sampler on one domain in one dtype: the checks that need a context."""

    def __init__(
        self, sampler: Sampler, domain: Domain, dtype: torch.dtype, n: int, seed: int, device
    ) -> None:
        self.sampler = sampler
        self.domain = domain
        self.dtype = dtype
        self.n = n
        self.seed = seed
        self.device = torch.empty(0, device=device).device
        self.exact = bool(sampler.conserves_population)

    @contextmanager
    def check(self, name: str) -> Iterator[None]:
        """Any failure inside becomes one AssertionError naming the check and the case."""
        where = (
            f"check_sampler [{name}] failed for {_describe(self.sampler)} on {self.domain!r} "
            f"({str(self.dtype).removeprefix('torch.')}, {self.device})"
        )
        try:
            yield
        except AssertionError as err:
            raise AssertionError(f"{where}: {err}") from None
        except Exception as err:
            raise AssertionError(f"{where}: raised {type(err).__name__}: {err}") from err

    # ------------------------------------------------------------------ building blocks
    def generator(self, seed: int) -> torch.Generator:
        return torch.Generator(self.device).manual_seed(seed)

    def context(
        self, points: Tensor, gen: torch.Generator, residual: Callable[[Tensor], Tensor]
    ) -> SamplingContext:
        fn = Scorer(residual)
        return SamplingContext(
            points=points,
            residuals=residual(points).detach().abs(),
            residual_fn=fn,
            domain=self.domain,
            step=1,
            generator=gen,
            residual_grad_fn=fn.with_grad,
        )

    def points_ok(self, pts: Any, *, initial: bool) -> None:
        assert isinstance(pts, Tensor), f"points are a {type(pts).__name__}, not a torch.Tensor"
        d = self.domain.dim
        assert pts.ndim == 2 and pts.shape[1] == d, f"points have shape {tuple(pts.shape)}"
        m = int(pts.shape[0])
        if initial or self.exact:
            assert m == self.n, f"{m} points for n={self.n}"
        else:
            assert m >= self.n, f"{m} points, fewer than the {self.n} it started from"
        assert pts.dtype == self.dtype, f"points are {pts.dtype}, the input was {self.dtype}"
        assert pts.device == self.device, f"points are on {pts.device}, input on {self.device}"
        assert bool(torch.isfinite(pts).all()), "points contain NaN or Inf"
        outside = int((~self.domain.contains(pts)).sum())
        assert outside == 0, f"{outside} of {m} points lie outside the domain"

    def output_ok(self, out: Any, n_before: int) -> None:
        assert isinstance(out, Resampled), f"resample returned a {type(out).__name__}"
        self.points_ok(out.points, initial=False)
        if not self.exact:
            m = int(out.points.shape[0])
            assert m >= n_before, f"{m} points, fewer than the {n_before} before the resample"
        assert isinstance(out.state, dict), f"the state is a {type(out.state).__name__}"
        if out.weights is not None:
            w = out.weights
            assert isinstance(w, Tensor), f"weights are a {type(w).__name__}"
            assert tuple(w.shape) == (out.points.shape[0],), f"weights have shape {tuple(w.shape)}"
            assert bool(torch.isfinite(w).all()), "weights contain NaN or Inf"
            assert bool((w >= 0).all()), "weights contain negative values"
        assert isinstance(out.info, dict), f"info is a {type(out.info).__name__}"
        for key, value in out.info.items():
            assert isinstance(key, str), f"info key {key!r} is not a string"
            ok = isinstance(value, int | float) and not isinstance(value, bool)
            assert ok and math.isfinite(value), f"info[{key!r}] = {value!r} is not a finite number"

    def pipeline(
        self, seed: int, residual: Callable[[Tensor], Tensor] = bump, label: str = ""
    ) -> _Run:
        """initial points -> init_state -> two resamples, each checked; what they produced."""
        gen = self.generator(seed)
        with self.check(f"{label}initial points"):
            pts = self.sampler.initial_points(self.n, self.domain, gen, self.dtype)
            self.points_ok(pts, initial=True)
        with self.check(f"{label}init_state"):
            state = self.sampler.init_state(pts)
            assert isinstance(state, dict), f"init_state returned a {type(state).__name__}"
        run = _Run(pts)
        for i in (1, 2):
            with self.check(f"{label}resample {i}"):
                before = int(pts.shape[0])
                out = self.sampler.resample(self.context(pts, gen, residual), state)
                self.output_ok(out, before)
            run.outputs.append(out)
            pts, state = out.points, out.state
        return run

    # ---------------------------------------------------------------------- the checks
    def run(self, stochastic: bool) -> None:
        rng_before = _global_rng()
        first = self.pipeline(self.seed)
        self.global_rng_unchanged(rng_before)  # before determinism, which global draws also break
        with self.check("determinism"):
            assert first.same_draws(self.pipeline(self.seed)), (
                "two generators with the same seed gave different points or weights"
            )
        if stochastic:
            with self.check("seed"):
                other = self.pipeline(self.seed + 1)
                assert not _same(first.outputs[1].points, other.outputs[1].points), (
                    "seeds differing gave identical points; if resample is deterministic given "
                    "its context, set the class attribute stochastic = False"
                )
        self.state_roundtrip(first)
        if stochastic:
            with self.check("generator"):
                pts, state = first.outputs[0].points, first.outputs[0].state
                a = self.sampler.resample(self.context(pts, self.generator(11), bump), state)
                b = self.sampler.resample(self.context(pts, self.generator(12), bump), state)
                assert not _same(a.points, b.points), (
                    "two generators with different seeds gave the same points from the same "
                    "context: draw from ctx.generator, not from a generator of your own (or set "
                    "stochastic = False if resample is deterministic given its context)"
                )
        self.pipeline(self.seed, _zero, "zero residuals: ")
        self.pipeline(self.seed, _huge, "huge residuals: ")
        self.global_rng_unchanged(rng_before)

    def global_rng_unchanged(self, before: tuple[Any, ...]) -> None:
        with self.check("global RNG"):
            assert _same(before, _global_rng()), (
                "the global random state changed: draw from ctx.generator (and the generator "
                "passed to initial_points) only"
            )

    def state_roundtrip(self, first: _Run) -> None:
        with self.check("state round trip"):
            pts, state = first.outputs[0].points, first.outputs[0].state
            initial_state = self.sampler.init_state(first.initial)
            for label, s in (("init_state's", initial_state), ("resample's", state)):
                try:
                    _roundtrip(s)
                except Exception as err:
                    raise AssertionError(
                        f"{label} state does not survive torch.save/torch.load(weights_only=True)"
                        f" ({type(err).__name__}: {err}); keep tensors, numbers, strings, lists "
                        "and dicts only"
                    ) from None
            restored = _roundtrip(state)
            a = self.sampler.resample(self.context(pts, self.generator(7), bump), state)
            assert _same(state, restored), (
                "resample changed its input state in place; return a new state instead (a "
                "resample must be a function of its context and state, like an optax update)"
            )
            b = self.sampler.resample(self.context(pts, self.generator(7), bump), restored)
            assert _same(a.points, b.points) and _same(a.weights, b.weights), (
                "resampling from the restored state gave other points than from the original"
            )


def _check_params(sampler: Sampler) -> None:
    where = f"check_sampler [params] failed for {_describe(sampler)}"
    try:
        params = sampler.get_params()
    except AttributeError as err:
        raise AssertionError(
            f"{where}: get_params() raised {err}; the constructor must store every argument "
            "under an attribute of the same name"
        ) from None
    try:
        clone = type(sampler)(**params)
    except Exception as err:
        raise AssertionError(f"{where}: rebuilding from get_params() raised {err!r}") from None
    assert repr(clone) == repr(sampler), (
        f"{where}: rebuilt from get_params() it reads {clone!r}; store the arguments unchanged"
    )


def check_sampler(
    sampler: Sampler,
    *,
    dims: Sequence[int] = (1, 2, 20),
    include_lshape: bool = True,
    n: int = 64,
    seed: int = 0,
    device: str | torch.device = "cpu",
) -> None:
    """Run every conformance check on ``sampler``; raise AssertionError at the first failure.

    Args:
        dims: dimensions of the boxes [-1, 2]^d it is checked on (asymmetric, so a sampler that
            assumes the unit cube or a symmetric box fails).
        include_lshape: also check on the non-convex L-shape.
        n: points per set.
        seed: the base seed (others are derived from it).
        device: where the points and generators live.
    """
    if not isinstance(sampler, Sampler):
        raise AssertionError(
            f"check_sampler [protocol] failed: {_describe(sampler)} is not a "
            "glfpinn.samplers.Sampler"
        )
    _check_params(sampler)
    domains: list[Domain] = [Box.cube(d, -1.0, 2.0) for d in dims]
    if include_lshape:
        domains.append(LShape())
    stochastic = _is_stochastic(sampler)
    for domain in domains:
        for dtype in (torch.float32, torch.float64):
            _Case(sampler, domain, dtype, n, seed, device).run(stochastic)
