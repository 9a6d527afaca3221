import pytest
import torch

from glfpinn.domains import Box
from glfpinn.samplers import GLF, RobustGLF
from glfpinn.samplers.glf_options import (
    alpha_for_moved_target,
    leave_probability,
    rad_density,
    uniform_spacing,
)
from tests.helpers import make_context


def _spread_test_context(n: int = 400):
    """Half the anchors with residual 1, half with residual 0.01, all at the box's centre."""
    box = Box.cube(2, -10.0, 10.0)
    ctx, fn = make_context(box, n=n)
    points = torch.zeros(n, 2)
    residuals = torch.cat([torch.ones(n // 2), torch.full((n // 2,), 0.01)])
    gen = torch.Generator().manual_seed(0)
    return type(ctx)(points, residuals, box, 0, gen, residual_fn=fn), fn


def test_spread_is_inversely_proportional_to_the_residual():
    ctx, _ = _spread_test_context()
    sampler = GLF(M=50, alpha=1e-2, eps=1e-12)
    cand = sampler.candidates(ctx, sampler.scales(ctx.residuals, ctx)).view(-1, 50, 2)
    std_hard = cand[:200].std().item()  # residual 1 -> h = 0.01
    std_easy = cand[200:].std().item()  # residual 0.01 -> h = 1
    # 20,000 normal draws per group: the sample std is within 1% of h with overwhelming odds.
    assert std_hard == pytest.approx(0.01, rel=0.03)
    assert std_easy == pytest.approx(1.0, rel=0.03)


def test_h_is_capped_by_the_domain_diameter_and_by_h_max():
    ctx, _ = make_context(Box.cube(2), residual=lambda x: torch.zeros(x.shape[0]))
    assert float(GLF(alpha=1.0).scales(ctx.residuals, ctx).max()) == pytest.approx(2**0.5)
    assert float(GLF(alpha=1.0, h_max=0.1).scales(ctx.residuals, ctx).max()) == pytest.approx(0.1)


def test_default_alpha_follows_the_paper_by_dimension():
    assert GLF().alpha_for(2) == 1e-4 and GLF().alpha_for(11) == 1e-3
    assert GLF(alpha=5e-3).alpha_for(2) == 5e-3


def test_glf_needs_no_residual_evaluation_and_glfd_scores_every_candidate():
    ctx, fn = make_context(n=300)
    GLF(M=3).resample(ctx, {})
    assert fn.evals == 0
    GLF(M=3, surrogate="exact").resample(ctx, {})
    assert fn.evals == 900


def test_selection_frequencies_follow_the_inherited_weights():
    """Anchors with residual 3 vs 1 and k=1, c=0: drawing one point with replacement, each
    candidate of a hard anchor is chosen 3x as often."""
    n = 100
    box = Box.cube(2, -1.0, 1.0)
    ctx, fn = make_context(box, n=n)
    residuals = torch.cat([torch.full((50,), 3.0), torch.ones(50)])
    gen = torch.Generator().manual_seed(0)
    ctx = type(ctx)(ctx.points, residuals, box, 0, gen, residual_fn=fn)
    sampler = GLF(M=3, alpha=1e-3, k=1.0, c=0.0, replace=True)
    hits_hard = 0
    trials = 400
    for _ in range(trials):
        new = sampler.resample(ctx, {}).points  # n draws with replacement
        # A drawn candidate comes from a hard anchor iff it is nearer a hard anchor.
        nearest = torch.cdist(new, ctx.points).argmin(dim=1)
        hits_hard += int((nearest < 50).sum())
    frac = hits_hard / (trials * n)
    assert frac == pytest.approx(0.75, abs=0.01)  # sd = sqrt(.75*.25/40000) = 0.002


def test_pool_with_anchors_can_keep_anchors():
    ctx, _ = make_context(n=200)
    out = GLF(pool="candidates+anchors", alpha=1e-4).resample(ctx, {})
    kept = (torch.cdist(out.points, ctx.points).min(dim=1).values == 0).float().mean()
    assert 0.05 < float(kept) < 0.6  # a quarter of the pool are anchors


def test_idw_surrogate_is_exact_at_anchors_and_between_their_values():
    ctx, fn = make_context(n=200)
    sampler = GLF(surrogate="idw", neighbors=4)
    from glfpinn.samplers.glf_options import idw

    vals = ctx.residuals
    at_anchors = idw(ctx.points, vals, ctx.points, 4)
    assert torch.allclose(at_anchors, vals)
    q = ctx.domain.sample(500, torch.Generator().manual_seed(3))
    est = idw(ctx.points, vals, q, 4)
    assert (
        float(est.min()) >= float(vals.min()) - 1e-7
        and float(est.max()) <= float(vals.max()) + 1e-7
    )
    sampler.resample(ctx, {})
    assert fn.evals == 0


def test_candidates_are_reflected_into_the_domain():
    ctx, _ = make_context(n=300, residual=lambda x: torch.full((x.shape[0],), 1e-9))
    out = GLF(alpha=1.0, h_max=50.0).resample(ctx, {})
    assert bool(ctx.domain.contains(out.points).all())


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"M": 0}, "M=0"),
        ({"alpha": -1.0}, "alpha"),
        ({"eps": 0.0}, "eps"),
        ({"k": -1.0}, "k=-1"),
        ({"c": -0.5}, "c=-0.5"),
        ({"surrogate": "magic"}, "surrogate"),
        ({"pool": "all"}, "pool"),
    ],
)
def test_bad_hyperparameters_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLF(**kwargs)


def test_repr_shows_the_hyperparameters():
    assert repr(GLF(M=5)).startswith("GLF(M=5, alpha=None")


def _paper_glf(ctx, M=3, alpha=None, eps=1e-8, k=1.0, c=1.0):
    """GLF's resample as it was written before the alpha_scale, adaptive_M and diagnostics
    options existed (kept here verbatim, inherit surrogate, candidate pool): the reference that
    the default sampler must reproduce bit for bit."""
    from glfpinn.samplers.select import rad_weights, weighted_draw

    r = ctx.residuals.detach().abs()
    alpha = alpha if alpha is not None else (1e-4 if ctx.domain.dim <= 3 else 1e-3)
    h = (alpha / (r + eps)).clamp(max=ctx.domain.diameter)
    x = ctx.points
    noise = torch.randn(x.shape[0], M, x.shape[1], generator=ctx.generator, dtype=x.dtype)
    cand = x.unsqueeze(1) + h.to(x.dtype).view(-1, 1, 1) * noise
    cand = ctx.domain.reflect(cand.reshape(-1, x.shape[1]), ctx.generator)
    w = rad_weights(r.repeat_interleave(M), k, c)
    return cand[weighted_draw(w, ctx.n, ctx.generator)]


@pytest.mark.parametrize("dim, kwargs", [(2, {}), (5, {}), (2, {"M": 5, "alpha": 1e-1})])
def test_default_glf_is_bit_identical_to_the_papers_formula(dim, kwargs):
    """The new options and diagnostics must not move a single bit of the paper's GLF, nor
    consume the generator differently (the run's later draws depend on it)."""
    ctx_new, _ = make_context(Box.cube(dim, -1.0, 1.0), n=300, seed=7)
    ctx_ref, _ = make_context(Box.cube(dim, -1.0, 1.0), n=300, seed=7)
    new = GLF(**kwargs).resample(ctx_new, {}).points
    ref = _paper_glf(ctx_ref, **kwargs)
    assert torch.equal(new, ref)
    assert torch.equal(ctx_new.generator.get_state(), ctx_ref.generator.get_state())


def test_relative_alpha_is_free_of_the_residuals_units():
    """Scaling every residual by 1000 leaves h unchanged (to float rounding), and an anchor at
    the median residual gets h = alpha * diameter."""
    ctx, _ = make_context(n=301)  # odd: the median is one anchor's residual
    sampler = GLF(alpha_scale="relative")
    h = sampler.scales(ctx.residuals, ctx)
    h_scaled = sampler.scales(1000.0 * ctx.residuals, ctx)
    assert torch.allclose(h, h_scaled, rtol=1e-5)  # float32 rounding of r/s, a few ulps
    median_anchor = int((ctx.residuals - ctx.residuals.median()).abs().argmin())
    expected = 0.02 * ctx.domain.diameter / (1.0 + 1e-8)
    assert float(h[median_anchor]) == pytest.approx(expected, rel=1e-6)
    # the paper's absolute h moves by the factor 1000 that the units introduce
    paper = GLF(alpha=1e-6, eps=1e-14)  # no h reaches the cap, eps negligible
    assert float(paper.scales(ctx.residuals, ctx)[median_anchor]) == pytest.approx(
        1000.0 * float(paper.scales(1000.0 * ctx.residuals, ctx)[median_anchor]), rel=1e-5
    )


def test_relative_alpha_with_all_residuals_zero_explores_everywhere():
    ctx, _ = make_context(residual=lambda x: torch.zeros(x.shape[0]))
    h = GLF(alpha_scale="relative").scales(ctx.residuals, ctx)
    assert torch.all(h == ctx.domain.diameter)


def test_relative_alpha_falls_back_to_the_mean_when_most_residuals_are_zero():
    ctx, _ = make_context(n=10)
    r = torch.tensor([0.0] * 7 + [1.0, 2.0, 3.0])  # median 0, mean 0.6
    h = GLF(alpha_scale="relative", alpha=0.01).scales(r, ctx)
    assert float(h[7]) == pytest.approx(0.01 * ctx.domain.diameter / (1.0 / 0.6), rel=1e-6)


def test_adaptive_counts_sum_to_the_budget_and_follow_the_weights():
    r = torch.tensor([9.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    counts = GLF(M=3, adaptive_M=True).candidate_counts(r)
    assert int(counts.sum()) == 30 and int(counts.min()) >= 1
    # RAD weights r / mean(r) + 1 = [8.5, 11/6 (x3), 1 (x6)] sum to 20, the extra 10 * 2:
    # floors [8, 1, 1, 1, 1 (x6)] = 17, and the 3 largest remainders (5/6, anchors 1-3) get
    # the other 3 -> 1 + [8, 2, 2, 2, 1 (x6)]
    assert counts.tolist() == [9, 3, 3, 3, 2, 2, 2, 2, 2, 2]


def test_adaptive_M_keeps_each_anchors_total_weight():
    """Each anchor's candidates together weigh what the paper's M candidates weigh."""
    from glfpinn.samplers.select import rad_weights

    ctx, _ = make_context(n=50)
    sampler = GLF(M=3, adaptive_M=True)
    counts = sampler.candidate_counts(ctx.residuals)
    anchor_of = torch.repeat_interleave(torch.arange(50), counts)
    mass = (3 / counts.double())[anchor_of]
    w = rad_weights(ctx.residuals[anchor_of], 1.0, 1.0, mass=mass)
    per_anchor = torch.zeros(50, dtype=torch.float64).index_add_(0, anchor_of, w)
    expected = 3 * rad_weights(ctx.residuals, 1.0, 1.0)
    assert torch.allclose(per_anchor, expected, rtol=1e-12)


def test_adaptive_M_lifts_the_per_anchor_cap_for_a_hot_anchor():
    """One anchor holds almost all the residual; drawing without replacement the paper's pool
    gives it at most M = 3 descendants, the adaptive one many more."""
    n = 200
    box = Box.cube(2, -1.0, 1.0)
    ctx, fn = make_context(box, n=n)
    r = torch.full((n,), 1e-3)
    r[0] = 1e3
    gen = torch.Generator().manual_seed(1)
    ctx = type(ctx)(ctx.points, r, box, 0, gen, residual_fn=fn)

    def from_hot(sampler):
        pts = sampler.resample(ctx, {}).points
        return int((torch.cdist(pts, ctx.points).argmin(dim=1) == 0).sum())

    assert from_hot(GLF(alpha=1e-4)) <= 3
    # the hot anchor gets 1 + 400 * 0.5 = 201 candidates (its weight is half the total)
    # and, with c = 1, an expected ~100 of the 200 draws
    assert from_hot(GLF(alpha=1e-4, adaptive_M=True)) > 50


def test_spread_diagnostics_measure_h_and_moves_relative_to_the_diameter():
    box = Box.cube(2, -1.0, 1.0)
    diameter = box.diameter
    ctx, _ = make_context(box, n=400, residual=lambda x: torch.ones(x.shape[0]))
    still = GLF(alpha=1e-6).resample(ctx, {}).info  # h = 1e-6: nothing moves 1% of D
    assert still["h_rel_median"] == pytest.approx(1e-6 / diameter, rel=1e-5)
    assert still["moved_fraction"] == 0.0
    ctx, _ = make_context(box, n=400, residual=lambda x: torch.ones(x.shape[0]))
    far = GLF(alpha=1.0).resample(ctx, {}).info  # h = 1: |xi| >= 0.028 but for ~0.04%
    assert far["h_rel_q10"] == far["h_rel_q90"] == pytest.approx(1 / diameter, rel=1e-5)
    assert far["moved_fraction"] > 0.95  # reflection folds back a few


def test_survival_and_density_diagnostics():
    n = 256
    ctx, _ = make_context(n=n)
    info = GLF(M=1).resample(ctx, {}).info  # M = 1: the pool is the n draws, all kept
    assert info["distinct_anchors"] == n
    assert info["points_per_volume"] == pytest.approx(n / 4.0)
    # uniform points in 2-D: mean nearest-neighbour distance 1 / (2 sqrt(density)) (Clark &
    # Evans), 0.0625 here; edge effects lengthen it, so a 25% band
    assert info["nn_distance_rel"] * ctx.domain.diameter == pytest.approx(0.0625, rel=0.25)
    hot = torch.ones(n)
    hot[0] = 1e9  # c = 0, one hot anchor with replacement: one anchor survives
    ctx = type(ctx)(ctx.points, hot, ctx.domain, 0, ctx.generator)
    info = GLF(M=3, alpha=1e-4, c=0.0, replace=True).resample(ctx, {}).info
    assert info["distinct_anchors"] == 1


def test_the_surrogate_check_draws_nothing_from_the_run_and_counts_its_scoring():
    ctx_a, fn_a = make_context(n=300, seed=3)
    ctx_b, fn_b = make_context(n=300, seed=3)
    plain = GLF(alpha=1e-2).resample(ctx_a, {})
    checked = GLF(alpha=1e-2, diagnose_surrogate=100).resample(ctx_b, {})
    assert torch.equal(plain.points, checked.points)
    assert torch.equal(ctx_a.generator.get_state(), ctx_b.generator.get_state())
    assert fn_a.evals == 0 and fn_b.evals == 100
    assert checked.info["surrogate_checked"] == 100


def test_the_surrogate_check_ranks_close_candidates_well_and_far_ones_worse():
    """With tiny h a candidate sits on its anchor and inherits the right residual (rank
    correlation ~1); with h = 1/r over a smooth bump the inherited values rank far worse."""
    ctx, _ = make_context(n=400)
    near = GLF(alpha=1e-6, diagnose_surrogate=500).resample(ctx, {}).info
    assert near["spearman_inherit"] > 0.999 and near["spearman_idw"] > 0.99
    ctx, _ = make_context(n=400)
    far = GLF(alpha=1.0, diagnose_surrogate=500).resample(ctx, {}).info
    assert far["spearman_inherit"] < near["spearman_inherit"] - 0.2


def test_glfd_surrogate_check_reuses_its_exact_scores():
    ctx, fn = make_context(n=100)
    info = GLF(surrogate="exact", diagnose_surrogate=50).resample(ctx, {}).info
    assert fn.evals == 300 and info["surrogate_checked"] == 50


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"alpha_scale": "log"}, "alpha_scale='log'"),
        ({"adaptive_M": 1}, "adaptive_M"),
        ({"diagnose_surrogate": -1}, "diagnose_surrogate=-1"),
    ],
)
def test_bad_new_options_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLF(**kwargs)


def test_systematic_draw_leaves_each_anchor_one_point_where_residuals_are_flat():
    """Equal residuals, M = 3: every anchor leaves exactly one descendant (no neutral drift)."""
    ctx, _ = make_context(n=300, residual=lambda x: torch.ones(x.shape[0]))
    info = GLF(draw="systematic").resample(ctx, None).info
    assert info["distinct_anchors"] == 300
    race = GLF().resample(make_context(n=300, residual=lambda x: torch.ones(x.shape[0]))[0], None)
    assert race.info["distinct_anchors"] < 260  # about 300 (1 - (2/3)^3) ~ 211


def test_global_candidates_are_scored_counted_and_win_points_at_a_far_hot_spot():
    """All anchors sit in the left half where the residual is 0.01; the residual is 100 on the
    right half. N global candidates cost N evaluations, and the draw takes the hot ones."""
    box = Box.cube(2, -1.0, 1.0)

    def hot_right(x):
        return torch.where(x[:, 0] > 0, 100.0, 0.01)

    gen = torch.Generator().manual_seed(0)
    points = box.sample(400, gen) * torch.tensor([0.5, 1.0]) - torch.tensor([0.5, 0.0])
    ctx, fn = make_context(box, residual=hot_right, points=points)
    out = GLF(alpha_scale="relative", global_candidates=1.0).resample(ctx, None)
    assert fn.evals == 400  # the global candidates, and nothing else
    right = float((out.points[:, 0] > 0).double().mean())
    # ~200 fresh ones fall right with weight ~9 (r / mean r + 1) against ~1 for the 1,200 local
    # ones: the race takes ~85% of them, so ~170 of the 400 points land right (1 - e^-2 at worst)
    assert right > 0.3
    assert out.info["global_fraction"] >= right  # the right half is reached from afar
    plain = GLF(alpha_scale="relative").resample(make_context(box, points=points)[0], None)
    assert float((plain.points[:, 0] > 0).double().mean()) < 0.1


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"draw": "lottery"}, "draw='lottery'"),
        ({"draw": "systematic", "replace": True}, "replace=False"),
        ({"global_candidates": -1.0}, "global_candidates=-1"),
    ],
)
def test_bad_draw_options_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLF(**kwargs)


def test_fixed_rows_never_move_and_the_rest_is_drawn():
    """fixed = 0.5: the first half of the set comes back unchanged, however hot the other half,
    over several resamples; the second half follows the residual."""
    box = Box.cube(2, -1.0, 1.0)

    def hot_right(x):
        return torch.where(x[:, 0] > 0, 100.0, 0.01)

    sampler = GLF(alpha_scale="relative", fixed=0.5)
    ctx, _ = make_context(box, n=400, residual=hot_right)
    first = ctx.points.clone()
    for _ in range(3):
        out = sampler.resample(ctx, None)
        assert out.points.shape == first.shape
        assert torch.equal(out.points[:200], first[:200])
        ctx = type(ctx)(out.points, hot_right(out.points), box, 0, ctx.generator)
    # the drawn half has moved to the hot side; the fixed half stays about half on each side
    assert float((out.points[200:, 0] > 0).double().mean()) > 0.8  # 0.5 where it started
    assert 0.4 < float((out.points[:200, 0] > 0).double().mean()) < 0.6


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"fixed": 1.0}, "fixed=1"),
        ({"fixed": -0.1}, "fixed=-0.1"),
        ({"fixed": 0.6, "explore": 0.4}, "sum must be below 1"),
        ({"importance_weights": True, "fixed": 0.2}, "needs explore=0 and fixed=0"),
        ({"importance_weights": True, "explore": 0.1}, "got explore=0.1, fixed=0.0"),
    ],
)
def test_bad_fixed_shares_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLF(**kwargs)


def test_clip_bounds_the_weight_of_a_hot_region():
    """A tenth of the anchors (x > 0.8) have residual 1,000, the rest 1. Unclipped their weight
    is about 11x the others' and they keep nearly all their 3 N / 10 candidates (the draw
    without replacement caps them); with clip = 2 (no residual weighs above 2 x the median)
    their weight is 2.82 against 1.91, 1.48x, so their share falls to about 0.1 x 1.48 / (0.1 x
    1.48 + 0.9) = 0.14 (measured 0.28 and 0.13 on this seed); a huge clip changes nothing."""
    box = Box.cube(2, -1.0, 1.0)

    def hot(x):
        return torch.where(x[:, 0] > 0.8, 1000.0, 1.0)

    def hot_share(sampler):
        ctx, _ = make_context(box, n=2000, residual=hot)
        return float((sampler.resample(ctx, None).points[:, 0] > 0.8).double().mean())

    free = hot_share(GLF(alpha_scale="relative"))
    assert free > 0.25
    assert 0.1 < hot_share(GLF(alpha_scale="relative", clip=2.0)) < 0.17
    assert hot_share(GLF(alpha_scale="relative", clip=1e9)) == free


def test_density_rad_first_resample_from_a_uniform_set_is_the_papers_draw():
    """From a uniform set (q = 1) RAD's target density is RAD's weight over a constant, so the
    race keeps the same candidates as the paper's draw, from the same stream."""
    ctx, _ = make_context(n=300)
    sampler = GLF(alpha_scale="relative", density="rad")
    tracked = sampler.resample(ctx, sampler.init_state(ctx.points))
    ctx, _ = make_context(n=300)
    paper = GLF(alpha_scale="relative").resample(ctx, {})
    assert torch.equal(tracked.points, paper.points)


def test_rad_density_has_mean_one_under_the_uniform_measure_its_anchors_estimate():
    """p = (r / E_u[r] + c) / (1 + c) with E_u estimated by importance from anchors of density
    q: the same importance mean of p is 1, whatever q."""
    gen = torch.Generator().manual_seed(0)
    r = torch.rand(500, generator=gen, dtype=torch.float64) * 10
    q = 0.2 + torch.rand(500, generator=gen, dtype=torch.float64) * 3
    p = rad_density(r, r, q, k=1.0, c=1.0)
    assert float((p / q).sum() / (1 / q).sum()) == pytest.approx(1.0, rel=1e-12)
    assert torch.equal(
        rad_density(torch.zeros(5), torch.zeros(5), torch.ones(5), 1.0, 1.0),
        torch.ones(5, dtype=torch.float64),
    )


def _hot_right_share(sampler, resamples: int) -> float:
    """Share of 2,000 points on [0, 1]^2 in x > 0.5, where the residual is 10 (1 elsewhere),
    after ``resamples`` resamples of the same residual field."""
    box = Box.cube(2, 0.0, 1.0)

    def step(x):
        return torch.where(x[:, 0] > 0.5, 10.0, 1.0)

    ctx, _ = make_context(box, n=2000, residual=step)
    state = sampler.init_state(ctx.points)
    for _ in range(resamples):
        out = sampler.resample(ctx, state)
        state = out.state
        ctx = type(ctx)(out.points, step(out.points), box, 0, ctx.generator)
    return float((ctx.points[:, 0] > 0.5).double().mean())


def test_density_rad_tracks_rads_density_where_the_paper_compounds_it():
    """Residual 10 on the right half, 1 on the left, k = c = 1: RAD's density gives the right
    half (10 / 5.5 + 1) / 2 / 2 = 0.705 of the points. With one step for every anchor (h capped
    at 0.01, so the move is the same on both sides) the tracked set holds that share over ten
    resamples (ten race draws of N = 2,000 let it drift by about 0.03); the paper's draw
    multiplies the weights up, and the set leaves the cold half."""
    same_step = {"alpha_scale": "relative", "h_max": 0.01}
    assert _hot_right_share(GLF(**same_step, density="rad"), 10) == pytest.approx(0.705, abs=0.06)
    assert _hot_right_share(GLF(**same_step), 10) > 0.9


def test_density_rad_cannot_undo_the_trap_of_residual_dependent_steps():
    """The limit of ``density="rad"`` (docs/results.md, design round 10): with h ~ 1 / r the
    cold anchors' candidates scatter over the whole domain and those landing in the hot half
    stay there (their own steps are 10x shorter), so the set still drifts to the hot half."""
    assert _hot_right_share(GLF(alpha_scale="relative", density="rad"), 10) > 0.85


def test_density_rad_carries_each_points_density_in_its_state():
    """The state holds one density per point: the drawn ones RAD's target density at their
    anchor, the fresh uniform ones 1."""
    ctx, _ = make_context(n=400)
    sampler = GLF(alpha_scale="relative", explore=0.25, density="rad")
    out = sampler.resample(ctx, sampler.init_state(ctx.points))
    q = out.state["density"]
    assert q.shape == (400,)
    assert torch.equal(q[300:], torch.ones(100, dtype=torch.float64))
    assert bool((q[:300] > 0).all()) and float(q[:300].std()) > 0


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"density": "powered"}, "density='powered'"),
        ({"density": "rad", "importance_weights": True}, "needs density='compound'"),
    ],
)
def test_bad_density_options_are_refused_with_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLF(**kwargs)


def test_leave_probability_is_the_chi_squared_tail():
    """P(|h xi| >= a) = P(chi2_d >= (a / h)^2), against scipy's chi-squared in 2-D and 20-D."""
    from scipy import stats

    h = torch.tensor([0.05, 0.1, 0.3, 1.0], dtype=torch.float64)
    for dim in (2, 20):
        expected = stats.chi2.sf((0.3 / h.numpy()) ** 2, dim)
        assert leave_probability(h, 0.3, dim).numpy() == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize("target", [0.1, 0.5, 0.9])
def test_alpha_solved_for_a_moved_target_gives_that_expected_fraction(target):
    unit = torch.rand(1000, generator=torch.Generator().manual_seed(0), dtype=torch.float64) + 0.1
    alpha = alpha_for_moved_target(unit, target, 0.05, 2, floor=0.0, h_max=2.0)
    moved = leave_probability((alpha * unit).clamp(max=2.0), 0.05, 2).mean()
    # Brent's xtol 1e-6 on log alpha; in 2-D the share changes by at most 2 / e per unit of
    # log alpha (the chi-squared tail exp(-t) times 2t peaks at t = 1), so 1e-6 bounds it
    assert float(moved) == pytest.approx(target, abs=1e-6)


def test_moved_target_holds_the_measured_share_of_candidates_that_leave_a_spacing():
    """2,000 anchors in the middle of the unit square, at least 0.25 from its walls, where the
    solved steps are about a spacing (0.022): no candidate is reflected, so the measured share
    of the 6,000 candidates that moved a spacing is the target within 4 binomial standard
    deviations (at most 0.0065 each)."""
    box = Box.cube(2, 0.0, 1.0)
    gen = torch.Generator().manual_seed(1)
    points = 0.25 + 0.5 * torch.rand(2000, 2, generator=gen)
    ctx, _ = make_context(box, points=points, residual=lambda x: 1.0 + 10.0 * x[:, 0] ** 2)
    info = GLF(moved_target=0.5).resample(ctx, {}).info
    assert info["moved_spacing_fraction"] == pytest.approx(0.5, abs=0.026)


def test_the_papers_fixed_alpha_moves_no_candidate_a_spacing_where_residuals_are_of_order_one():
    """Residuals 1-11 and the paper's alpha = 1e-4: h is 9e-6 to 1e-4, far below the spacing
    1 / sqrt(2000) = 0.022 of 2,000 points on the unit square."""
    box = Box.cube(2, 0.0, 1.0)
    ctx, _ = make_context(box, n=2000, residual=lambda x: 1.0 + 10.0 * x[:, 0] ** 2)
    assert uniform_spacing(box.volume, 2000, 2) == pytest.approx(1 / 2000**0.5)
    assert GLF().resample(ctx, {}).info["moved_spacing_fraction"] == 0.0


def test_moved_target_makes_the_papers_step_free_of_the_residuals_units():
    """The paper's h = alpha / (r + eps) with alpha solved: residuals 1000x larger give a 1000x
    larger alpha and the same steps (to float32 rounding)."""
    ctx, _ = make_context(n=301)
    sampler = GLF(moved_target=0.4, eps=1e-14)
    h, alpha = sampler.step_sizes(ctx.residuals, ctx)
    h_big, alpha_big = sampler.step_sizes(1000.0 * ctx.residuals, ctx)
    assert alpha_big == pytest.approx(1000.0 * alpha, rel=1e-5)
    assert torch.allclose(h, h_big, rtol=1e-5)


def test_moved_target_below_what_the_floor_moves_leaves_every_step_on_the_floor():
    """Robust GLF in 20-D at N = 500: its floor (a quarter of the spacing) alone is expected to
    move P(chi2_20 >= 16) = 0.72 of the candidates a spacing, so a target of 0.3 cannot be held;
    every step is the floor, the nearest the set can come."""
    box = Box.cube(20, 0.0, 1.0)
    ctx, _ = make_context(box, n=500)
    h, _ = RobustGLF(moved_target=0.3).step_sizes(ctx.residuals, ctx)
    floor = 0.25 * uniform_spacing(box.volume, 500, 20)
    assert torch.allclose(h, torch.full_like(h, floor))
    assert float(leave_probability(h, 4 * floor, 20).mean()) == pytest.approx(0.717, abs=1e-3)


def test_moved_target_above_what_the_cap_moves_leaves_every_step_on_the_cap():
    """A cap of a fifth of the spacing moves a spacing with chance P(chi2_2 >= 25) = 4e-6: a
    target of 0.5 cannot be held, and every step is the cap."""
    box = Box.cube(2, 0.0, 1.0)
    ctx, _ = make_context(box, n=400)
    cap = 0.2 * uniform_spacing(box.volume, 400, 2)
    h, _ = GLF(moved_target=0.5, h_max=cap).step_sizes(ctx.residuals, ctx)
    assert torch.allclose(h, torch.full_like(h, cap))


def test_moved_target_with_adaptive_M_holds_the_share_of_candidates_not_of_anchors():
    """With adaptive M the hot anchors, whose steps are short, have more candidates: the solved
    alpha weighs each anchor by its count, so the expected share over the candidates is the
    target (an unweighted mean over the anchors would leave it below)."""
    box = Box.cube(2, 0.0, 1.0)
    ctx, _ = make_context(box, n=1000, residual=lambda x: torch.exp(8.0 * x[:, 0]))
    sampler = GLF(moved_target=0.5, adaptive_M=True, alpha_scale="relative")
    h, _ = sampler.step_sizes(ctx.residuals, ctx)
    counts = sampler.candidate_counts(ctx.residuals).to(torch.float64)
    moved = leave_probability(h, uniform_spacing(box.volume, 1000, 2), 2)
    assert float((moved * counts).sum() / counts.sum()) == pytest.approx(0.5, abs=1e-5)
    assert float(moved.mean()) > 0.55  # the anchors' mean is not what is held


def test_robust_glf_steps_are_its_formula_bit_for_bit():
    """Without a moved target robust GLF's steps are clamp(0.02 D / (r / median + eps),
    0.25 spacing, D), computed in that order, exactly."""
    ctx, _ = make_context(n=301)
    r = ctx.residuals
    spacing = uniform_spacing(ctx.domain.volume, 301, 2)
    expected = (0.02 * ctx.domain.diameter / (r / float(r.median()) + 1e-8)).clamp(
        min=0.25 * spacing
    )
    h = RobustGLF().scales(r, ctx)
    assert torch.equal(h, expected.clamp(max=ctx.domain.diameter))


def test_without_a_moved_target_the_info_reports_the_fixed_alpha():
    ctx, _ = make_context()
    assert GLF().resample(ctx, {}).info["alpha"] == 1e-4
    assert RobustGLF().resample(ctx, {}).info["alpha"] == 0.02


def test_a_moved_target_gathers_the_whole_set_on_k_ranks():
    assert GLF().resamples_per_rank() and not GLF(moved_target=0.5).resamples_per_rank()


@pytest.mark.parametrize("value", [0, 0.0, 1.0, -0.2, 1.5, "half", float("nan")])
def test_bad_moved_targets_are_refused_with_the_value(value):
    with pytest.raises(ValueError, match=r"moved_target=.* must be a number in \(0, 1\)"):
        GLF(moved_target=value)
