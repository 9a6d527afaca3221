"""The sampling context outside the trainer: a sampler that only reads the free residuals runs
without any residual function, and one that must score says, in one line, what to pass."""

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from glfpinn import GLF, R3, Mix, Scorer, UniformResample, problems, samplers
from glfpinn.domains import Box
from glfpinn.samplers import SamplingContext
from glfpinn.testing import bump, make_context
from tests.samplers.test_costs import COSTS, N

#: The registered samplers that score points at a resample (a nonzero cost in test_costs), and
#: the name their error gives ("mix" there has a RAD part).
SCORERS = {
    "rad": "RAD",
    "glf-d": "GLF(surrogate='exact')",
    "rar-d": "RARD",
    "rar-g": "RARG",
    "pacmann": "PACMANN",
    "mix": "RAD",
}


def _bare(ctx: SamplingContext, **changes) -> SamplingContext:
    """``ctx`` without residual functions, as a hand-written training loop builds it."""
    return replace(ctx, residual_fn=None, residual_grad_fn=None, **changes)


def _build(name: str):
    params, _ = COSTS[name]
    return samplers.get(name, **params)


def test_the_scoring_samplers_are_those_with_a_cost():
    assert set(SCORERS) == {name for name, (_, evals) in COSTS.items() if evals > 0}


@pytest.mark.parametrize("name", samplers.names())
def test_a_sampler_runs_without_residual_fn_unless_it_scores(name):
    sampler = _build(name)
    ctx, _ = make_context(n=N, seed=3)
    state = sampler.init_state(ctx.points)
    if name in SCORERS:
        with pytest.raises(ValueError) as err:
            sampler.resample(_bare(ctx), state)
        message = str(err.value)
        assert message.startswith(f"{SCORERS[name]} ") and "\n" not in message
        wanted = "residual_grad_fn" if name == "pacmann" else "residual_fn"
        assert f"give the SamplingContext a {wanted}" in message
        assert "glfpinn.Scorer(lambda x: problem.residual(model, x))" in message
        return
    out = sampler.resample(_bare(ctx), state)
    # The same draws as with a residual function: its absence changes nothing but the error.
    again, _ = make_context(n=N, seed=3)
    ref = sampler.resample(again, state)
    assert torch.equal(out.points, ref.points)


def test_a_mix_of_samplers_that_never_score_needs_no_residual_fn():
    mix = Mix([(GLF(), 0.5), (R3(), 0.3), (UniformResample(), 0.2)])
    ctx, _ = make_context(n=100)
    out = mix.resample(_bare(ctx), mix.init_state(ctx.points))
    assert out.points.shape == (100, 2)


@pytest.mark.parametrize("name", [n for n in samplers.names() if n not in SCORERS])
def test_without_free_residuals_or_residual_fn_only_residual_readers_refuse(name):
    """A sampler that reads the residuals at its current points scores them when none are
    given (N evaluations); with no residual_fn either it must say so, the others run as
    before."""
    sampler = _build(name)
    ctx, fn = make_context(n=N, free_residuals=False)
    state = sampler.init_state(ctx.points)
    sampler.resample(ctx, state)
    if fn.evals == 0:
        sampler.resample(_bare(ctx), state)
        return
    with pytest.raises(ValueError, match=r"needs residuals at the current points") as err:
        sampler.resample(_bare(ctx), state)
    assert "give the SamplingContext residuals" in str(err.value)
    assert "\n" not in str(err.value)


def test_current_residuals_without_anything_names_who_asked():
    ctx, _ = make_context(n=10, free_residuals=False)
    with pytest.raises(ValueError, match=r"^MySampler needs residuals at the current points"):
        _bare(ctx).current_residuals("MySampler")


def test_score_takes_a_plain_function_of_signed_residuals_with_a_graph():
    """A user may pass ``lambda x: problem.residual(model, x)`` itself: the scores are still
    |r|, detached."""
    w = torch.tensor(2.0, requires_grad=True)
    ctx, _ = make_context(n=10)
    ctx = replace(ctx, residual_fn=lambda x: -w * bump(x))
    x = ctx.points[:4]
    r = ctx.score(x, "test")
    assert not r.requires_grad
    assert torch.equal(r, (2 * bump(x)).detach())


def test_residual_functions_are_keyword_only():
    """The old positional order (points, residuals, residual_fn, domain, ...) fails loudly
    instead of binding a function to ``domain``."""
    box = Box.cube(2)
    gen = torch.Generator().manual_seed(0)
    pts = box.sample(8, gen)
    with pytest.raises(TypeError):
        SamplingContext(pts, None, Scorer(bump), box, 0, gen)
    ctx = SamplingContext(pts, None, box, 0, gen)
    assert ctx.residual_fn is None and ctx.residual_grad_fn is None


def test_the_own_loop_snippet_in_the_docs_runs():
    """docs/samplers.md's loop, at a tiny budget (40 steps, a resample every 20)."""
    doc = (Path(__file__).parents[2] / "docs" / "samplers.md").read_text(encoding="utf-8")
    section = doc.split("## A sampler in your own loop", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    snippet = snippet.replace("5001", "41").replace("% 500", "% 20").replace("2000", "64")
    problem = problems.get("burgers")
    model = problem.build_model(hidden=(8,), generator=torch.Generator().manual_seed(0))
    scope = {
        "torch": torch,
        "problem": problem,
        "model": model,
        "optimizer": torch.optim.Adam(model.parameters(), lr=1e-3),
    }
    exec(compile(snippet, "docs/samplers.md", "exec"), scope)
    assert scope["x"].shape == (64, 2) and scope["step"] == 40
    initial = problem.domain.sample(64, torch.Generator().manual_seed(0))
    assert not torch.equal(scope["x"], initial)  # resampled: no longer the first draw
