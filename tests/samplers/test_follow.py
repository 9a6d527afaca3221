"""Follow: the inner sampler places a share of the points that grows with the mean persistence
of the residual's ranking over the run; the rest are fresh uniform points."""

import pytest
import torch

from glfpinn import samplers
from glfpinn.domains import Box
from glfpinn.samplers import RAD, RARD, Follow, RobustGLF, Uniform, UniformResample
from glfpinn.samplers.follow import FOLLOW_HIGH, FOLLOW_LOW, follow_share
from glfpinn.testing import bump, make_context

N = 400


def _run(inner, residual_at, resamples: int, **follow):
    """``resamples`` resamples of Follow(inner) on [-1, 1]^2, ``residual_at(x, i)`` the
    residual of training at the i-th resample. Returns each resample's current points and
    output."""
    sampler = Follow(inner, **follow)
    ctx, _ = make_context(Box.cube(2, -1.0, 1.0), n=N, seed=3)
    gen, points = ctx.generator, ctx.points
    state = sampler.init_state(points)
    history = []
    for i in range(resamples):
        r = residual_at(points, i)
        ctx = type(ctx)(points=points, residuals=r, domain=ctx.domain, step=i, generator=gen)
        out = sampler.resample(ctx, state)
        history.append((points, out))
        points, state = out.points, out.state
    return history


def _reshuffled(x, i):
    """A residual whose ranking training reshuffles: independent values at every resample."""
    g = torch.Generator().manual_seed(1000 + i)
    return torch.rand(x.shape[0], generator=g) + 0.01


def _persisting(x, i):
    return bump(x).abs() + 0.01


def _kept(before, after):
    """How many rows of ``after`` are rows of ``before`` (fresh uniform rows never are)."""
    return int((torch.cdist(after.double(), before.double()) == 0).any(1).sum())


def test_the_share_is_zero_below_low_one_above_high_and_linear_between():
    assert follow_share(FOLLOW_LOW - 0.1) == 0.0 and follow_share(FOLLOW_LOW) == 0.0
    assert follow_share(FOLLOW_HIGH) == 1.0 and follow_share(0.95) == 1.0
    middle = (FOLLOW_LOW + FOLLOW_HIGH) / 2
    assert follow_share(middle) == pytest.approx(0.5)
    assert follow_share(0.0, low=-0.5, high=0.5) == pytest.approx(0.5)


def test_a_persisting_ranking_leaves_every_point_to_the_inner_sampler():
    # Uniform as the inner sampler returns the current points, so a kept point is a point of
    # the current set and a fresh one is not
    for points, out in _run(Uniform(), _persisting, 5):
        assert torch.equal(out.points, points) and out.info["follow_share"] == 1.0
    # the same points, the same residual: each point carries its own residual, a perfect rank
    measured = [out.info["persistence"] for _, out in _run(Uniform(), _persisting, 4)[1:]]
    assert measured == pytest.approx([1.0] * 3)


def test_a_reshuffled_ranking_draws_fresh_uniform_points_from_the_second_resample():
    history = _run(Uniform(), _reshuffled, 5)
    first_points, first = history[0]
    assert "persistence" not in first.info and torch.equal(first.points, first_points)
    for points, out in history[1:]:
        # independent values at N = 400 points: |Spearman| has a standard deviation of 0.05,
        # and the mean stays below low = 0.3 by more than 5 of them
        assert abs(out.info["persistence"]) < 0.2
        assert out.info["follow_share"] == 0.0 and _kept(points, out.points) == 0
        # uniform on [-1, 1]^2: each quadrant holds N / 4 = 100 points, binomial standard
        # deviation 8.7; 40 is 7 deviations off
        quadrants = torch.bincount((out.points[:, 0] > 0).long() * 2 + (out.points[:, 1] > 0))
        assert (quadrants - N / 4).abs().max() < 40


def test_the_share_follows_the_mean_persistence_over_the_run_not_the_last_one():
    # persisting at resamples 0-1 (the second measures 1), reshuffled from then on
    def residual_at(x, i):
        return _persisting(x, i) if i < 2 else _reshuffled(x, i)

    history = _run(Uniform(), residual_at, 5)
    measured = []
    for points, out in history[1:]:
        measured.append(out.info["persistence"])
        share = follow_share(sum(measured) / len(measured))
        assert out.info["follow_share"] == round(share * N) / N
        assert _kept(points, out.points) == round(share * N)
    # one perfect ranking, then noise: the mean (about 1/2, then 1/3, then 1/4) still follows
    # in part where the last measurement alone would not
    assert 0 < history[2][1].info["follow_share"] < 1 and measured[-1] < FOLLOW_LOW


def test_start_sets_the_share_before_the_first_measurement():
    points, out = _run(Uniform(), _persisting, 1, start=0.0)[0]
    assert out.info["follow_share"] == 0.0 and _kept(points, out.points) == 0
    points, out = _run(Uniform(), _persisting, 1, start=0.25)[0]
    assert _kept(points, out.points) == N // 4


def test_fresh_uniform_points_measure_a_front_that_stays_and_not_a_reshuffled_one():
    # the reason one measure serves a mixed set: a fresh uniform point carries its region's
    # residual from the last resample, so a hard region that stays hard shows as persistence
    fronts = _run(UniformResample(), _persisting, 4)
    noise = _run(UniformResample(), _reshuffled, 4)
    assert all(out.info["persistence"] > 0.9 for _, out in fronts[1:])
    assert all(abs(out.info["persistence"]) < 0.2 for _, out in noise[1:])


def test_above_probe_points_the_persistence_is_measured_on_a_random_subset():
    history = _run(RobustGLF(), _persisting, 3, probe=100)
    for _, out in history:
        assert out.state["carried"].shape == (100,) and out.state["probed"].shape == (100,)
    # the bump's ranking persists on 100 points as on all of them
    assert all(out.info["persistence"] > 0.8 for _, out in history[1:])
    full = _run(RobustGLF(), _persisting, 1)[0][1]
    assert full.state["probed"] is None and full.state["carried"].shape == (N,)


def test_the_inner_samplers_loss_weights_stay_with_its_points_and_fresh_points_weigh_one():
    ctx, _ = make_context(n=N, seed=5)
    sampler = Follow(RAD(n_candidates=2000, importance_weights=True), start=0.5)
    out = sampler.resample(ctx, sampler.init_state(ctx.points))
    assert out.weights is not None and out.weights.shape == (N,)
    assert torch.equal(out.weights[N // 2 :], torch.ones(N // 2))
    # RAD's own weights are 1 / inclusion probability, normalised: not all 1
    assert not torch.equal(out.weights[: N // 2], torch.ones(N // 2))


def test_the_registry_builds_it_from_config_data():
    sampler = samplers.get("follow", inner="rad", inner_params={"n_candidates": 500}, low=0.2)
    assert isinstance(sampler.inner, RAD) and sampler.inner.n_candidates == 500
    assert sampler.low == 0.2 and sampler.high == FOLLOW_HIGH
    assert isinstance(samplers.get("follow").inner, RobustGLF)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"low": 0.7}, "low=0.7 must be below high=0.6"),
        ({"low": 0.5, "high": 0.5}, "low=0.5 must be below high=0.5"),
        ({"low": -2}, "low=-2 must be a number in [-1, 1]"),
        ({"high": 1.5}, "high=1.5 must be a number in [-1, 1]"),
        ({"high": True}, "high=True must be a number in [-1, 1]"),
        ({"start": 1.1}, "start=1.1 must be a number in [0, 1]"),
        ({"start": float("nan")}, "start=nan must be a number in [0, 1]"),
        ({"probe": 1}, "probe=1 is not allowed; probe must be an integer >= 2"),
    ],
)
def test_bad_values_are_one_line_errors(kwargs, message):
    with pytest.raises(ValueError) as err:
        Follow(RobustGLF(), **kwargs)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_an_inner_sampler_that_grows_the_set_or_is_not_a_sampler_is_refused():
    with pytest.raises(ValueError, match="grows the set"):
        Follow(RARD(n_candidates=100))
    with pytest.raises(ValueError, match="is not a Sampler"):
        Follow("glf-robust")
