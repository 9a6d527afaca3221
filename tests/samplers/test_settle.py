"""Settle: the inner sampler moves the points while the residual's ranking persists; a ranking
that training reshuffles settles the run, once and for good, on its initial set or on fresh
uniform draws; with ``overfit``, a held set that training has overfitted is left for fresh
draws."""

import math

import pytest
import torch

from glfpinn import samplers
from glfpinn.domains import Box
from glfpinn.samplers import RARD, RobustGLF, Settle
from glfpinn.samplers.settle import holdout_ratio, persistence
from glfpinn.testing import Scorer, bump, make_context
from tests.samplers.test_in_trainer import _trainer, resumed

N = 400


def _run(residual_at, resamples: int, scorer=None, **settle):
    """``resamples`` resamples of Settle(RobustGLF()) on [-1, 1]^2; ``residual_at(x, i)`` is the
    residual of training at the i-th resample, ``scorer`` the residual at new points. Returns
    the initial points, every output."""
    sampler = Settle(RobustGLF(), **settle)
    ctx, _ = make_context(Box.cube(2, -1.0, 1.0), n=N, seed=3)
    initial, gen = ctx.points, ctx.generator
    state = sampler.init_state(initial)
    points, outs = initial, []
    for i in range(resamples):
        r = residual_at(points, i)
        ctx = type(ctx)(
            points=points,
            residuals=r,
            residual_fn=scorer,
            domain=ctx.domain,
            step=i,
            generator=gen,
        )
        out = sampler.resample(ctx, state)
        outs.append(out)
        points, state = out.points, out.state
    return initial, outs


def _reshuffled(x, i):
    """A residual whose ranking training reshuffles: independent values at every resample."""
    g = torch.Generator().manual_seed(1000 + i)
    return torch.rand(x.shape[0], generator=g) + 0.01


def test_a_reshuffled_ranking_settles_on_the_initial_set_after_the_watch():
    initial, outs = _run(_reshuffled, 5)
    # resample 1 has nothing to measure against; 2 and 3 measure; 3 decides
    assert "persistence" not in outs[0].info and not torch.equal(outs[0].points, initial)
    assert not torch.equal(outs[1].points, initial) and outs[1].info["settled"] == 0.0
    # independent values at N = 400 points: |Spearman| has a standard deviation of 0.05
    assert abs(outs[1].info["persistence"]) < 0.2 and abs(outs[2].info["persistence"]) < 0.2
    for out in outs[2:]:
        assert torch.equal(out.points, initial) and out.info["settled"] == 1.0


def test_settled_on_uniform_resampling_each_later_resample_is_a_fresh_uniform_draw():
    initial, outs = _run(_reshuffled, 6, then="uniform-resample")
    settled = outs[2:]
    assert all(out.info["settled"] == 1.0 for out in settled)
    for before, after in zip(settled[:-1], settled[1:], strict=True):
        assert not torch.equal(before.points, after.points)
    for out in settled:
        assert out.points.shape == initial.shape and out.points.abs().max() <= 1.0
        # uniform on [-1, 1]^2: each quadrant holds N / 4 = 100 points, binomial standard
        # deviation 8.7; 40 is 7 deviations off
        quadrants = torch.bincount((out.points[:, 0] > 0).long() * 2 + (out.points[:, 1] > 0))
        assert (quadrants - N / 4).abs().max() < 40
    # nothing of the moved set's state is consulted after the decision
    assert "carried" not in settled[-1].state


def test_a_persisting_ranking_keeps_the_inner_sampler_moving():
    initial, outs = _run(lambda x, i: bump(x).abs(), 6)
    # a fixed hot spot: the residual a point was drawn with ranks it as its own residual does
    assert outs[1].info["persistence"] > 0.8 and outs[2].info["persistence"] > 0.8
    assert all(out.info["settled"] == 0.0 for out in outs)
    assert not any(torch.equal(out.points, initial) for out in outs)
    # the decision is made once: later resamples no longer pay for the nearest-point search
    assert all("persistence" not in out.info for out in outs[3:])
    assert "carried" not in outs[-1].state


def test_the_threshold_and_the_watch_decide():
    # below=-1: no ranking is below it; watch=1 decides on the first measurement
    _, never = _run(_reshuffled, 4, below=-1.0)
    assert all(out.info["settled"] == 0.0 for out in never)
    initial, early = _run(_reshuffled, 3, watch=1)
    assert torch.equal(early[1].points, initial) and early[1].info["settled"] == 1.0


def test_watching_on_the_initial_set_holds_it_still_until_the_decision():
    """watch_on="initial": nothing moves before the decision, the persistence compares the
    held set's residuals point for point, and a reshuffled ranking settles on that same set."""
    initial, outs = _run(_reshuffled, 5, watch_on="initial")
    assert all(torch.equal(out.points, initial) for out in outs)
    assert "persistence" not in outs[0].info
    # independent values at N = 400 points: |Spearman| has a standard deviation of 0.05
    assert abs(outs[1].info["persistence"]) < 0.2 and abs(outs[2].info["persistence"]) < 0.2
    assert [out.info["settled"] for out in outs] == [0.0, 0.0, 1.0, 1.0, 1.0]


def test_watching_on_the_initial_set_starts_the_inner_sampler_where_the_ranking_persists():
    initial, outs = _run(lambda x, i: bump(x).abs(), 5, watch_on="initial")
    # held still for the watch: the same points, so the same residuals, ranked alike
    assert torch.equal(outs[0].points, initial) and torch.equal(outs[1].points, initial)
    assert outs[1].info["persistence"] == pytest.approx(1.0)
    assert outs[2].info["persistence"] == pytest.approx(1.0)
    # decided at resample 3: robust GLF moves the points from then on, and the measuring stops
    assert all(not torch.equal(out.points, initial) for out in outs[2:])
    assert all(out.info["settled"] == 0.0 for out in outs)
    assert all("persistence" not in out.info for out in outs[3:])
    assert "carried" not in outs[-1].state


def _memorised(x, i):
    """Training's residual on a set it has overfitted: small and reshuffled at its points."""
    return 0.01 * _reshuffled(x, i)


def _reshuffled_anywhere(x):
    """The residual at points training never saw: of the same law as ``_reshuffled``'s."""
    return _reshuffled(x, 7)


def test_a_settled_run_leaves_its_overfitted_initial_set_for_fresh_draws():
    # elsewhere the residual is ~1, at the held points ~0.01: a held-out ratio near 100
    scored = []
    scorer = Scorer(lambda x: scored.append(x.clone()) or torch.ones(x.shape[0]))
    initial, outs = _run(_memorised, 6, scorer, watch_on="initial", overfit=2.0)
    # the watch holds the set (resamples 1-2) and measures nothing; the decision (3) measures
    # and switches at once
    assert all(torch.equal(out.points, initial) for out in outs[:2])
    assert all("holdout_ratio" not in out.info for out in outs[:2])
    assert [out.info["settled"] for out in outs] == [0.0, 0.0, 1.0, 1.0, 1.0, 1.0]
    assert outs[2].info["holdout_ratio"] > 50 and outs[2].info["overfit"] == 1.0
    assert outs[2].state["overfit"] is True
    # the scored draw is the first set trained on; then fresh draws, all different, and
    # nothing more measured or scored
    assert len(scored) == 1 and torch.equal(outs[2].points, scored[0])
    assert scorer.evals == N
    for before, after in zip(outs[2:-1], outs[3:], strict=True):
        assert not torch.equal(before.points, after.points)
    assert not any(torch.equal(out.points, initial) for out in outs[2:])
    assert all("holdout_ratio" not in out.info for out in outs[3:])


def test_a_held_set_that_generalises_stays_and_its_ratio_is_near_one():
    scorer = Scorer(_reshuffled_anywhere)
    initial, outs = _run(_reshuffled, 6, scorer, watch_on="initial", overfit=1.5)
    assert all(torch.equal(out.points, initial) for out in outs)
    # both sides are U(0, 1) + 0.01 at N = 400 points: each mean square has a relative
    # standard deviation of about 4.5%, so the ratio of RMSs is 1 within 0.1 at 3 deviations
    # measured from the decision (resample 3) on, at every resample
    ratios = [out.info["holdout_ratio"] for out in outs[2:]]
    assert all(abs(ratio - 1) < 0.1 for ratio in ratios)
    assert scorer.evals == 4 * N and all("overfit" not in out.info for out in outs)


def test_without_overfit_nothing_is_measured_or_scored():
    scorer = Scorer(lambda x: torch.ones(x.shape[0]))
    initial, outs = _run(_memorised, 5, scorer, watch_on="initial")
    assert [out.info["settled"] for out in outs] == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert all(torch.equal(out.points, initial) for out in outs)
    assert scorer.evals == 0 and all("holdout_ratio" not in out.info for out in outs)


def test_a_run_that_never_settles_is_the_same_draw_for_draw_with_overfit():
    """A persisting ranking starts the inner sampler; nothing is measured or drawn for
    ``overfit``, so the points and the generator's state match a run without it."""
    scorer = Scorer(lambda x: torch.ones(x.shape[0]))
    runs = [
        _run(lambda x, i: bump(x).abs(), 5, scorer, watch_on="initial", overfit=g)
        for g in (2.0, None)
    ]
    (_, with_it), (_, without) = runs
    for a, b in zip(with_it, without, strict=True):
        assert torch.equal(a.points, b.points) and a.info == b.info
    assert scorer.evals == 0


def test_with_watch_on_inner_the_ratio_waits_for_a_resample_on_the_held_set():
    """At the decision the current points are the ones the inner sampler moved, so there is no
    held set's residual yet: the first ratio comes a resample later."""
    scorer = Scorer(lambda x: torch.ones(x.shape[0]))
    initial, outs = _run(_memorised, 5, scorer, overfit=2.0)
    assert outs[2].info["settled"] == 1.0 and "holdout_ratio" not in outs[2].info
    assert torch.equal(outs[2].points, initial)
    assert outs[3].info["overfit"] == 1.0 and not torch.equal(outs[3].points, initial)
    assert scorer.evals == N


def test_the_ratio_is_one_of_rms_values():
    assert holdout_ratio(torch.tensor([3.0, 4.0]), torch.tensor([1.0, 1.0])) == pytest.approx(
        math.sqrt(12.5)
    )
    assert holdout_ratio(torch.zeros(3), torch.zeros(3)) == 1.0
    assert holdout_ratio(torch.ones(3), torch.zeros(3)) == math.inf


def test_persistence_is_spearman_with_ties_and_zero_for_a_constant():
    a = torch.tensor([1.0, 2.0, 2.0, 3.0, 5.0])
    assert persistence(a, a) == pytest.approx(1.0)
    assert persistence(a, -a) == pytest.approx(-1.0)
    assert persistence(a, a**3) == pytest.approx(1.0)  # ranks, not values
    assert persistence(a, torch.ones(5)) == 0.0
    assert persistence(torch.zeros(5), a) == 0.0


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Settle(RobustGLF(), below=1.5), r"below=1\.5 must be a number in \[-1, 1\]"),
        (lambda: Settle(RobustGLF(), below="x"), r"below='x'"),
        (lambda: Settle(RobustGLF(), watch=0), r"watch"),
        (
            lambda: Settle(RobustGLF(), then="fixed"),
            r"then='fixed' is unknown; allowed: initial, uniform-resample",
        ),
        (
            lambda: Settle(RobustGLF(), watch_on="moved"),
            r"watch_on='moved' is unknown; allowed: inner, initial",
        ),
        (lambda: Settle(RobustGLF(), overfit=1.0), r"overfit=1\.0 must be a number above 1"),
        (lambda: Settle(RobustGLF(), overfit=True), r"overfit=True must be a number"),
        (lambda: Settle(RobustGLF(), overfit=math.nan), r"overfit=nan must be a number above 1"),
        (
            lambda: Settle(RobustGLF(), then="uniform-resample", overfit=2.0),
            r"overfit=2\.0 watches a held set; it needs then='initial'",
        ),
        (lambda: Settle("glf"), r"inner='glf' is not a Sampler"),
        (lambda: Settle(RARD(n_candidates=50)), r"grows the set"),
        (lambda: samplers.get("settle", inner="nope"), r"nope"),
        (lambda: samplers.get("settle", inner_params=3), r"inner_params=3 must be a mapping"),
        (
            lambda: samplers.get("settle", inner=RobustGLF(), inner_params={"M": 2}),
            r"inner_params go with an inner sampler given by name",
        ),
    ],
)
def test_bad_input_is_refused_in_one_line(make, match):
    with pytest.raises(ValueError, match=match) as err:
        make()
    assert "\n" not in str(err.value)


def test_in_the_trainer_a_settled_run_keeps_its_initial_set_to_the_end():
    """(Its exact resume across the decision is test_in_trainer.py's "settle" case.)"""
    full = _trainer(Settle(RobustGLF(), below=1.0, watch=1))  # any imperfect ranking settles
    result = full.fit()
    assert result.resamples == 3
    assert full.state.sampler_state["settled"] is True
    assert torch.equal(full.state.points, full.state.sampler_state["initial"])


def test_the_settled_set_comes_back_in_the_runs_current_dtype():
    """A float64 quasi-Newton stage after a float32 start: the initial set returns as float64."""
    sampler = Settle(RobustGLF(), below=1.0, watch=1)
    ctx, _ = make_context(Box.cube(2, -1.0, 1.0), n=N, seed=3)
    initial, state, points = ctx.points, sampler.init_state(ctx.points), ctx.points
    for i in range(2):
        points = points.double() if i else points  # the second resample comes in float64
        step = type(ctx)(
            points=points,
            residuals=_reshuffled(points, i),
            domain=ctx.domain,
            step=i,
            generator=ctx.generator,
        )
        out = sampler.resample(step, state)
        points, state = out.points, out.state
    assert out.info["settled"] == 1.0 and out.points.dtype == torch.float64
    assert torch.equal(out.points, initial.double())


def test_in_the_trainer_the_switch_to_fresh_draws_resumes_exactly():
    """Any held-out ratio above 1 + 1e-9 switches (training fits its points better than the
    rest of the line); a checkpoint at step 40, after the switch at the decision (step 30),
    resumes to the same fresh draw at step 45: the switch is in the saved state and the draw
    replays the run's generator."""

    def make():
        return Settle(RobustGLF(), below=1.0, watch=1, watch_on="initial", overfit=1 + 1e-9)

    full = _trainer(make())
    result = full.fit()
    assert full.state.sampler_state["overfit"] is True
    # the held set was scored at the decision (resample 2) only; the switch stops the scoring
    assert result.residual_evals == full.state.points.shape[0]
    assert not torch.equal(full.state.points, full.state.sampler_state["initial"])

    first, second, again = resumed(make, until=40)
    assert first.state.sampler_state["overfit"] is True
    assert again.l2_relative_error == result.l2_relative_error
    assert torch.equal(second.state.points, full.state.points)
