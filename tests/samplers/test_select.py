import math

import pytest
import torch

from glfpinn.samplers.select import (
    capped_inclusion,
    effective_sample_size,
    rad_weights,
    systematic_draw,
    weighted_draw,
)


def test_draw_without_replacement_returns_distinct_indices():
    w = torch.rand(1000, generator=torch.Generator().manual_seed(0))
    idx = weighted_draw(w, 500, torch.Generator().manual_seed(1))
    assert idx.unique().numel() == 500


def test_single_draw_frequencies_follow_the_weights():
    """With n = 1 the exponential race picks category j with probability w_j / sum(w)."""
    w = torch.tensor([1.0, 2.0, 3.0, 4.0])
    gen = torch.Generator().manual_seed(0)
    counts = torch.zeros(4)
    trials = 20_000
    for _ in range(trials):
        counts[weighted_draw(w, 1, gen)] += 1
    expected = w / w.sum()
    sd = torch.sqrt(expected * (1 - expected) / trials)
    assert bool(((counts / trials - expected).abs() < 5 * sd).all())


def test_draw_with_replacement_frequencies_follow_the_weights():
    w = torch.tensor([1.0, 0.0, 3.0])
    idx = weighted_draw(w, 40_000, torch.Generator().manual_seed(0), replace=True)
    freq = torch.bincount(idx, minlength=3).double() / idx.numel()
    assert freq[1] == 0
    assert abs(float(freq[2]) - 0.75) < 0.011  # 5 sd


def test_draw_works_past_the_multinomial_category_limit():
    n_cat = 2**24 + 10
    w = torch.ones(n_cat)
    idx = weighted_draw(w, 1000, torch.Generator().manual_seed(0))
    assert idx.unique().numel() == 1000 and int(idx.max()) < n_cat


def test_zero_weights_are_never_drawn_and_too_few_positives_is_an_error():
    w = torch.tensor([0.0, 1.0, 0.0, 1.0])
    idx = weighted_draw(w, 2, torch.Generator().manual_seed(0))
    assert sorted(idx.tolist()) == [1, 3]
    with pytest.raises(ValueError, match="n=3"):
        weighted_draw(w, 3, torch.Generator().manual_seed(0))


def test_same_generator_seed_gives_the_same_draw():
    w = torch.rand(100, generator=torch.Generator().manual_seed(3))
    a = weighted_draw(w, 10, torch.Generator().manual_seed(7))
    b = weighted_draw(w, 10, torch.Generator().manual_seed(7))
    assert torch.equal(a, b)


def test_rad_weights_formula():
    r = torch.tensor([1.0, 2.0, 3.0])
    expected = r**2 / (r**2).mean() + 0.5
    assert torch.allclose(rad_weights(r, 2.0, 0.5), expected.double())


def test_rad_weights_do_not_overflow_for_large_k_or_residuals():
    r = torch.tensor([1e30, 2e30, 1e-30], dtype=torch.float64)
    w = rad_weights(r, 50.0, 1.0)
    assert bool(torch.isfinite(w).all()) and float(w[1]) > float(w[0]) > float(w[2])


@pytest.mark.parametrize("c", [0.0, 1.0])
def test_all_zero_residuals_keep_every_weight_defined(c):
    w = rad_weights(torch.zeros(5), 1.0, c)
    assert bool(torch.isfinite(w).all()) and bool((w > 0).all())
    assert torch.allclose(w, w[0].expand(5))


def test_effective_sample_size_is_one_for_uniform_and_small_for_a_spike():
    assert math.isclose(effective_sample_size(torch.ones(10)), 1.0)
    spike = torch.tensor([1e6] + [1.0] * 99)
    assert effective_sample_size(spike) < 0.02


def test_capped_inclusion_sums_to_n_caps_at_one_and_stays_proportional_below_the_cap():
    w = torch.tensor([50.0, 1.0, 2.0, 0.0, 3.0, 4.0])
    pi = capped_inclusion(w, 3)
    assert float(pi.sum()) == pytest.approx(3.0)
    assert float(pi[0]) == 1.0 and float(pi[3]) == 0.0
    rest = pi[[1, 2, 4, 5]] / w[[1, 2, 4, 5]].double()
    assert torch.allclose(rest, rest[0].expand(4))  # one factor t below the cap


def test_systematic_draw_is_distinct_and_hits_the_inclusion_probabilities():
    """Each member's frequency over 20,000 draws is within 5 binomial sd of its pi_j."""
    w = torch.tensor([5.0, 1.0, 1.0, 1.0, 0.0, 1.0, 1.0, 1.0, 1.0, 10.0])
    pi = capped_inclusion(w, 4)
    gen = torch.Generator().manual_seed(0)
    trials = 20_000
    counts = torch.zeros(10, dtype=torch.float64)
    for _ in range(trials):
        idx = systematic_draw(w, 4, gen)
        assert idx.unique().numel() == 4
        counts[idx] += 1
    sd = torch.sqrt(pi * (1 - pi) / trials).clamp(min=1e-12)
    assert bool(((counts / trials - pi).abs() <= 5 * sd + 1e-12).all())


def test_systematic_draw_takes_one_per_block_of_unit_mass_where_the_race_does_not():
    """300 anchors with 3 equal candidates each, 300 drawn: the systematic draw leaves every
    anchor exactly one point; the exponential race (a uniform draw without replacement here)
    leaves about 300 (2/3)^3 ~ 89 of them none (hypergeometric), so 60 is a safe floor."""
    w = torch.ones(900)
    anchor = torch.arange(300).repeat_interleave(3)
    gen = torch.Generator().manual_seed(0)
    systematic = torch.bincount(anchor[systematic_draw(w, 300, gen)], minlength=300)
    race = torch.bincount(anchor[weighted_draw(w, 300, gen)], minlength=300)
    assert bool((systematic == 1).all())
    assert int((race == 0).sum()) > 60


def test_systematic_draw_refuses_more_points_than_positive_weights():
    with pytest.raises(ValueError, match="n=3"):
        systematic_draw(torch.tensor([1.0, 0.0, 2.0]), 3, torch.Generator().manual_seed(0))
