import math
import re

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from glfpinn.domains import SAMPLING_METHODS, Ball, Box, LShape, SpaceTime
from glfpinn.testing import check_domain

finite = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@settings(max_examples=200, deadline=None)
@given(
    lo=st.floats(-10, 10),
    width=st.floats(0.01, 10),
    xs=st.lists(finite, min_size=1, max_size=50),
)
def test_box_reflect_keeps_every_point_inside_for_any_excursion(lo, width, xs):
    box = Box([lo], [lo + width])
    x = torch.tensor(xs, dtype=torch.float64).unsqueeze(1)
    assert bool(box.contains(box.reflect(x)).all())


@settings(max_examples=100, deadline=None)
@given(xs=st.lists(st.tuples(finite, finite), min_size=1, max_size=50))
def test_lshape_reflect_keeps_every_point_inside(xs):
    dom = LShape()
    x = torch.tensor(xs, dtype=torch.float64)
    assert bool(dom.contains(dom.reflect(x)).all())


def test_reflect_is_the_triangle_wave_and_leaves_inside_points_alone():
    box = Box([0.0], [1.0])
    x = torch.tensor([[0.3], [1.2], [-0.25], [2.5], [-3.7]], dtype=torch.float64)
    expected = torch.tensor([[0.3], [0.8], [0.25], [0.5], [0.3]], dtype=torch.float64)
    assert torch.allclose(box.reflect(x), expected, atol=1e-12)


def test_lshape_reflects_across_the_nearer_reentrant_edge():
    dom = LShape()
    x = torch.tensor([[0.1, -0.5], [0.6, -0.2]], dtype=torch.float64)
    assert torch.allclose(
        dom.reflect(x), torch.tensor([[-0.1, -0.5], [0.6, 0.2]], dtype=torch.float64)
    )


@pytest.mark.parametrize("method", SAMPLING_METHODS)
@pytest.mark.parametrize("domain", [Box([-1, 0], [1, 1]), Box.cube(5), LShape()], ids=repr)
def test_sample_lies_inside_and_is_reproducible(method, domain):
    a = domain.sample(300, torch.Generator().manual_seed(1), method=method)
    b = domain.sample(300, torch.Generator().manual_seed(1), method=method)
    assert a.shape == (300, domain.dim) and a.dtype == torch.float32
    assert bool(domain.contains(a).all())
    assert torch.equal(a, b)


@pytest.mark.parametrize("method", ["sobol", "halton", "lhs"])
def test_qmc_resample_changes_the_points(method):
    gen = torch.Generator().manual_seed(0)
    box = Box.cube(2)
    a, b = box.sample(128, gen, method=method), box.sample(128, gen, method=method)
    assert not torch.allclose(a, b)


def test_sobol_is_more_uniform_than_random():
    """Star discrepancy proxy: the worst error of the fraction of points in [0, t) boxes."""
    gen = torch.Generator().manual_seed(0)
    box = Box.cube(2)

    def worst_box_error(x):
        t = torch.linspace(0.05, 1, 20)
        frac = (
            ((x[:, None, None, 0] < t[:, None]) & (x[:, None, None, 1] < t[None, :]))
            .float()
            .mean(0)
        )
        return float((frac - t[:, None] * t[None, :]).abs().max())

    sobol = sum(worst_box_error(box.sample(1024, gen, method="sobol")) for _ in range(5))
    rand = sum(worst_box_error(box.sample(1024, gen)) for _ in range(5))
    assert sobol < 0.5 * rand


@pytest.mark.parametrize("domain", [Box([-1, 0], [1, 2]), Box.cube(4), LShape()], ids=repr)
def test_boundary_points_lie_on_the_boundary(domain):
    x = domain.sample_boundary(2000, torch.Generator().manual_seed(0), dtype=torch.float64)
    assert bool(domain.contains(x).all())
    eps = 1e-3
    # Pushing a boundary point a little in some direction must leave the domain for some
    # direction: check with the 2 * dim axis directions.
    leaves = torch.zeros(x.shape[0], dtype=torch.bool)
    for i in range(domain.dim):
        for s in (-1, 1):
            y = x.clone()
            y[:, i] += s * eps
            leaves |= ~domain.contains(y)
    assert bool(leaves.all())


def test_box_boundary_faces_are_chosen_by_area():
    box = Box([0, 0], [4, 1])  # faces x=0, x=4 have length 1; y=0, y=1 have length 4
    x = box.sample_boundary(40_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    on_vertical = ((x[:, 0] == 0) | (x[:, 0] == 4)).double().mean()
    assert abs(float(on_vertical) - 0.2) < 0.01  # binomial sd = 0.002


def test_lshape_sampling_is_uniform_over_its_three_cells():
    x = LShape().sample(30_000, torch.Generator().manual_seed(0))
    third = torch.tensor(
        [
            float(((x[:, 0] < 0) & (x[:, 1] < 0)).float().mean()),
            float(((x[:, 0] < 0) & (x[:, 1] >= 0)).float().mean()),
            float(((x[:, 0] >= 0) & (x[:, 1] >= 0)).float().mean()),
        ]
    )
    assert torch.allclose(third, torch.full((3,), 1 / 3), atol=0.015)  # sd = 0.0027


def test_bad_boxes_are_refused_with_the_values():
    with pytest.raises(ValueError, match="below"):
        Box([0, 1], [1, 1])
    with pytest.raises(ValueError, match="equally long"):
        Box([0], [1, 2])


def test_check_points_names_the_problem():
    box = Box.cube(2)
    with pytest.raises(ValueError, match=r"expected \(n, 2\)"):
        box.check_points(torch.zeros(3, 3))
    with pytest.raises(ValueError, match="outside"):
        box.check_points(torch.full((3, 2), 2.0))
    with pytest.raises(ValueError, match="NaN"):
        box.check_points(torch.full((3, 2), math.nan))


# ------------------------------------------------------------------ Ball and SpaceTime


@pytest.mark.parametrize(
    "domain",
    [
        Ball(5),
        Ball(2, center=[1.0, -2.0], radius=0.5),
        SpaceTime(Ball(3)),
        SpaceTime(Ball(5), 0.0, 2.0),
    ],
    ids=repr,
)
def test_ball_and_space_time_keep_the_domain_contract(domain):
    check_domain(domain, methods=("uniform", "sobol", "halton", "lhs"))


def test_ball_volume_and_uniform_radius():
    """V_5 = 8 pi^2 / 15; a uniform point lies within r = 1/2 with probability 2^-5: over
    200,000 points the share is within 5 binomial sd of it."""
    ball = Ball(5)
    assert ball.volume == pytest.approx(8 * math.pi**2 / 15, rel=1e-14)
    assert ball.surface_area == pytest.approx(8 * math.pi**2 / 3, rel=1e-14)
    x = ball.sample(200_000, torch.Generator().manual_seed(0), dtype=torch.float64)
    share, p = float((x.norm(dim=1) < 0.5).double().mean()), 0.5**5
    assert abs(share - p) < 5 * math.sqrt(p * (1 - p) / 200_000)


def test_ball_reflects_far_excursions_inside_along_their_ray():
    ball = Ball(3, radius=2.0)
    x = 50 * torch.randn(10_000, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    y = ball.reflect(x)
    assert bool(ball.contains(y).all())
    cos = (x * y).sum(1) / (x.norm(dim=1) * y.norm(dim=1))
    assert bool((cos > 1 - 1e-12).all())  # the same direction from the centre


def test_space_time_boundary_is_the_sphere_or_a_time_face_in_proportion():
    domain = SpaceTime(Ball(3), 0.0, 1.0)
    x = domain.sample_boundary(30_000, torch.Generator().manual_seed(2), dtype=torch.float64)
    on_sphere = (x[:, :-1].norm(dim=1) - 1).abs() < 1e-12
    on_face = (x[:, -1] == 0.0) | (x[:, -1] == 1.0)
    assert bool((on_sphere | on_face).all())
    lateral = 4 * math.pi  # the sphere's area times the unit time span, against two caps
    p = lateral / (lateral + 2 * (4 * math.pi / 3))
    share = float(on_sphere.double().mean())
    assert abs(share - p) < 5 * math.sqrt(p * (1 - p) / 30_000)


@pytest.mark.parametrize(
    "make, fragment",
    [
        (lambda: Ball(0), "dim=0"),
        (lambda: Ball(2, radius=0.0), "radius=0.0"),
        (lambda: Ball(2, center=[0.0]), "center=[0.0]"),
        (lambda: SpaceTime(Ball(2), 1.0, 1.0), "t0=1.0"),
        (lambda: SpaceTime("ball"), "space='ball'"),
    ],
)
def test_ball_and_space_time_refuse_bad_input_in_one_line(make, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        make()
