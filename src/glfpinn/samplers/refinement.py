"""The shared half of the refinement samplers (RAR-D, RAR-G): the set grows by ``n_add`` points
per resample, picked from a freshly scored uniform candidate set; subclasses say how to pick."""

from __future__ import annotations

import abc

from torch import Tensor

from glfpinn.samplers.base import Sampler, SamplerState, SamplingContext

__all__ = ["Refinement"]


class Refinement(Sampler):
    """Subclasses store ``n_candidates`` and ``n_add`` (None: max(1, n_0 // 200), n_0 the size
    at ``init_state``) and implement ``resample`` with :meth:`scored_candidates`."""

    conserves_population = False
    n_candidates: int
    n_add: int | None

    def init_state(self, points: Tensor) -> SamplerState:
        # The default growth rate is a fraction of the initial size, which must survive resumes.
        return {"n_initial": int(points.shape[0])}

    def points_to_add(self, state: SamplerState, n_now: int) -> int:
        if self.n_add is not None:
            n_add = self.n_add
        else:
            n_add = max(1, int(state.get("n_initial", n_now)) // 200)
        if n_add > self.n_candidates:
            raise ValueError(
                f"n_add={n_add} exceeds n_candidates={self.n_candidates}; "
                "raise n_candidates or lower n_add"
            )
        return n_add

    def scored_candidates(self, ctx: SamplingContext) -> tuple[Tensor, Tensor]:
        """A fresh uniform candidate set on the points' device and its exact |residuals|."""
        cand = ctx.domain.sample(self.n_candidates, ctx.generator, dtype=ctx.points.dtype)
        cand = cand.to(ctx.points.device)
        return cand, ctx.score(cand, type(self).__name__)

    @abc.abstractmethod
    def resample(self, ctx, state): ...
