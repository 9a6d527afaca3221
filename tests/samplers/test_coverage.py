"""The coverage measure, the collapse warning, and robust GLF against the paper's GLF on a fixed
residual field (no training: the collapse is the draw's own dynamics)."""

import math
import warnings

import pytest
import torch

from glfpinn.domains import Box, LShape
from glfpinn.samplers import GLF, RAD, RobustGLF, UniformResample
from glfpinn.samplers.coverage import (
    DEFAULT_THRESHOLD,
    CollapseMonitor,
    CollapseWarning,
    check_threshold,
    coverage,
)
from glfpinn.testing import make_context


@pytest.mark.parametrize(
    "domain, n",
    [
        (Box.cube(2, -1.0, 1.0), 1000),
        (Box([-1.0, 0.0], [1.0, 1.0]), 300),
        (LShape(), 2000),
        (Box.cube(5), 500),
        (Box.cube(21), 500),
    ],
)
def test_a_uniform_set_covers_about_one(domain, n):
    """The expectation is the balls-in-bins occupancy of the cells inside the domain; 20 seeded
    draws average within 5% of 1 (the L-shape's cells cut by its re-entrant edges count as
    inside, a bias of about 2% at N = 2000)."""
    values = [
        coverage(domain.sample(n, torch.Generator().manual_seed(s)), domain) for s in range(20)
    ]
    assert sum(values) / len(values) == pytest.approx(1.0, abs=0.05)
    assert min(values) > 0.85


@pytest.mark.parametrize("domain", [Box.cube(2, -1.0, 1.0), Box.cube(21)])
def test_a_set_in_clumps_covers_almost_nothing(domain):
    """1000 points in 20 clumps of width 1e-4: at most 20 cells of the ~630 (2-D) or ~1000
    (21-D) a uniform set fills."""
    gen = torch.Generator().manual_seed(0)
    centres = domain.sample(20, gen)
    points = centres.repeat_interleave(50, 0) + 1e-4 * torch.randn(1000, domain.dim, generator=gen)
    points = domain.reflect(points)
    assert coverage(points, domain) < 0.05


def test_points_on_the_upper_faces_count_in_the_last_cells():
    box = Box.cube(2)
    corners = torch.tensor([[1.0, 1.0], [0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    # four distinct cells: the upper faces do not open a row of cells past the box
    assert coverage(corners, box) * (4 * (1 - (1 - 1 / 4) ** 4)) == pytest.approx(4.0)
    assert math.isnan(coverage(corners[:1], box))


@pytest.mark.parametrize("bad", [0, 1, 1.5, -0.1, float("nan"), True, "0.3"])
def test_a_threshold_outside_the_open_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match="coverage_threshold"):
        check_threshold(bad)


def test_the_monitor_warns_once_with_the_figure_and_the_fix():
    monitor = CollapseMonitor(0.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert not monitor.check(0.8, GLF(), "glf", 100)
        assert monitor.check(0.2, GLF(), "glf", 200)
        assert monitor.check(0.1, GLF(), "glf", 300)
    collapse = [w for w in caught if issubclass(w.category, CollapseWarning)]
    assert len(collapse) == 1
    text = str(collapse[0].message)
    assert "\n" not in text
    assert "'glf'" in text and "step 200" in text and "0.200" in text and "glf-robust" in text


def _hot_spot(x: torch.Tensor) -> torch.Tensor:
    """A residual of order 100 at a corner spot and of order 1 elsewhere: the scale of the
    Helmholtz source where the paper's alpha = 1e-4 moves points by about 1e-6."""
    return 1.0 + 100.0 * torch.exp(-((x - 0.5) ** 2).sum(1) / 0.02)


def _rounds(sampler, rounds: int = 12, n: int = 1000) -> list[float]:
    domain = Box.cube(2, -1.0, 1.0)
    ctx, fn = make_context(domain, n=n, residual=_hot_spot)
    state = sampler.init_state(ctx.points)
    values = []
    for _ in range(rounds):
        out = sampler.resample(ctx, state)
        state = out.state
        values.append(coverage(out.points, domain))
        ctx = type(ctx)(
            out.points, _hot_spot(out.points), domain, ctx.step, ctx.generator, residual_fn=fn
        )
    return values


def test_the_papers_glf_collapses_on_a_fixed_field_and_robust_glf_does_not():
    paper = _rounds(GLF())
    robust = _rounds(RobustGLF())
    rad = _rounds(RAD(n_candidates=20_000))
    assert paper[-1] < DEFAULT_THRESHOLD  # the draw duplicates the hot anchors round by round
    assert paper[-1] < paper[0]
    assert min(robust) > DEFAULT_THRESHOLD
    assert min(rad) > DEFAULT_THRESHOLD  # a global draw from uniform candidates stays spread
    assert min(_rounds(UniformResample(), rounds=3)) > 0.85
