"""2-D domains with holes and curved boundaries (glfpinn.geometry): contains, area, sampling,
tagged boundary points, distance, reflection, bad input, and the older domains as special
cases."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest
import torch

from glfpinn.domains import Box, LShape
from glfpinn.geometry import CSGDomain, Disk, Polygon, Rectangle, difference, intersection, union
from glfpinn.testing import check_domain, make_context

shapely = pytest.importorskip("shapely")


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def poisson2d_c() -> CSGDomain:
    """PINNacle's Poisson2d-C geometry: [-0.5, 0.5]^2 minus four disks of radius 0.1."""
    shape = Rectangle((-0.5, -0.5), (0.5, 0.5), name="outer")
    for i, (cx, cy) in enumerate([(-0.3, -0.3), (-0.3, 0.3), (0.3, -0.3), (0.3, 0.3)]):
        shape = shape - Disk((cx, cy), 0.1, name=f"hole{i}")
    return shape


def two_disks() -> CSGDomain:
    return Disk((0.0, 0.0), 1.0) | Disk((1.0, 0.0), 1.0)


def lshape_csg() -> CSGDomain:
    return Rectangle((-1, -1), (1, 1)) - Rectangle((0, -1), (1, 0))


ZIGZAG = [(0, 0), (2, 0), (1, 1), (2, 2), (0, 2)]  # a concave polygon


def shapes() -> dict[str, object]:
    return {
        "rectangle": Rectangle((0.0, 0.0), (2.0, 1.0)),
        "disk": Disk((1.0, 2.0), 0.5),
        "poisson2d-c": poisson2d_c(),
        "two-disks": two_disks(),
        "lens": Disk((0, 0), 1) & Disk((1, 0), 1),
        "quarter": Disk((0, 0), 1) & Rectangle((0, 0), (2, 2)),
        "polygon-hole": Polygon(ZIGZAG) - Disk((0.5, 1.0), 0.3),
        "lshape": lshape_csg(),
    }


SHAPES = shapes()


# -- contains --------------------------------------------------------------------------------


def test_contains_on_known_points_for_each_primitive_and_operator():
    x = torch.tensor([[0.0, 0.0], [0.5, 0.0], [1.5, 0.0], [-1.1, 0.0], [0.5, 0.9], [3.0, 3.0]])
    d0, d1 = Disk((0, 0), 1), Disk((1, 0), 1)
    assert d0.contains(x).tolist() == [True, True, False, False, False, False]
    assert (d0 | d1).contains(x).tolist() == [True, True, True, False, False, False]
    # (0, 0) lies on d1's circle: on the lens's boundary, so in the closed set
    assert (d0 & d1).contains(x).tolist() == [True, True, False, False, False, False]
    assert (d0 - d1).contains(x).tolist() == [True, False, False, False, False, False]
    r = Rectangle((0, 0), (1, 1))
    assert r.contains(torch.tensor([[0.5, 0.5], [1.0, 1.0], [1.01, 0.5]])).tolist() == [
        True,
        True,  # closed: a corner counts
        False,
    ]
    p = Polygon(ZIGZAG)  # the notch at (2, 1) -> (1, 1)
    got = p.contains(torch.tensor([[0.5, 1.0], [1.5, 1.0], [1.0, 1.0], [1.5, 0.2], [1.9, 0.2]]))
    assert got.tolist() == [True, False, True, True, False]


def test_contains_agrees_with_shapely_on_random_points():
    dom = SHAPES["polygon-hole"]
    ref = shapely.Polygon(ZIGZAG).difference(shapely.Point(0.5, 1.0).buffer(0.3, quad_segs=512))
    x = torch.rand(20_000, 2, generator=gen(1), dtype=torch.float64) * 2.4 - 0.2
    ours = dom.contains(x).numpy()
    theirs = shapely.contains_xy(ref, x[:, 0].numpy(), x[:, 1].numpy())
    # the 512-segment circle differs from the exact one by 2e-6 at most
    near = dom.distance_to_boundary(x).numpy() < 1e-5
    assert (ours == theirs)[~near].all()


def test_the_closed_set_counts_its_boundary_with_a_tolerance():
    dom = poisson2d_c()
    xb = dom.sample_boundary(2000, gen(), dtype=torch.float32)
    assert bool(dom.contains(xb).all())
    out = xb.double() + 1e-4 * dom.outward_normal(xb.double())
    assert not bool(dom.contains(out).any())


# -- area and boundary length ----------------------------------------------------------------


def test_area_of_known_shapes():
    assert poisson2d_c().volume == pytest.approx(1 - 4 * math.pi * 0.01, rel=1e-12)
    assert lshape_csg().volume == pytest.approx(3.0, rel=1e-12)
    lens = 2 * math.acos(0.5) - 0.5 * math.sqrt(3)  # two unit disks at distance 1
    assert two_disks().volume == pytest.approx(2 * math.pi - lens, rel=1e-12)
    assert SHAPES["lens"].volume == pytest.approx(lens, rel=1e-12)
    assert SHAPES["quarter"].volume == pytest.approx(math.pi / 4, rel=1e-12)
    assert Polygon(ZIGZAG).volume == pytest.approx(3.0, rel=1e-12)
    # the polygon minus a disk: shapely with a 1024-segment circle agrees to 1e-5
    ref = shapely.Polygon(ZIGZAG).difference(shapely.Point(0.5, 1.0).buffer(0.3, quad_segs=256))
    assert SHAPES["polygon-hole"].volume == pytest.approx(ref.area, rel=1e-5)


def test_boundary_lengths_per_piece():
    dom = poisson2d_c()
    assert dom.boundary_pieces == ("outer", "hole0", "hole1", "hole2", "hole3")
    lengths = dom.boundary_lengths
    assert lengths["outer"] == pytest.approx(4.0)
    for i in range(4):
        assert lengths[f"hole{i}"] == pytest.approx(0.2 * math.pi)
    # the union has no boundary in the overlap: two thirds of each circle
    assert two_disks().boundary_length == pytest.approx(2 * (2 * math.pi) * 2 / 3)
    assert dict(two_disks().boundary_lengths) == pytest.approx(
        {"disk0": 4 * math.pi / 3, "disk1": 4 * math.pi / 3}
    )


def test_bounds_are_the_boundary_s_box():
    lo, hi = SHAPES["quarter"].bounds
    assert lo.tolist() == pytest.approx([0, 0]) and hi.tolist() == pytest.approx([1, 1])
    lo, hi = two_disks().bounds
    assert lo.tolist() == pytest.approx([-1, -1]) and hi.tolist() == pytest.approx([2, 1])


# -- interior sampling -----------------------------------------------------------------------


def test_interior_samples_are_inside_and_uniform():
    dom = poisson2d_c()
    n = 20_000
    x = dom.sample(n, gen(3), dtype=torch.float64)
    assert bool(dom.contains(x).all())
    assert float(dom.distance_to_boundary(x).min()) >= 0
    # the right half [0, 0.5] x [-0.5, 0.5] minus two holes: half the area
    share = ((x[:, 0] > 0).double().mean()).item()
    sd = math.sqrt(0.25 / n)
    assert abs(share - 0.5) < 5 * sd
    # a sub-rectangle away from the holes: [-0.1, 0.1] x [-0.5, 0.5], area 0.2
    p = 0.2 / dom.volume
    frac = ((x[:, 0].abs() < 0.1).double().mean()).item()
    assert abs(frac - p) < 5 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("method", ["uniform", "sobol", "halton", "lhs"])
def test_sampling_is_reproducible_and_leaves_global_rng_alone(method):
    dom = poisson2d_c()
    before = torch.random.get_rng_state()
    a = dom.sample(500, gen(7), method=method)
    b = dom.sample(500, gen(7), method=method)
    xb, tags = dom.sample_boundary_tagged(500, gen(7))
    xb2, tags2 = dom.sample_boundary_tagged(500, gen(7))
    dom.reflect(torch.randn(200, 2, generator=gen(1)) * 3, gen(2))
    assert torch.equal(torch.random.get_rng_state(), before)
    assert torch.equal(a, b) and torch.equal(xb, xb2) and torch.equal(tags, tags2)
    assert a.dtype == torch.float32 and a.shape == (500, 2)


def test_unknown_method_is_refused():
    with pytest.raises(ValueError, match="method='grid'"):
        poisson2d_c().sample(10, gen(), method="grid")


# -- boundary sampling and tags --------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHAPES))
def test_boundary_samples_lie_on_the_boundary(name):
    dom = SHAPES[name]
    xb, tags = dom.sample_boundary_tagged(3000, gen(5), dtype=torch.float64)
    assert tags.dtype == torch.long and tags.shape == (3000,)
    assert float(dom.distance_to_boundary(xb).max()) < 1e-6
    # and on their own piece's curve
    leaves = dom._leaves()
    for k, leaf in enumerate(leaves):
        mine = xb[tags == k]
        if len(mine):
            assert float(leaf._sd(mine).abs().max()) < 1e-9


def test_tags_follow_the_pieces_lengths():
    dom = poisson2d_c()
    n = 20_000
    _, tags = dom.sample_boundary_tagged(n, gen(9))
    counts = torch.bincount(tags, minlength=5).double()
    total = dom.boundary_length
    for k, name in enumerate(dom.boundary_pieces):
        p = dom.boundary_lengths[name] / total
        assert abs(float(counts[k]) - n * p) < 5 * math.sqrt(n * p * (1 - p))


def test_tagged_holes_are_where_their_disks_are():
    dom = poisson2d_c()
    xb, tags = dom.sample_boundary_tagged(2000, gen(), dtype=torch.float64)
    hole3 = xb[tags == dom.boundary_pieces.index("hole3")]
    r = torch.linalg.vector_norm(hole3 - torch.tensor([0.3, 0.3], dtype=torch.float64), dim=1)
    assert torch.allclose(r, torch.full_like(r, 0.1))


def test_sampling_chosen_pieces_only():
    dom = poisson2d_c()
    xb, tags = dom.sample_boundary_tagged(300, gen(), pieces="hole1")
    assert xb.shape == (300, 2) and bool((tags == 2).all())
    _, tags = dom.sample_boundary_tagged(300, gen(), pieces=["hole0", "hole2"])
    assert set(tags.tolist()) == {1, 3}
    with pytest.raises(ValueError, match="pieces='nope'"):
        dom.sample_boundary_tagged(10, gen(), pieces="nope")
    inner = Rectangle((0, 0), (4, 4)) | Disk((2, 2), 1)  # the disk is wholly inside
    assert inner.boundary_lengths["disk0"] == 0.0
    with pytest.raises(ValueError, match="no length on the boundary"):
        inner.sample_boundary_tagged(10, gen(), pieces="disk0")


def test_coincident_edges_count_once_for_the_first_piece():
    # two rectangles sharing the bottom edge y = 0, x in [0, 1]: their intersection
    dom = Rectangle((0, 0), (1, 1), name="a") & Rectangle((0, 0), (2, 1), name="b")
    assert dom.boundary_length == pytest.approx(4.0)
    assert dom.boundary_lengths == pytest.approx({"a": 4.0, "b": 0.0})
    # side by side: the shared edge is no boundary
    side = Rectangle((0, 0), (1, 1)) | Rectangle((1, 0), (2, 1))
    assert side.boundary_length == pytest.approx(6.0) and side.volume == pytest.approx(2.0)


def test_edge_names_make_each_side_its_own_piece():
    """A cavity with a lid: the top edge is tagged apart from the walls, and a hole keeps its
    own piece; lengths and tags follow the sides."""
    cavity = Rectangle((0, 0), (2, 1), edges=("bottom", "right", "lid", "left"))
    dom = cavity - Disk((1, 0.5), 0.2, name="hole")
    assert dom.boundary_pieces == ("bottom", "right", "lid", "left", "hole")
    assert dom.boundary_lengths == pytest.approx(
        {"bottom": 2.0, "right": 1.0, "lid": 2.0, "left": 1.0, "hole": 0.4 * math.pi}
    )
    xb, tags = dom.sample_boundary_tagged(4000, gen(), dtype=torch.float64)
    names = dom.boundary_pieces
    on = {name: xb[tags == k] for k, name in enumerate(names)}
    assert torch.allclose(on["lid"][:, 1], torch.ones(len(on["lid"]), dtype=torch.float64))
    assert torch.allclose(on["bottom"][:, 1], torch.zeros(len(on["bottom"]), dtype=torch.float64))
    assert torch.allclose(on["right"][:, 0], torch.full((len(on["right"]),), 2.0).double())
    assert torch.allclose(on["left"][:, 0], torch.zeros(len(on["left"]), dtype=torch.float64))
    lid, _ = dom.sample_boundary_tagged(100, gen(), pieces="lid", dtype=torch.float64)
    assert torch.allclose(lid[:, 1], torch.ones(100, dtype=torch.float64))


@pytest.mark.parametrize("vertices", [[(0, 0), (2, 0), (0, 1)], [(0, 0), (0, 1), (2, 0)]])
def test_polygon_edge_names_follow_the_user_s_vertex_order(vertices):
    """Edge i runs from vertex i to vertex i + 1 in the order given, clockwise or not."""
    tri = Polygon(vertices, edges=("e0", "e1", "e2"))
    v = np.asarray(vertices, dtype=np.float64)
    xb, tags = tri.sample_boundary_tagged(600, gen(), dtype=torch.float64)
    for i, name in enumerate(("e0", "e1", "e2")):
        a, b = v[i], v[(i + 1) % 3]
        pts = xb[tags == tri.boundary_pieces.index(name)].numpy()
        assert len(pts) > 0
        # on the segment a-b: collinear and between the ends
        cross = (b[0] - a[0]) * (pts[:, 1] - a[1]) - (b[1] - a[1]) * (pts[:, 0] - a[0])
        assert np.abs(cross).max() < 1e-12
        assert tri.boundary_lengths[name] == pytest.approx(float(np.hypot(*(b - a))))


# -- distance and normals --------------------------------------------------------------------


def test_distance_to_boundary_is_exact():
    dom = poisson2d_c()
    x = torch.tensor([[0.0, 0.0], [0.3, 0.3], [0.3, 0.45], [0.9, 0.0], [0.45, 0.0]])
    d = dom.distance_to_boundary(x.double())
    assert d.tolist() == pytest.approx([math.hypot(0.3, 0.3) - 0.1, 0.1, 0.05, 0.4, 0.05])
    sd = dom.signed_distance(x.double())
    assert sd.tolist() == pytest.approx([-float(d[0]), 0.1, -0.05, 0.4, -0.05])
    # the union's overlap has no boundary: (0.5, 0) is sqrt(3)/2 from the two crossings
    assert float(two_disks().distance_to_boundary(torch.tensor([[0.5, 0.0]]))) == pytest.approx(
        math.sqrt(3) / 2, rel=1e-6
    )
    n = dom.outward_normal(torch.tensor([[0.3, 0.42], [0.6, 0.0]], dtype=torch.float64))
    want = torch.tensor([[0.0, -1.0], [1.0, 0.0]], dtype=torch.float64)
    assert torch.allclose(n, want)  # a hole's normal points into the hole, out of the domain


# -- reflection ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SHAPES))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reflect_never_leaves_a_point_outside(name, dtype):
    dom = SHAPES[name]
    lo, hi = (b.to(dtype) for b in dom.bounds)
    g = gen(11)
    near = dom.sample(2000, g, dtype=dtype) + 0.05 * dom.diameter * torch.randn(
        2000, 2, generator=g, dtype=dtype
    )
    far = (lo + hi) / 2 + 100 * dom.diameter * torch.randn(2000, 2, generator=g, dtype=dtype)
    box3 = lo - (hi - lo) + 3 * (hi - lo) * torch.rand(2000, 2, generator=g, dtype=dtype)
    x = torch.cat([near, far, box3])
    y = dom.reflect(x, gen(12))
    assert y.dtype == dtype and y.shape == x.shape
    assert bool(dom.contains(y).all())
    inside = dom.contains(x)
    assert torch.equal(y[inside], x[inside])
    # without a generator too (a fixed interior point is the last resort)
    assert bool(dom.contains(dom.reflect(x)).all())


def test_reflect_mirrors_a_small_excursion_across_the_boundary():
    dom = poisson2d_c()
    x = torch.tensor([[0.3, 0.35], [0.52, 0.0]], dtype=torch.float64)  # in a hole; past x = 0.5
    y = dom.reflect(x)
    assert torch.allclose(y, torch.tensor([[0.3, 0.45], [0.48, 0.0]], dtype=torch.float64))


def test_a_glf_resample_on_a_domain_with_holes_stays_inside():
    from glfpinn.samplers import GLF, RobustGLF

    dom = poisson2d_c()
    for sampler in (GLF(alpha=0.5, h_max=5.0), RobustGLF()):
        ctx, _ = make_context(dom, n=400)
        out = sampler.resample(ctx, {})
        assert out.points.shape == (400, 2)
        assert bool(dom.contains(out.points).all())


# -- conformance and the older domains -------------------------------------------------------


@pytest.mark.parametrize("name", list(SHAPES))
def test_check_domain_conformance(name):
    check_domain(SHAPES[name], n=128, methods=("uniform", "sobol", "halton", "lhs"))


def test_lshape_is_a_rectangle_minus_a_rectangle():
    old, new = LShape(), lshape_csg()
    assert new.volume == old.volume == 3.0
    for a, b in zip(old.bounds, new.bounds):
        assert torch.equal(a, b)
    assert new.boundary_length == pytest.approx(8.0)
    # contains agrees off the measure-zero edges below the notch (see the module)
    x = torch.rand(50_000, 2, generator=gen(), dtype=torch.float64) * 2.4 - 1.2
    assert torch.equal(old.contains(x), new.contains(x))
    # the same boundary: each one's points lie on the other's
    xb_old = old.sample_boundary(3000, gen(1), dtype=torch.float64)
    assert float(new.distance_to_boundary(xb_old).max()) < 1e-12
    xb_new = new.sample_boundary(3000, gen(1), dtype=torch.float64)
    on_old = (
        (xb_new.abs() == 1).any(dim=1)
        | ((xb_new[:, 0] == 0) & (xb_new[:, 1] <= 0))
        | ((xb_new[:, 1] == 0) & (xb_new[:, 0] >= 0))
    )
    assert bool(on_old.all()) and bool(old.contains(xb_new).all())
    # the same reflection for a single excursion across a re-entrant edge
    x = torch.tensor([[0.2, -0.5], [0.5, -0.1]], dtype=torch.float64)
    assert torch.allclose(new.reflect(x), old.reflect(x))


def test_a_rectangle_is_a_2d_box():
    box, rect = Box([0.0, -1.0], [2.0, 1.0]), Rectangle((0.0, -1.0), (2.0, 1.0))
    assert rect.volume == box.volume and rect.diameter == pytest.approx(box.diameter)
    x = torch.rand(5000, 2, generator=gen(), dtype=torch.float64) * 4 - 1.5
    assert torch.equal(box.contains(x), rect.contains(x))
    # single excursions (under one width): the fold and the mirror agree
    small = box.sample(2000, gen(2), dtype=torch.float64) + 0.3 * torch.randn(
        2000, 2, generator=gen(3), dtype=torch.float64
    )
    assert torch.allclose(box.reflect(small), rect.reflect(small), atol=1e-12)
    xb = box.sample_boundary(1000, gen(4), dtype=torch.float64)
    assert float(rect.distance_to_boundary(xb).max()) < 1e-12


def test_box_and_lshape_draw_what_they_drew():
    """The new module changes nothing of the old domains' draws (fixed values from main)."""
    x = Box([0.0, 0.0], [1.0, 1.0]).sample(3, gen(0), dtype=torch.float64)
    ref = torch.rand(3, 2, generator=gen(0), dtype=torch.float64)
    assert torch.equal(x, ref)
    y = LShape().sample(4, gen(0))
    assert bool(LShape().contains(y).all())


# -- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "build, match",
    [
        (lambda: Disk((0, 0), 0.0), r"radius=0\.0 must be a finite number > 0"),
        (lambda: Disk((0, 0), -1), r"radius=-1"),
        (lambda: Disk((0, math.nan), 1), r"center="),
        (lambda: Rectangle((0, 0), (1, 0)), r"size \[1, 0\] must be > 0"),
        (lambda: Rectangle((0, 0, 0), (1, 1, 1)), r"lo=\(0, 0, 0\) must be two finite"),
        (lambda: Polygon([(0, 0), (1, 0)]), r"2 vertices; allowed: at least 3"),
        (
            lambda: Polygon([(0, 0), (1, 1), (1, 0), (0, 1)]),
            r"not a simple polygon \(Self-intersection",
        ),
        (lambda: Polygon([(0, 0), (1, 1), (2, 2)]), r"not a simple polygon"),
        (
            lambda: Rectangle((0, 0), (1, 1)) - Disk((5, 5), 1),
            r"does not overlap .* allowed: a hole or notch that overlaps its parent",
        ),
        (
            lambda: Rectangle((0, 0), (1, 1)) - Rectangle((1, 0), (2, 1)),  # touches only
            r"does not overlap",
        ),
        (lambda: Disk((0, 0), 1) & Disk((5, 0), 1), r"is empty .*allowed: a non-empty result"),
        (lambda: Disk((0, 0), 1) - Disk((0, 0), 2), r"is empty"),
        (lambda: Disk((0, 0), 1, name="a") | Disk((1, 0), 1, name="a"), r"named 'a'"),
        (lambda: Disk((0, 0), 1, name=""), r"name=''"),
        (lambda: Rectangle((0, 0), (1, 1), edges=("a", "b", "c")), r"edges=\('a', 'b', 'c'\)"),
        (lambda: Rectangle((0, 0), (1, 1), edges=("a", "a", "b", "c")), r"4 distinct"),
        (lambda: Rectangle((0, 0), (1, 1), edges="abcd"), r"edges='abcd'"),
        (lambda: Rectangle((0, 0), (1, 1), name="r", edges=list("abcd")), r"not both"),
        (lambda: Polygon([(0, 0), (1, 0), (0, 1)], edges=("a", "b")), r"3 distinct"),
    ],
)
def test_bad_input_is_one_line_naming_the_value(build, match):
    with pytest.raises(ValueError, match=match) as info:
        build()
    assert "\n" not in str(info.value)


def test_operators_take_shapes_only():
    with pytest.raises(TypeError):
        Disk((0, 0), 1) | Box([0, 0], [1, 1])
    with pytest.raises(TypeError, match="takes shapes"):
        union(Disk((0, 0), 1), "disk")  # type: ignore[arg-type]
    assert isinstance(difference(Disk((0, 0), 1), Disk((1, 0), 1)), CSGDomain)
    assert intersection(Disk((0, 0), 1), Disk((1, 0), 1)).volume == pytest.approx(
        SHAPES["lens"].volume
    )


def test_shapely_is_optional():
    """Importing glfpinn and building rectangles and disks never imports shapely; a polygon
    without it is one line naming the extra."""
    code = (
        "import sys; sys.modules['shapely'] = None\n"
        "import glfpinn\n"
        "from glfpinn.domains import Rectangle, Disk, Polygon\n"
        "d = Rectangle((0, 0), (1, 1)) - Disk((0.5, 0.5), 0.2)\n"
        "assert d.volume > 0\n"
        "try:\n"
        "    Polygon([(0, 0), (1, 0), (0, 1)])\n"
        "except ImportError as err:\n"
        "    print(err)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == 'Polygon needs shapely: pip install "glfpinn[geometry]"'
    probe = (
        "import glfpinn, glfpinn.domains, glfpinn.geometry, sys; print('shapely' in sys.modules)"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", probe], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


# -- end to end ------------------------------------------------------------------------------


def test_a_user_problem_on_a_rectangle_minus_a_disk_trains():
    from glfpinn import Problem, RobustGLF, ops
    from glfpinn.training import make_trainer

    class HoleLaplace(Problem):
        """Laplace's equation on the unit square minus a disk, u = x + y (harmonic) on the
        outer edges and on the hole, each its own condition."""

        name = "hole-laplace"
        defaults = {"n_points": 200, "resample_every": 5, "hidden": (16, 16)}

        def __init__(self) -> None:
            self.dim = 2
            self.domain = Rectangle((0, 0), (1, 1), name="outer") - Disk(
                (0.5, 0.5), 0.2, name="hole"
            )

        def residual(self, model, x):
            _, lap = ops.laplacian(model, x)
            return lap

        def condition_points(self, n, generator, dtype):
            return {
                piece: self.domain.sample_boundary_tagged(n, generator, dtype=dtype, pieces=piece)[
                    0
                ]
                for piece in ("outer", "hole")
            }

        def condition_misfits(self, model, points):
            return {
                k: ((model(x).squeeze(-1) - x.sum(dim=1)) ** 2).mean() for k, x in points.items()
            }

        def condition_loss(self, model, points):
            return sum(self.condition_misfits(model, points).values())

        def solution(self, x):
            return np.asarray(x, dtype=np.float64).sum(axis=1)

        def test_points(self):
            return self.domain.sample(300, gen(123), dtype=torch.float64).numpy()

    trainer = make_trainer(
        HoleLaplace(),
        RobustGLF(),
        steps=20,
        lbfgs_steps=0,
        lr=1e-2,
        eval_every=10,
        n_points=200,
        seed=0,
        compile=False,
    )
    result = trainer.fit()
    assert math.isfinite(result.l2_relative_error)
    assert bool(trainer.problem.domain.contains(trainer.state.points).all())
