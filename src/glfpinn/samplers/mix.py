"""Mix: several samplers sharing one point set, each owning a fixed share (optax-style
composition instead of an "exploration fraction" flag inside every sampler).

``Mix([(GLF(), 0.8), (UniformResample(), 0.2)])`` splits the N points into consecutive segments,
one per part: the first 80% are GLF's, the last 20% uniform. Each part only ever sees its own
segment (its points, their free residuals) and keeps its own state, so any sampler composes
without knowing about the others. The residual functions and the generator are shared, used by
the parts in order, so the whole stays reproducible from one seed.

Shares are fractions of the N points at ``init_state``, rounded by largest remainder (floor
every share, hand the leftover points one each to the largest fractional parts, ties to the
earlier part): deterministic, and the shares always add up to N. A part whose share rounds to 0
gets no points and is never called. Parts that grow (RAR-D, RAR-G) grow their own segment only.
Loss weights, when some part returns them, are that part's weights on its segment and 1 on the
others.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import final

import torch
from torch import Tensor

from glfpinn._checks import check_positive, short_repr
from glfpinn.domains import Domain
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext

__all__ = ["Mix", "split_counts"]


def split_counts(n: int, fractions: Sequence[float]) -> list[int]:
    """``n`` split by ``fractions`` with the largest-remainder rule; the counts sum to ``n``."""
    total = math.fsum(fractions)
    exact = [n * f / total for f in fractions]
    counts = [math.floor(e) for e in exact]
    leftover = n - sum(counts)
    by_remainder = sorted(range(len(exact)), key=lambda j: (-(exact[j] - counts[j]), j))
    for j in by_remainder[: max(leftover, 0)]:
        counts[j] += 1
    return counts


@final
class Mix(Sampler):
    """Parts, each ``(sampler, fraction)``, own consecutive shares of the points.

    Args:
        parts: non-empty sequence of (sampler, fraction) pairs, fractions > 0 summing to 1.
    """

    def __init__(self, parts: Sequence[tuple[Sampler, float]]) -> None:
        parts = list(parts)
        if not parts:
            raise ValueError("parts=[] is not allowed; Mix needs at least one (sampler, fraction)")
        for part in parts:
            if not (isinstance(part, tuple | list) and len(part) == 2):
                raise ValueError(f"part {short_repr(part)} is not a (sampler, fraction) pair")
            sampler, fraction = part
            if not isinstance(sampler, Sampler):
                raise ValueError(f"part {short_repr(part)}: {short_repr(sampler)} is not a Sampler")
            try:
                check_positive("fraction", fraction)
            except ValueError as err:
                raise ValueError(f"part {short_repr(part)}: {err}") from None
        total = math.fsum(float(f) for _, f in parts)
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"the fractions sum to {total!r}; they must sum to 1")
        self.parts = [(s, float(f)) for s, f in parts]

    @property
    def conserves_population(self) -> bool:  # type: ignore[override]
        return all(s.conserves_population for s, _ in self.parts)

    @property
    def stochastic(self) -> bool:  # type: ignore[override]
        return any(s.stochastic for s, _ in self.parts)

    def counts(self, n: int) -> list[int]:
        return split_counts(n, [f for _, f in self.parts])

    def initial_points(
        self, n: int, domain: Domain, generator: torch.Generator, dtype: torch.dtype
    ) -> Tensor:
        segments = [
            s.initial_points(size, domain, generator, dtype)
            for (s, _), size in zip(self.parts, self.counts(n), strict=True)
            if size > 0
        ]
        return torch.cat(segments)

    def init_state(self, points: Tensor) -> SamplerState:
        sizes = self.counts(int(points.shape[0]))
        states = [
            s.init_state(seg) for (s, _), seg in zip(self.parts, points.split(sizes), strict=True)
        ]
        return {"sizes": sizes, "parts": states}

    def resample(self, ctx: SamplingContext, state: SamplerState) -> Resampled:
        if not state:  # called without init_state: split the current points now
            state = self.init_state(ctx.points)
        sizes = [int(s) for s in state["sizes"]]
        if sum(sizes) != ctx.n:
            raise ValueError(
                f"Mix state covers {sum(sizes)} points but the context has {ctx.n}; "
                "pass the state returned by init_state or the last resample"
            )
        residuals = ctx.residuals.split(sizes) if ctx.residuals is not None else [None] * len(sizes)
        points, weights, states, new_sizes = [], [], [], []
        info: dict[str, float] = {}
        any_weights = False
        for j, ((sampler, _), seg, res, part_state) in enumerate(
            zip(self.parts, ctx.points.split(sizes), residuals, state["parts"], strict=True)
        ):
            if seg.shape[0] == 0:
                states.append(part_state)
                new_sizes.append(0)
                continue
            sub = SamplingContext(
                points=seg,
                residuals=res,
                residual_fn=ctx.residual_fn,
                domain=ctx.domain,
                step=ctx.step,
                generator=ctx.generator,
                residual_grad_fn=ctx.residual_grad_fn,
            )
            out = sampler.resample(sub, part_state)
            n_j = int(out.points.shape[0])
            points.append(out.points)
            any_weights |= out.weights is not None
            weights.append(out.weights)
            states.append(out.state)
            new_sizes.append(n_j)
            info[f"part{j}_n"] = float(n_j)
            info.update({f"part{j}_{key}": value for key, value in out.info.items()})
        pts = torch.cat(points)
        w = None
        if any_weights:
            w = torch.cat(
                [
                    wj.to(pts.device, pts.dtype)
                    if wj is not None
                    else torch.ones(p.shape[0], dtype=pts.dtype, device=pts.device)
                    for wj, p in zip(weights, points, strict=True)
                ]
            )
        return Resampled(pts, {"sizes": new_sizes, "parts": states}, weights=w, info=info)
