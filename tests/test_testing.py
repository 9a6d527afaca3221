"""glfpinn.testing: its helpers, and the README's custom-sampler example, which must run."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from glfpinn import samplers
from glfpinn.domains import LShape
from glfpinn.samplers import RAD, UniformResample
from glfpinn.testing import bump, check_sampler, make_context

README = Path(__file__).parents[1] / "README.md"


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(encoding="utf-8"), flags=re.S)


def test_the_readme_example_runs_and_registers_its_sampler(monkeypatch):
    # The example registers "jitter"; keep that out of the registry the other tests see.
    monkeypatch.setattr(samplers._registry, "_entries", dict(samplers._registry._entries))
    (block,) = [b for b in _python_blocks(README) if "check_sampler(Jitter())" in b]
    namespace: dict = {"__name__": "readme_example"}
    exec(compile(block, str(README), "exec"), namespace)
    assert "jitter" in samplers.names()
    assert namespace["sampler"].sigma == 0.02
    assert repr(namespace["sampler"]) == "Jitter(sigma=0.02)"


def test_make_context_scores_its_own_points():
    ctx, fn = make_context(LShape(), n=30, dtype=torch.float64)
    assert ctx.points.shape == (30, 2) and ctx.points.dtype == torch.float64
    assert torch.equal(ctx.residuals, bump(ctx.points))
    assert fn.evals == 0  # the free residuals are not counted
    ctx, _ = make_context(n=30, free_residuals=False)
    assert ctx.residuals is None


def test_options_narrow_the_domains_checked():
    check_sampler(UniformResample(), dims=(3,), include_lshape=False, n=16, seed=5)
    check_sampler(RAD(n_candidates=500), dims=(), include_lshape=True, n=16)


def test_a_growing_sampler_may_not_shrink():
    from glfpinn.samplers import Resampled, Sampler

    class GrowsThenShrinks(Sampler):
        conserves_population = False

        def init_state(self, points):
            return {"grow": True}

        def resample(self, ctx, state):
            extra = ctx.domain.sample(4, ctx.generator, dtype=ctx.points.dtype)
            pts = torch.cat([ctx.points, extra]) if state["grow"] else ctx.points[:-1]
            return Resampled(pts, {"grow": not state["grow"]})

    with pytest.raises(AssertionError, match=r"\[resample 2\].*fewer than the 68"):
        check_sampler(GrowsThenShrinks(), dims=(2,))
