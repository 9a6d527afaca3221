"""Samplers refuse what they cannot use, in one line, before doing anything: hyperparameters
outside their range (infinities and non-integers included) at construction, and residuals
that are NaN or infinite at the resample that reads them."""

import math
import re
from dataclasses import replace

import pytest
import torch

from glfpinn import samplers
from glfpinn.samplers import GLF, PACMANN, R3, RAD, RARD, RARG, Mix, RSmote, Uniform
from glfpinn.testing import bump, make_context
from tests.samplers.test_base import SCORERS
from tests.samplers.test_costs import COSTS, N


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: GLF(M=2.5), "M=2.5 is not allowed; M must be an integer >= 1"),
        (lambda: GLF(M=3.0), "M=3.0 is not allowed; M must be an integer >= 1"),
        (lambda: GLF(M=True), "M=True is not allowed; M must be an integer >= 1"),
        (lambda: GLF(k=math.inf), "k=inf is not allowed; k must be a finite number >= 0"),
        (lambda: GLF(c=math.inf), "c=inf is not allowed; c must be a finite number >= 0"),
        (
            lambda: GLF(alpha=math.nan),
            "alpha=nan is not allowed; alpha must be a finite number > 0",
        ),
        (lambda: GLF(eps=math.inf), "eps=inf is not allowed; eps must be a finite number > 0"),
        (lambda: GLF(h_max=math.inf), "h_max=inf is not allowed"),
        (
            lambda: GLF(alpha="1e-3"),
            "alpha='1e-3' is not allowed; alpha must be a finite number > 0",
        ),
        (lambda: GLF(neighbors=1.5), "neighbors=1.5 is not allowed"),
        (lambda: GLF(replace="no"), "replace='no' is not allowed; replace must be true or false"),
        (lambda: GLF(importance_weights=1), "importance_weights=1 is not allowed"),
        (lambda: GLF(pool=["candidates"]), "pool=['candidates'] is unknown; allowed: candidates"),
        (lambda: RAD(k=math.inf), "k=inf is not allowed"),
        (lambda: RAD(n_candidates=1e5), "n_candidates=100000.0 is not allowed"),
        (lambda: RAD(replace="yes"), "replace='yes' is not allowed"),
        (lambda: RARD(n_add=2.5), "n_add=2.5 is not allowed; n_add must be an integer >= 1"),
        (lambda: RARD(c=-math.inf), "c=-inf is not allowed"),
        (lambda: RARG(n_candidates=10.5), "n_candidates=10.5 is not allowed"),
        (lambda: PACMANN(step_size=math.inf), "step_size=inf is not allowed"),
        (lambda: PACMANN(n_moves=2.0), "n_moves=2.0 is not allowed"),
        (lambda: PACMANN(keep_moments="yes"), "keep_moments='yes' is not allowed"),
        (lambda: RSmote(k_neighbors=2.5), "k_neighbors=2.5 is not allowed"),
        (lambda: RSmote(chunk=math.inf), "chunk=inf is not allowed"),
        (lambda: RSmote(top_fraction="0.2"), "top_fraction='0.2' is not allowed"),
        (lambda: RSmote(top_fraction=True), "top_fraction=True is not allowed"),
        (lambda: R3(method=None), "method=None is unknown; allowed: uniform, sobol"),
        (lambda: Uniform(method=["sobol"]), "method=['sobol'] is unknown"),
        (lambda: Mix([(GLF(), math.inf)]), "fraction=inf is not allowed"),
        (lambda: Mix([(GLF(), "1")]), "fraction='1' is not allowed"),
    ],
)
def test_every_hyperparameter_is_checked_at_construction(make, message):
    with pytest.raises(ValueError, match=f"^{re.escape(message)}|: {re.escape(message)}") as err:
        make()
    assert "\n" not in str(err.value)


def test_whole_numbers_of_any_integer_type_are_taken_as_ints():
    import numpy as np

    glf = GLF(M=np.int64(4), neighbors=2)
    assert glf.M == 4 and type(glf.M) is int
    assert RAD(n_candidates=100_000, k=np.float32(2.0)).n_candidates == 100_000


def _nan_where_x_above_half(x: torch.Tensor) -> torch.Tensor:
    r = bump(x)
    return torch.where(x[:, 0] > 0.5, torch.full_like(r, math.nan), r)


#: The registered samplers that read the free residuals, and the name their error gives.
FREE_READERS = {
    "glf": "GLF",
    "glf-d": "GLF",
    "glf-scaled": "GLF",
    "glf-robust": "RobustGLF",
    "glf-adaptive-m": "GLF",
    "r3": "R3",
    "rsmote": "RSmote",
    "mix": "GLF",
    "settle": "Settle",
    "follow": "Follow",
}


def _build(name: str):
    params, _ = COSTS[name]
    return samplers.get(name, **params)


@pytest.mark.parametrize("name", list(COSTS))
@pytest.mark.parametrize("bad", [math.nan, math.inf])
def test_non_finite_free_residuals_are_refused_by_the_samplers_that_read_them(name, bad):
    ctx, _ = make_context(n=N)
    r = ctx.residuals.clone()
    r[[3, 50, 51]] = bad  # in the first half: a mix's GLF part
    ctx = replace(ctx, residuals=r)
    sampler = _build(name)
    state = sampler.init_state(ctx.points)
    if name not in FREE_READERS:  # it never looks at them: nothing to refuse
        out = sampler.resample(ctx, state)
        assert bool(torch.isfinite(out.points).all())
        return
    n = N if name != "mix" else N // 2
    expected = (
        f"{FREE_READERS[name]} got 3 non-finite residuals (NaN or inf) of {n} "
        "at the current points; the network or the problem's residual has diverged there"
    )
    with pytest.raises(ValueError, match=f"^{re.escape(expected)}$"):
        sampler.resample(ctx, state)


@pytest.mark.parametrize("name", list(COSTS))
def test_non_finite_scored_residuals_are_refused_by_the_samplers_that_score(name):
    ctx, _ = make_context(n=N, residual=_nan_where_x_above_half)
    ctx = replace(ctx, residuals=bump(ctx.points))  # the free ones are fine
    sampler = _build(name)
    state = sampler.init_state(ctx.points)
    if name not in SCORERS:
        out = sampler.resample(ctx, state)
        assert bool(torch.isfinite(out.points).all())
        return
    who = re.escape(SCORERS[name])
    with pytest.raises(
        ValueError, match=rf"^{who} got [1-9]\d* non-finite residuals \(NaN or inf\)"
    ):
        sampler.resample(ctx, state)
