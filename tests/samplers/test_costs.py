"""Residual evaluations per resample, for every registered sampler, as docs/samplers.md says."""

from pathlib import Path

import pytest

from glfpinn import samplers
from glfpinn.testing import make_context

N, CANDIDATES = 120, 1000

#: name -> (constructor overrides, evaluations per resample with N points and free residuals).
COSTS = {
    "uniform": ({}, 0),
    "uniform-resample": ({}, 0),
    "sobol": ({}, 0),
    "halton": ({}, 0),
    "lhs": ({}, 0),
    "rad": ({"n_candidates": CANDIDATES}, CANDIDATES),
    "glf": ({}, 0),
    "glf-d": ({"M": 3}, 3 * N),
    "glf-scaled": ({}, 0),
    "glf-robust": ({}, 0),
    "glf-adaptive-m": ({}, 0),
    "rar-d": ({"n_candidates": CANDIDATES}, CANDIDATES),
    "rar-g": ({"n_candidates": CANDIDATES}, CANDIDATES),
    "r3": ({}, 0),
    "rsmote": ({}, 0),
    "pacmann": ({"n_moves": 4}, 4 * N),
    # half the points GLF's (free), half RAD's: one scoring pass over RAD's candidates
    "mix": (
        {
            "parts": [
                {"sampler": "glf", "fraction": 0.5},
                {"sampler": "rad", "fraction": 0.5, "params": {"n_candidates": CANDIDATES}},
            ]
        },
        CANDIDATES,
    ),
    # robust GLF inside (free); the persistence is measured on residuals it already has
    "settle": ({}, 0),
    # robust GLF inside (free); the persistence is measured on residuals it already has
    "follow": ({}, 0),
}


def test_every_registered_sampler_has_a_documented_cost():
    assert set(samplers.names()) == set(COSTS)
    doc = (Path(__file__).parents[2] / "docs" / "samplers.md").read_text(encoding="utf-8")
    for name in COSTS:
        assert f"`{name}`" in doc, f"docs/samplers.md does not mention `{name}`"


@pytest.mark.parametrize("name", list(COSTS))
def test_residual_evaluations_per_resample(name):
    params, expected = COSTS[name]
    sampler = samplers.get(name, **params)
    ctx, fn = make_context(n=N)
    sampler.resample(ctx, sampler.init_state(ctx.points))
    assert fn.evals == expected
