"""Every built-in sampler passes glfpinn.testing.check_sampler, and the suite catches breakage."""

from __future__ import annotations

import pytest
import torch

from glfpinn import samplers
from glfpinn.samplers import (
    GLF,
    PACMANN,
    R3,
    RAD,
    RARD,
    RARG,
    Follow,
    Mix,
    Resampled,
    RobustGLF,
    RSmote,
    Sampler,
    Settle,
    Uniform,
    UniformResample,
)
from glfpinn.testing import check_sampler

#: Candidate sets this small keep each sampler's checks well under a second; no check depends
#: on the candidate count.
SMALL = 1000


#: How the registered "mix" is built from config data (it has no default parts).
MIX_PARTS = [
    {"sampler": "glf", "fraction": 0.7, "params": {"alpha": 1e-3}},
    {"sampler": "rad", "fraction": 0.3, "params": {"n_candidates": SMALL}},
]


def _registered(name: str) -> Sampler:
    if name == "mix":
        return samplers.get("mix", parts=MIX_PARTS)
    default = samplers.get(name)
    if "n_candidates" in default.get_params():
        return samplers.get(name, n_candidates=SMALL)
    return default


CASES: dict[str, Sampler] = {name: _registered(name) for name in samplers.names()}
CASES.update(
    {
        "rad+importance": RAD(n_candidates=SMALL, importance_weights=True),
        "glf+importance": GLF(importance_weights=True),
        "glf-robust-density-rad": RobustGLF(density="rad", fixed=0.2, global_candidates=0.5),
        "glf-moved-target": GLF(moved_target=0.5),
        "glf-robust-moved-target": RobustGLF(moved_target=0.8),
        # below=-1, watch=1: held at the first resample, moving (so drawing) from the second
        "settle-watch-initial": Settle(RobustGLF(), watch_on="initial", watch=1, below=-1),
        # half RAD's points, half fresh; the persistence measured on a subset from the second
        "follow-rad-probe": Follow(RAD(n_candidates=SMALL), start=0.5, probe=50),
        "rar-d-n_add": RARD(n_candidates=SMALL, n_add=5),
        "rar-g-n_add": RARG(n_candidates=SMALL, n_add=5),
        "r3-sobol": R3(method="sobol"),
        "rsmote-explore": RSmote(uniform_fraction=0.5, k_neighbors=3),
        "pacmann-gd": PACMANN(optimizer="gd", step_size=0.05, n_moves=4),
        "pacmann-moments": PACMANN(step_size=0.1, n_moves=4, keep_moments=True),
        "pacmann-uniform": PACMANN(step_size=0.5, n_moves=4, boundary="uniform"),
        "mix-python": Mix([(GLF(), 0.7), (UniformResample(), 0.3)]),
        "mix-growing": Mix(
            [
                (RARD(n_candidates=500), 0.5),
                (PACMANN(n_moves=3, keep_moments=True), 0.25),
                (Uniform(), 0.25),
            ]
        ),
        "mix-weights": Mix([(RAD(n_candidates=SMALL, importance_weights=True), 0.5), (R3(), 0.5)]),
    }
)


@pytest.mark.parametrize("name", list(CASES))
def test_sampler_passes_the_conformance_suite(name):
    check_sampler(CASES[name])


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("name", list(CASES))
def test_sampler_passes_the_conformance_suite_on_cuda(name):
    check_sampler(CASES[name], dims=(2, 20), device="cuda")


# ----------------------------------------------------------------- deliberately broken samplers
class GlobalRNG(Sampler):
    def resample(self, ctx, state):
        return Resampled(
            ctx.domain.reflect(ctx.points + 0.01 * torch.randn_like(ctx.points)), state
        )


class Outside(Sampler):
    def resample(self, ctx, state):
        lo, hi = ctx.domain.bounds
        return Resampled(ctx.points + (hi - lo).to(ctx.points), state)


class WrongDtype(Sampler):
    def resample(self, ctx, state):
        return Resampled(ctx.points.double(), state)


class Shrinks(Sampler):
    def resample(self, ctx, state):
        return Resampled(ctx.points[1:], state)


class OwnGenerator(Sampler):
    """Jitters by noise from a generator of its own: reproducible, but deaf to the run's seed."""

    def resample(self, ctx, state):
        gen = torch.Generator(ctx.points.device).manual_seed(0)
        noise = torch.randn(ctx.points.shape, generator=gen, dtype=ctx.points.dtype)
        return Resampled(ctx.domain.reflect(ctx.points + 0.01 * noise), state)


class FixedGrid(Sampler):
    """Always the same points, ignoring every seed, without saying so (stochastic = False)."""

    def initial_points(self, n, domain, generator, dtype):
        lo, hi = domain.bounds
        t = torch.linspace(0, 1, n, dtype=torch.float64)[:, None]
        pts = (lo + t * (hi - lo)).to(dtype)
        return domain.reflect(pts)

    def resample(self, ctx, state):
        return Resampled(
            self.initial_points(ctx.n, ctx.domain, ctx.generator, ctx.points.dtype), state
        )


class _Opaque:
    pass


class UnpicklableState(Sampler):
    def init_state(self, points):
        return {"memo": _Opaque()}

    def resample(self, ctx, state):
        return Resampled(ctx.domain.sample(ctx.n, ctx.generator, dtype=ctx.points.dtype), state)


class NaNOnZeroResiduals(Sampler):
    def resample(self, ctx, state):
        r = ctx.current_residuals()
        p = r / r.sum()  # 0/0 when every residual vanishes
        pts = ctx.domain.sample(ctx.n, ctx.generator, dtype=ctx.points.dtype)
        return Resampled(pts + 0 * p[:, None].to(pts), state)


class ForgetsParams(Sampler):
    def __init__(self, scale: float = 1.0) -> None:
        self._scale = scale

    def resample(self, ctx, state):
        return Resampled(ctx.points, state)


class AltersParams(Sampler):
    def __init__(self, scale: float = 1.0) -> None:
        self.scale = 2 * scale

    def resample(self, ctx, state):
        return Resampled(ctx.domain.sample(ctx.n, ctx.generator, dtype=ctx.points.dtype), state)


class MutatesState(Sampler):
    """Keeps a counter in its state but bumps it in place: a resumed run would diverge."""

    def init_state(self, points):
        return {"count": torch.zeros(1)}

    def resample(self, ctx, state):
        state["count"] += 1
        shift = 1e-3 * float(state["count"])
        pts = ctx.domain.sample(ctx.n, ctx.generator, dtype=ctx.points.dtype)
        return Resampled(ctx.domain.reflect(pts + shift), state)


@pytest.mark.parametrize(
    "sampler, check",
    [
        (GlobalRNG(), "global RNG"),
        (Outside(), "resample 1"),
        (WrongDtype(), "resample 1"),
        (Shrinks(), "resample 1"),
        (OwnGenerator(), "generator"),
        (FixedGrid(), "seed"),
        (UnpicklableState(), "state round trip"),
        (NaNOnZeroResiduals(), "zero residuals: resample 1"),
        (ForgetsParams(), "params"),
        (AltersParams(), "params"),
        (MutatesState(), "state round trip"),
    ],
    ids=lambda v: v if isinstance(v, str) else type(v).__name__,
)
def test_check_sampler_fails_a_broken_sampler_naming_the_check(sampler, check):
    with pytest.raises(AssertionError) as info:
        check_sampler(sampler, dims=(2,))
    message = str(info.value)
    assert f"[{check}]" in message, message
    assert type(sampler).__name__ in message


def test_messages_say_what_went_wrong():
    with pytest.raises(AssertionError, match="outside the domain"):
        check_sampler(Outside(), dims=(1,), include_lshape=False)
    with pytest.raises(AssertionError, match="float64.*float32"):
        check_sampler(WrongDtype(), dims=(1,), include_lshape=False)
    with pytest.raises(AssertionError, match="not a glfpinn.samplers.Sampler"):
        check_sampler(object())


def test_a_deterministic_sampler_may_declare_itself():
    class DeclaredGrid(FixedGrid):
        stochastic = False

    check_sampler(DeclaredGrid(), dims=(2,))
