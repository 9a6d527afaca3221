import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from glfpinn.samplers import GLF, R3, RAD, RARD, Mix, Uniform, UniformResample
from glfpinn.samplers.mix import split_counts
from glfpinn.testing import make_context


def test_split_uses_the_largest_remainder():
    # 64 * (0.5, 0.3, 0.2) = (32, 19.2, 12.8): floors sum to 63, the leftover goes to 12.8.
    assert split_counts(64, [0.5, 0.3, 0.2]) == [32, 19, 13]
    assert split_counts(10, [1 / 3, 1 / 3, 1 / 3]) == [4, 3, 3]  # ties: the earlier part
    assert split_counts(3, [0.9, 0.1]) == [3, 0]


@given(
    n=st.integers(0, 10_000),
    fractions=st.lists(st.floats(0.01, 1.0), min_size=1, max_size=6),
)
def test_split_always_sums_to_n_and_each_share_is_within_one_point(n, fractions):
    counts = split_counts(n, fractions)
    total = sum(fractions)
    assert sum(counts) == n
    assert all(abs(c - n * f / total) < 1 for c, f in zip(counts, fractions, strict=True))


def test_each_part_gets_its_share_and_sees_only_its_segment():
    ctx, _ = make_context(n=400)
    mix = Mix([(R3(), 0.25), (Uniform(), 0.75)])
    state = mix.init_state(ctx.points)
    assert state["sizes"] == [100, 300]
    out = mix.resample(ctx, state)
    assert out.points.shape == (400, 2)
    assert out.state["sizes"] == [100, 300] and out.info["part0_n"] == 100
    # Uniform's segment is untouched; R3's keeps its own above-mean points, judged by the mean
    # of its own 100 residuals, not of all 400.
    assert torch.equal(out.points[100:], ctx.points[100:])
    seg_r = ctx.residuals[:100]
    keep = seg_r > seg_r.double().mean()
    assert torch.equal(out.points[: int(keep.sum())], ctx.points[:100][keep])
    assert out.info["part0_kept_fraction"] == pytest.approx(float(keep.float().mean()))


def test_initial_points_follow_the_shares():
    mix = Mix([(UniformResample("sobol"), 0.5), (UniformResample(), 0.5)])
    gen = torch.Generator().manual_seed(0)
    from glfpinn.domains import Box

    pts = mix.initial_points(64, Box.cube(2), gen, torch.float32)
    assert pts.shape == (64, 2)


def test_a_growing_part_grows_its_own_segment_only():
    ctx, _ = make_context(n=100)
    mix = Mix([(RARD(n_candidates=300, n_add=3), 0.5), (UniformResample(), 0.5)])
    assert mix.conserves_population is False
    out = mix.resample(ctx, mix.init_state(ctx.points))
    assert out.state["sizes"] == [53, 50]
    ctx2, _ = make_context(n=103, points=out.points)
    assert mix.resample(ctx2, out.state).state["sizes"] == [56, 50]


def test_weights_are_the_parts_own_and_one_elsewhere():
    ctx, _ = make_context(n=200)
    mix = Mix([(RAD(n_candidates=2000, importance_weights=True), 0.5), (R3(), 0.5)])
    out = mix.resample(ctx, mix.init_state(ctx.points))
    assert out.weights is not None and out.weights.shape == (200,)
    assert float(out.weights[:100].mean()) == pytest.approx(1.0)
    assert torch.equal(out.weights[100:], torch.ones(100))
    assert Mix([(GLF(), 0.5), (R3(), 0.5)]).resample(ctx, {}).weights is None


def test_state_must_match_the_points():
    ctx, _ = make_context(n=50)
    mix = Mix([(GLF(), 0.5), (R3(), 0.5)])
    with pytest.raises(ValueError, match="covers 60 points but the context has 50"):
        mix.resample(ctx, {"sizes": [30, 30], "parts": [{}, {}]})


@pytest.mark.parametrize(
    "parts, match",
    [
        ([], "at least one"),
        ([(GLF(), 0.5)], "sum to 0.5"),
        ([(GLF(), 1.2), (R3(), -0.2)], "> 0"),
        ([("glf", 1.0)], "not a Sampler"),
        ([GLF()], "pair"),
    ],
)
def test_bad_parts_are_refused(parts, match):
    with pytest.raises(ValueError, match=match):
        Mix(parts)


def test_repr_round_trips():
    mix = Mix([(GLF(M=5), 0.8), (UniformResample(), 0.2)])
    assert repr(type(mix)(**mix.get_params())) == repr(mix)
    assert repr(mix).startswith("Mix(parts=[(GLF(M=5")
