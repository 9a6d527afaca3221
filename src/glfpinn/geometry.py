"""2-D domains with holes and curved boundaries: rectangles, disks and polygons combined by
union (``a | b``), difference (``a - b``) and intersection (``a & b``).

Every shape is a :class:`~glfpinn.domains.Domain` (``dim == 2``) that also knows its boundary
exactly, as a list of straight segments and circular arcs:

- **The boundary.** At construction each piece's boundary curve (a disk's circle, a rectangle's
  or a polygon's edges) is split where it meets the other pieces' curves (closed-form
  segment/segment, segment/circle and circle/circle intersections), and each sub-curve is kept
  when the composite's membership differs on its two sides (tested 1e-6 diameters off its
  midpoint, at most a tenth of its length). So the union of two overlapping disks has no
  boundary inside the overlap, and the parts of a subtracted notch's edges that coincide with
  its parent's edges (the L-shape's) are no boundary at all. Where two pieces' curves coincide
  along the boundary, the sub-curve counts once, for the piece named first. Features thinner
  than about 1e-6 diameters are not resolved.
- **Tags.** ``boundary_pieces`` names the pieces (primitives) in the order they appear in the
  expression: the ``name=`` given to the primitive, else its kind and a count per kind
  (``"rectangle0"``, ``"disk0"``, ``"disk1"``, ...); a rectangle or polygon given ``edges=``
  (one name per edge) contributes one piece per edge instead, so conditions can differ along
  its sides (a cavity's lid and walls). :meth:`Shape.sample_boundary_tagged`
  returns the points and a LongTensor of indices into ``boundary_pieces``; points are uniform
  in arc length over the whole boundary, so each piece gets points in proportion to its length
  on the boundary (``boundary_lengths``), or over chosen pieces only (``pieces=``).
  ``sample_boundary`` is the same draw without the tags.
- **Area** (``volume``) is exact: Green's theorem over the oriented segments and arcs
  (rounding only, ~1e-15 relative). ``bounds`` is the exact bounding box of the boundary.
- **contains** is exact for every primitive (a polygon by the even-odd rule on its edges) and
  combined by signed distances: union min, intersection max, difference max(a, -b). The set is
  closed, with a tolerance of 16 machine epsilons (of ``x``'s dtype) times the domain's scale,
  so boundary points rounded to float32 count as inside. On a measure-zero set where a
  subtracted piece's edge coincides with its parent's (the L-shape's outer edges below its
  notch) ``contains`` answers True although no boundary is there; sampling never places a
  point there.
- **distance_to_boundary** is the exact Euclidean distance to the composite's boundary (to the
  kept segments and arcs); ``signed_distance`` is negative inside; ``outward_normal`` is the
  outer normal at the nearest boundary point (for Neumann conditions).
- **sample** draws from the bounding box with the run's generator and keeps the points inside
  (rejection, in rounds); ``sobol``/``halton``/``lhs`` draw the box by that method and reject,
  so their low discrepancy holds only approximately inside the domain.
- **reflect** leaves inside points untouched and, for the others, in turn: mirrors the point
  across its nearest boundary point (x' = 2p - x, the geometric reflection for a single
  excursion); else folds it into the bounding box (the triangle wave of :class:`Box`) and, if
  still outside, mirrors that; else steps 1e-6 diameters inside from the nearest boundary point
  along the inward normal (concave corners); else, still outside (never seen, but guaranteed),
  redraws it uniformly inside from ``generator`` (or, without one, takes a fixed interior point
  of the domain). Each stage's result is kept only where ``contains`` accepts it in ``x``'s
  dtype, so no point is ever returned outside.

Bad input is a one-line ValueError naming the value and what is allowed: a non-positive
rectangle size or disk radius, non-finite coordinates, fewer than 3 polygon vertices, a polygon
that is not simple (shapely's ``is_valid``, with its reason), two pieces with one name, an empty
result (an intersection of disjoint pieces, a difference that removes everything), and a hole
that removes nothing. The rule for ``a - b``: ``b`` must overlap ``a`` by a positive area; it
may reach ``a``'s boundary or beyond (a notch, as the L-shape's), but one lying outside ``a``
or only touching it is refused, as is a piece shared with nothing in an intersection.

shapely (``pip install "glfpinn[geometry]"``) is needed for polygons only, to check that the
vertices make a simple polygon; it is imported when a :class:`Polygon` is built, never with
this module. Rectangles and disks need nothing beyond torch.

How the older domains relate:

- :class:`~glfpinn.domains.Box` in 2-D is ``Rectangle(lo, hi)`` in ``contains``, boundary and
  distance; its ``reflect`` (a per-coordinate fold) equals the mirror here for single
  excursions. Box stays as it is (any dimension, exact QMC sampling without rejection).
- :class:`~glfpinn.domains.LShape` is ``Rectangle((-1, -1), (1, 1)) - Rectangle((0, -1), (1,
  0))``: same area, bounds, boundary (six edges, length 8) and ``contains`` off the
  measure-zero edges above (checked by tests/test_geometry.py). LShape keeps its own sampler
  and reflection, so default runs draw exactly what they drew before.
- :class:`~glfpinn.domains.Region` is not a special case and cannot be one: it knows only a
  bounding box and an inside test, so it has no boundary to sample, measure or reflect on. It
  stays the adapter for such geometries (DeepXDE's non-box ones); a shape here is what to use
  when the geometry is made of rectangles, disks and polygons.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from glfpinn.domains import SAMPLING_METHODS, Domain, _fold, _unit_cube

__all__ = [
    "Shape",
    "Rectangle",
    "Disk",
    "Polygon",
    "CSGDomain",
    "union",
    "difference",
    "intersection",
]

_TWO_PI = 2.0 * math.pi
#: Side-test offset from a sub-curve's midpoint, relative to the diameter.
_SIDE_STEP = 1e-6
#: Inward step of reflect's third stage, relative to the diameter.
_NUDGE = 1e-6
#: Points x sub-curves handled at once in the distance computations.
_CHUNK = 1 << 22
#: Rejection rounds before sampling gives up.
_MAX_ROUNDS = 200
_INSTALL = 'pip install "glfpinn[geometry]"'


def _fmt(values) -> str:
    return "[" + ", ".join(f"{float(v):g}" for v in values) + "]"


def _pair(value, what: str, owner: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{owner}: {what}={value!r} must be two finite numbers") from None
    if arr.shape != (2,) or not np.isfinite(arr).all():
        raise ValueError(f"{owner}: {what}={value!r} must be two finite numbers")
    return arr


# --------------------------------------------------------------------------------------------
# Distances to segments and arcs, vectorised over points x curves (float64 torch)
# --------------------------------------------------------------------------------------------


class _Curves:
    """Segments (A -> B) and arcs (centre C, radius R, angles T0 -> T1 counter-clockwise), each
    with an orientation sign (+1: the domain lies on the left, so the outward normal is the
    curve's right-hand side) and the index of the piece it belongs to."""

    def __init__(self, seg_a, seg_b, seg_sign, seg_piece, arc_c, arc_r, arc_t0, arc_t1, arc_sign,
                 arc_piece) -> None:  # fmt: skip
        f64 = torch.float64
        self.seg_a = torch.as_tensor(np.asarray(seg_a, dtype=np.float64).reshape(-1, 2), dtype=f64)
        self.seg_b = torch.as_tensor(np.asarray(seg_b, dtype=np.float64).reshape(-1, 2), dtype=f64)
        self.seg_sign = torch.as_tensor(np.asarray(seg_sign, dtype=np.float64), dtype=f64)
        self.seg_piece = torch.as_tensor(np.asarray(seg_piece, dtype=np.int64), dtype=torch.long)
        self.arc_c = torch.as_tensor(np.asarray(arc_c, dtype=np.float64).reshape(-1, 2), dtype=f64)
        self.arc_r = torch.as_tensor(np.asarray(arc_r, dtype=np.float64), dtype=f64)
        self.arc_t0 = torch.as_tensor(np.asarray(arc_t0, dtype=np.float64), dtype=f64)
        self.arc_t1 = torch.as_tensor(np.asarray(arc_t1, dtype=np.float64), dtype=f64)
        self.arc_sign = torch.as_tensor(np.asarray(arc_sign, dtype=np.float64), dtype=f64)
        self.arc_piece = torch.as_tensor(np.asarray(arc_piece, dtype=np.int64), dtype=torch.long)
        self._on: dict[torch.device, _Curves] = {}

    @property
    def n_seg(self) -> int:
        return int(self.seg_a.shape[0])

    @property
    def n_arc(self) -> int:
        return int(self.arc_c.shape[0])

    def to(self, device: torch.device) -> _Curves:
        if device.type == "cpu":
            return self
        if device not in self._on:
            moved = _Curves.__new__(_Curves)
            for key, value in vars(self).items():
                if isinstance(value, Tensor):
                    setattr(moved, key, value.to(device))
            moved._on = {}
            self._on[device] = moved
        return self._on[device]

    def lengths(self) -> Tensor:
        seg = torch.linalg.vector_norm(self.seg_b - self.seg_a, dim=1)
        arc = self.arc_r * (self.arc_t1 - self.arc_t0)
        return torch.cat([seg, arc])

    def pieces(self) -> Tensor:
        return torch.cat([self.seg_piece, self.arc_piece])

    def signed_area(self) -> float:
        """Green's theorem: 1/2 of the integral of x dy - y dx along the oriented curves."""
        a, b = self.seg_a, self.seg_b
        seg = 0.5 * (a[:, 0] * b[:, 1] - b[:, 0] * a[:, 1])
        c, r, t0, t1 = self.arc_c, self.arc_r, self.arc_t0, self.arc_t1
        arc = 0.5 * (
            r * c[:, 0] * (torch.sin(t1) - torch.sin(t0))
            - r * c[:, 1] * (torch.cos(t1) - torch.cos(t0))
            + r * r * (t1 - t0)
        )
        return float((seg * self.seg_sign).sum() + (arc * self.arc_sign).sum())

    def point_at(self, index: Tensor, s: Tensor) -> Tensor:
        """The point at fraction ``s`` in [0, 1] along curve ``index`` (segments first)."""
        ns = self.n_seg
        out = torch.empty(index.shape[0], 2, dtype=torch.float64, device=index.device)
        is_seg = index < ns
        if bool(is_seg.any()):
            i, t = index[is_seg], s[is_seg, None]
            out[is_seg] = self.seg_a[i] + t * (self.seg_b[i] - self.seg_a[i])
        if bool((~is_seg).any()):
            j = index[~is_seg] - ns
            theta = self.arc_t0[j] + s[~is_seg] * (self.arc_t1[j] - self.arc_t0[j])
            unit = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
            out[~is_seg] = self.arc_c[j] + self.arc_r[j, None] * unit
        return out

    def normal_at(self, index: Tensor, s: Tensor) -> Tensor:
        """The outward normal (orientation sign included) at fraction ``s`` along a curve."""
        ns = self.n_seg
        out = torch.empty(index.shape[0], 2, dtype=torch.float64, device=index.device)
        is_seg = index < ns
        if bool(is_seg.any()):
            i = index[is_seg]
            d = self.seg_b[i] - self.seg_a[i]
            n = torch.stack([d[:, 1], -d[:, 0]], dim=1)
            n = n / torch.linalg.vector_norm(n, dim=1, keepdim=True)
            out[is_seg] = n * self.seg_sign[i, None]
        if bool((~is_seg).any()):
            j = index[~is_seg] - ns
            theta = self.arc_t0[j] + s[~is_seg] * (self.arc_t1[j] - self.arc_t0[j])
            unit = torch.stack([torch.cos(theta), torch.sin(theta)], dim=1)
            out[~is_seg] = unit * self.arc_sign[j, None]
        return out

    def _nearest_block(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """Distances (n, m), nearest points (n, m, 2) and outward normals there (n, m, 2)."""
        n = x.shape[0]
        dists, points, normals = [], [], []
        if self.n_seg:
            a, b = self.seg_a, self.seg_b
            d = b - a
            len2 = (d * d).sum(dim=1)
            t = (((x[:, None, :] - a[None]) * d[None]).sum(dim=2) / len2).clamp(0.0, 1.0)
            p = a[None] + t[..., None] * d[None]
            nrm = torch.stack([d[:, 1], -d[:, 0]], dim=1) / len2.sqrt()[:, None]
            dists.append(torch.linalg.vector_norm(x[:, None, :] - p, dim=2))
            points.append(p)
            normals.append((nrm * self.seg_sign[:, None]).expand(n, -1, -1))
        if self.n_arc:
            c, r, t0, t1 = self.arc_c, self.arc_r, self.arc_t0, self.arc_t1
            v = x[:, None, :] - c[None]
            rho = torch.linalg.vector_norm(v, dim=2)
            phi = torch.atan2(v[..., 1], v[..., 0])
            span = t1 - t0
            rel = torch.remainder(phi - t0[None], _TWO_PI)
            within = rel <= span[None]
            # off the arc: the nearer end
            e0 = c + r[:, None] * torch.stack([torch.cos(t0), torch.sin(t0)], dim=1)
            e1 = c + r[:, None] * torch.stack([torch.cos(t1), torch.sin(t1)], dim=1)
            d0 = torch.linalg.vector_norm(x[:, None, :] - e0[None], dim=2)
            d1 = torch.linalg.vector_norm(x[:, None, :] - e1[None], dim=2)
            theta = torch.where(
                within, phi, torch.where(d0 <= d1, t0[None].expand_as(phi), t1[None].expand_as(phi))
            )
            theta = torch.where(rho > 0, theta, t0[None].expand_as(phi))  # the centre: any
            unit = torch.stack([torch.cos(theta), torch.sin(theta)], dim=2)
            p = c[None] + r[None, :, None] * unit
            dists.append(torch.linalg.vector_norm(x[:, None, :] - p, dim=2))
            points.append(p)
            normals.append(unit * self.arc_sign[None, :, None])
        return torch.cat(dists, dim=1), torch.cat(points, dim=1), torch.cat(normals, dim=1)

    def distances(self, x: Tensor) -> Tensor:
        """(n, m) distances from each point to each curve."""
        m = max(self.n_seg + self.n_arc, 1)
        step = max(1, _CHUNK // m)
        return torch.cat([self._nearest_block(x[i : i + step])[0] for i in range(0, len(x), step)])

    def nearest(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """Per point: the distance, the nearest point, the outward normal there, its piece."""
        m = max(self.n_seg + self.n_arc, 1)
        step = max(1, _CHUNK // m)
        pieces = self.pieces()
        out_d, out_p, out_n, out_k = [], [], [], []
        for i in range(0, len(x), step):
            d, p, nrm = self._nearest_block(x[i : i + step])
            k = d.argmin(dim=1)
            rows = torch.arange(k.shape[0], device=x.device)
            out_d.append(d[rows, k])
            out_p.append(p[rows, k])
            out_n.append(nrm[rows, k])
            out_k.append(pieces[k])
        if not out_d:
            empty = x.new_zeros((0,))
            return empty, x.new_zeros((0, 2)), x.new_zeros((0, 2)), empty.long()
        return torch.cat(out_d), torch.cat(out_p), torch.cat(out_n), torch.cat(out_k)


# --------------------------------------------------------------------------------------------
# Splitting curves where they meet (numpy, at construction)
# --------------------------------------------------------------------------------------------


def _cross(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    return u[..., 0] * v[..., 1] - u[..., 1] * v[..., 0]


def _split_parameters(
    seg_a: np.ndarray, seg_b: np.ndarray, circ_c: np.ndarray, circ_r: np.ndarray, scale: float
) -> tuple[list[list[float]], list[list[float]]]:
    """Where each segment (fraction t in (0, 1)) and each circle (angle in (0, 2 pi)) meets
    another curve: crossings, touchings and the ends of collinear overlaps."""
    ms, mc = len(seg_a), len(circ_c)
    seg_t: list[list[float]] = [[] for _ in range(ms)]
    circ_t: list[list[float]] = [[] for _ in range(mc)]
    tau = 1e-12
    tol = 1e-12 * scale

    def add_angle(j: int, point: np.ndarray) -> None:
        ang = math.atan2(point[1] - circ_c[j, 1], point[0] - circ_c[j, 0]) % _TWO_PI
        if tau < ang < _TWO_PI - tau:
            circ_t[j].append(ang)

    if ms:
        d = seg_b - seg_a  # (ms, 2)
        len2 = (d * d).sum(axis=1)
        # segment i against segment j
        w = seg_a[None, :, :] - seg_a[:, None, :]  # A_j - A_i, (i, j, 2)
        cr = _cross(d[:, None, :], d[None, :, :])  # d_i x d_j
        with np.errstate(divide="ignore", invalid="ignore"):
            t = _cross(w, d[None, :, :]) / cr
            s = _cross(w, d[:, None, :]) / cr
        scale_ij = np.sqrt(len2[:, None] * len2[None, :])
        crossing = (np.abs(cr) > 1e-12 * scale_ij) & (s >= -tau) & (s <= 1 + tau)
        crossing &= (t > tau) & (t < 1 - tau)
        np.fill_diagonal(crossing, False)
        for i, j in zip(*np.nonzero(crossing)):
            seg_t[i].append(float(t[i, j]))
        # collinear overlaps: the other segment's ends, projected
        off_line = np.abs(_cross(w, d[:, None, :])) / np.sqrt(len2)[:, None]
        collinear = (np.abs(cr) <= 1e-12 * scale_ij) & (off_line <= tol)
        np.fill_diagonal(collinear, False)
        for i, j in zip(*np.nonzero(collinear)):
            for end in (seg_a[j], seg_b[j]):
                tt = float(np.dot(end - seg_a[i], d[i]) / len2[i])
                if tau < tt < 1 - tau:
                    seg_t[i].append(tt)
        # segment i against circle j
        for j in range(mc):
            f = seg_a - circ_c[j]
            a = len2
            b = 2 * (f * d).sum(axis=1)
            c = (f * f).sum(axis=1) - circ_r[j] ** 2
            disc = b * b - 4 * a * c
            near = disc >= -1e-12 * (b * b + 4 * np.abs(a * c))
            for i in np.nonzero(near)[0]:
                sq = math.sqrt(max(float(disc[i]), 0.0))
                for root in {(-b[i] - sq) / (2 * a[i]), (-b[i] + sq) / (2 * a[i])}:
                    if -tau <= root <= 1 + tau:
                        if tau < root < 1 - tau:
                            seg_t[i].append(float(root))
                        add_angle(j, seg_a[i] + root * d[i])
    # circle i against circle j
    for i in range(mc):
        for j in range(mc):
            if i == j:
                continue
            dvec = circ_c[j] - circ_c[i]
            dist = float(np.hypot(*dvec))
            ri, rj = float(circ_r[i]), float(circ_r[j])
            if dist <= tol or dist > ri + rj + tol or dist < abs(ri - rj) - tol:
                continue
            a = (ri * ri - rj * rj + dist * dist) / (2 * dist)
            h = math.sqrt(max(ri * ri - a * a, 0.0))
            base = circ_c[i] + a * dvec / dist
            perp = np.array([-dvec[1], dvec[0]]) / dist
            for sign in (1.0, -1.0):
                add_angle(i, base + sign * h * perp)
    return seg_t, circ_t


# --------------------------------------------------------------------------------------------
# Shapes
# --------------------------------------------------------------------------------------------


class Shape(Domain):
    """A 2-D domain made of rectangles, disks and polygons (see the module): a primitive or a
    union, difference or intersection of shapes (``|``, ``-``, ``&``)."""

    dim = 2

    # -- the tree -------------------------------------------------------------------------

    def _sd(self, x: Tensor) -> Tensor:
        """A signed function of float64 points, < 0 inside, > 0 outside, 0 on the boundary
        (the exact signed distance for a primitive; min/max combinations for a composite)."""
        raise NotImplementedError

    def _leaves(self) -> list[Primitive]:
        raise NotImplementedError

    # -- operators ------------------------------------------------------------------------

    def __or__(self, other: object) -> CSGDomain:
        if not isinstance(other, Shape):
            return NotImplemented
        return union(self, other)

    def __sub__(self, other: object) -> CSGDomain:
        if not isinstance(other, Shape):
            return NotImplemented
        return difference(self, other)

    def __and__(self, other: object) -> CSGDomain:
        if not isinstance(other, Shape):
            return NotImplemented
        return intersection(self, other)

    # -- the boundary, computed once ------------------------------------------------------

    @property
    def boundary_pieces(self) -> tuple[str, ...]:
        """The pieces' names, in expression order: ``tags`` index into this tuple."""
        return self._built()[0]

    def _built(self):
        cached = self.__dict__.get("_cache")
        if cached is None:
            cached = self._build()
            self.__dict__["_cache"] = cached
        return cached

    def _build(self):
        leaves = self._leaves()
        names: list[str] = []
        counts: dict[str, int] = {}
        first: list[int] = []  # each leaf's first piece: an edge-named leaf has one per edge
        for leaf in leaves:
            if leaf.edges is not None:
                own = list(leaf.edges)
            elif leaf.name is not None:
                own = [leaf.name]
            else:
                own = [f"{leaf.kind}{counts.get(leaf.kind, 0)}"]
                counts[leaf.kind] = counts.get(leaf.kind, 0) + 1
            first.append(len(names))
            for name in own:
                if name in names:
                    raise ValueError(
                        f"{self!r}: two pieces are named {name!r}; allowed: distinct names"
                    )
                names.append(name)
        # every piece's curves, in piece order
        seg_a, seg_b, seg_piece, circ_c, circ_r, circ_piece = [], [], [], [], [], []
        for k, leaf in enumerate(leaves):
            segs, circles = leaf._curves()
            for i, (a, b) in enumerate(segs):
                seg_a.append(a), seg_b.append(b)
                seg_piece.append(first[k] + (i if leaf.edges is not None else 0))
            for c, r in circles:
                circ_c.append(c), circ_r.append(r), circ_piece.append(first[k])
        seg_a_np = np.asarray(seg_a, dtype=np.float64).reshape(-1, 2)
        seg_b_np = np.asarray(seg_b, dtype=np.float64).reshape(-1, 2)
        circ_c_np = np.asarray(circ_c, dtype=np.float64).reshape(-1, 2)
        circ_r_np = np.asarray(circ_r, dtype=np.float64)
        lo = np.min([leaf._box()[0] for leaf in leaves], axis=0)
        hi = np.max([leaf._box()[1] for leaf in leaves], axis=0)
        scale = float(np.hypot(*(hi - lo)))
        seg_t, circ_t = _split_parameters(seg_a_np, seg_b_np, circ_c_np, circ_r_np, scale)

        # sub-curves: (kind, source curve, start, end)
        sub_seg_a, sub_seg_b, sub_seg_src, sub_arc_src, sub_arc_t = [], [], [], [], []
        tiny = 1e-12 * scale
        for i in range(len(seg_a_np)):
            ts = np.unique(np.clip([0.0, 1.0, *seg_t[i]], 0.0, 1.0))
            d = seg_b_np[i] - seg_a_np[i]
            for t0, t1 in zip(ts[:-1], ts[1:]):
                if (t1 - t0) * np.hypot(*d) > tiny:
                    sub_seg_a.append(seg_a_np[i] + t0 * d)
                    sub_seg_b.append(seg_a_np[i] + t1 * d)
                    sub_seg_src.append(i)
        for j in range(len(circ_c_np)):
            ts = np.unique([0.0, _TWO_PI, *circ_t[j]])
            for t0, t1 in zip(ts[:-1], ts[1:]):
                if (t1 - t0) * circ_r_np[j] > tiny:
                    sub_arc_src.append(j)
                    sub_arc_t.append((t0, t1))
        n_s = len(sub_seg_src)
        subs = _Curves(
            sub_seg_a,
            sub_seg_b,
            np.ones(n_s),
            [seg_piece[i] for i in sub_seg_src],
            [circ_c_np[j] for j in sub_arc_src],
            [circ_r_np[j] for j in sub_arc_src],
            [t[0] for t in sub_arc_t],
            [t[1] for t in sub_arc_t],
            np.ones(len(sub_arc_src)),
            [circ_piece[j] for j in sub_arc_src],
        )
        # side test at each sub-curve's midpoint
        lengths = subs.lengths()
        index = torch.arange(lengths.shape[0])
        half = torch.full_like(lengths, 0.5)
        mid = subs.point_at(index, half)
        normal = subs.normal_at(index, half)  # the piece's own outward normal
        step = torch.clamp(0.1 * lengths, max=_SIDE_STEP * scale)[:, None]
        inner = self._sd(mid - step * normal) < 0
        outer = self._sd(mid + step * normal) < 0
        keep = inner != outer
        # a sub-curve lying on an earlier piece's curve counts for that piece only
        full = _Curves(
            seg_a_np,
            seg_b_np,
            np.ones(len(seg_a_np)),
            seg_piece,
            circ_c_np,
            circ_r_np,
            np.zeros(len(circ_c_np)),
            np.full(len(circ_c_np), _TWO_PI),
            np.ones(len(circ_c_np)),
            circ_piece,
        )
        if bool(keep.any()) and len(names) > 1:
            dist = full.distances(mid)  # (subs, full curves)
            own = subs.pieces()
            earlier = full.pieces()[None, :] < own[:, None]
            shared = ((dist <= 1e-9 * scale) & earlier).any(dim=1)
            keep &= ~shared
        sign = torch.where(inner, 1.0, -1.0).to(torch.float64)  # +1: inside on the inner side
        ks, ka = keep[:n_s], keep[n_s:]
        boundary = _Curves(
            subs.seg_a[ks],
            subs.seg_b[ks],
            sign[:n_s][ks],
            subs.seg_piece[ks],
            subs.arc_c[ka],
            subs.arc_r[ka],
            subs.arc_t0[ka],
            subs.arc_t1[ka],
            sign[n_s:][ka],
            subs.arc_piece[ka],
        )
        area = boundary.signed_area()
        blen = boundary.lengths()
        per_piece = torch.zeros(len(names), dtype=torch.float64)
        per_piece.index_add_(0, boundary.pieces(), blen)
        # the exact bounding box of the boundary
        pts = [boundary.seg_a, boundary.seg_b]
        if boundary.n_arc:
            c, r, t0, t1 = boundary.arc_c, boundary.arc_r, boundary.arc_t0, boundary.arc_t1
            pts.append(c + r[:, None] * torch.stack([torch.cos(t0), torch.sin(t0)], 1))
            pts.append(c + r[:, None] * torch.stack([torch.cos(t1), torch.sin(t1)], 1))
            for q in range(4):  # the axis extremes the arcs pass through
                ang = q * math.pi / 2
                rel = (ang - t0) % _TWO_PI
                on = rel <= (t1 - t0)
                ext = c + r[:, None] * torch.tensor([math.cos(ang), math.sin(ang)]).round()
                pts.append(ext[on])
        allp = torch.cat([p.reshape(-1, 2) for p in pts])
        if allp.shape[0]:
            box = (allp.min(dim=0).values, allp.max(dim=0).values)
        else:
            box = (torch.zeros(2, dtype=torch.float64), torch.zeros(2, dtype=torch.float64))
        return tuple(names), boundary, area, per_piece, box

    # -- Domain ---------------------------------------------------------------------------

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        lo, hi = self._built()[4]
        return lo.clone(), hi.clone()

    @property
    def volume(self) -> float:
        """The exact area (Green's theorem over the boundary's segments and arcs)."""
        return float(self._built()[2])

    @property
    def area(self) -> float:
        return self.volume

    @property
    def boundary_length(self) -> float:
        return float(self._built()[3].sum())

    @property
    def boundary_lengths(self) -> dict[str, float]:
        """Each piece's length on the composite's boundary (0 for a piece wholly inside)."""
        names, _, _, per_piece, _ = self._built()
        return {name: float(v) for name, v in zip(names, per_piece)}

    def _scale(self) -> float:
        lo, hi = self._built()[4]
        return max(float(lo.abs().max()), float(hi.abs().max()), self.diameter)

    def _tol(self, dtype: torch.dtype) -> float:
        return 16 * torch.finfo(dtype).eps * self._scale()

    def contains(self, x: Tensor) -> Tensor:
        return self._sd(x.detach().to(torch.float64)) <= self._tol(x.dtype)

    def distance_to_boundary(self, x: Tensor) -> Tensor:
        """The exact distance (n,) from each point to the boundary, in ``x``'s dtype."""
        d = self._boundary().to(x.device).nearest(x.detach().to(torch.float64))[0]
        return d.to(x.dtype)

    def signed_distance(self, x: Tensor) -> Tensor:
        """``distance_to_boundary``, negative inside (exact)."""
        x64 = x.detach().to(torch.float64)
        d = self._boundary().to(x.device).nearest(x64)[0]
        return torch.where(self._sd(x64) < 0, -d, d).to(x.dtype)

    def outward_normal(self, x: Tensor) -> Tensor:
        """The unit outward normal (n, 2) at each point's nearest boundary point (at a corner,
        that of one of its two curves)."""
        n = self._boundary().to(x.device).nearest(x.detach().to(torch.float64))[2]
        return n.to(x.dtype)

    def _boundary(self) -> _Curves:
        return self._built()[1]

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        if method not in SAMPLING_METHODS:
            raise ValueError(
                f"method={method!r} is unknown; allowed: {', '.join(SAMPLING_METHODS)}"
            )
        lo, hi = (b.to(dtype) for b in self._built()[4])
        accept = max(self.volume / float(torch.prod(hi - lo)), 1e-3)
        parts, found = [], 0
        for _ in range(_MAX_ROUNDS):
            if found >= n:
                break
            m = int(math.ceil(1.2 * (n - found) / accept)) + 64
            u = _unit_cube(m, 2, method, generator, dtype)
            cand = lo.to(u.device) + (hi - lo).to(u.device) * u
            keep = cand[self.contains(cand)]
            parts.append(keep)
            found += keep.shape[0]
        if found < n:  # pragma: no cover - a positive area is checked at construction
            raise ValueError(f"{self!r}: rejection sampling found {found} of {n} points")
        if not parts:
            return torch.empty(0, 2, dtype=dtype, device=generator.device)
        return torch.cat(parts)[:n]

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        """``n`` points uniform in arc length over the whole boundary (untagged)."""
        return self.sample_boundary_tagged(n, generator, dtype=dtype)[0]

    def sample_boundary_tagged(
        self,
        n: int,
        generator: torch.Generator,
        *,
        dtype: torch.dtype = torch.float32,
        pieces: str | Sequence[str] | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``n`` boundary points, uniform in arc length, and their pieces' indices into
        ``boundary_pieces`` (a LongTensor (n,)). ``pieces`` (a name or names) restricts the
        draw to those pieces' parts of the boundary."""
        names, curves, _, per_piece, _ = self._built()
        dev = generator.device
        curves = curves.to(dev)
        weights = curves.lengths()
        if pieces is not None:
            wanted = [pieces] if isinstance(pieces, str) else list(pieces)
            unknown = [p for p in wanted if p not in names]
            if unknown or not wanted:
                raise ValueError(
                    f"pieces={pieces!r}: unknown or none; allowed: names among {list(names)}"
                )
            idx = torch.tensor([names.index(p) for p in wanted], device=dev)
            weights = weights * torch.isin(curves.pieces(), idx)
            if float(weights.sum()) <= 0:
                raise ValueError(
                    f"pieces={pieces!r} have no length on the boundary of {self!r} "
                    f"(lengths: {self.boundary_lengths}); allowed: pieces on the boundary"
                )
        which = torch.multinomial(weights / weights.sum(), n, replacement=True, generator=generator)
        s = torch.rand(n, generator=generator, device=dev, dtype=torch.float64)
        points = curves.point_at(which, s)
        return points.to(dtype), curves.pieces()[which]

    def reflect(self, x, generator=None):
        inside = self.contains(x)
        if bool(inside.all()):
            return x
        dtype = x.dtype
        curves = self._boundary().to(x.device)
        lo, hi = (b.to(x.device) for b in self._built()[4])
        out = x.clone()
        todo = torch.nonzero(~inside).flatten()
        x64 = x[todo].detach().to(torch.float64)
        _, p, normal, _ = curves.nearest(x64)
        y = torch.empty_like(x64)
        done = torch.zeros(len(todo), dtype=torch.bool, device=x.device)

        def take(candidate: Tensor, rows: Tensor) -> None:
            ok = self.contains(candidate.to(dtype))
            y[rows[ok]] = candidate[ok]
            done[rows[ok]] = True

        # 1. the mirror image across the nearest boundary point
        take(2 * p - x64, torch.arange(len(todo), device=x.device))
        # 2. large excursions: fold into the bounding box, then mirror what is still outside
        rest = torch.nonzero(~done).flatten()
        if len(rest):
            f = _fold(x64[rest], lo, hi)
            f_in = self.contains(f.to(dtype))
            if bool((~f_in).any()):
                pf = curves.nearest(f[~f_in])[1]
                f[~f_in] = 2 * pf - f[~f_in]
            take(f, rest)
        # 3. a step inside from the nearest boundary point (concave corners)
        rest = torch.nonzero(~done).flatten()
        if len(rest):
            step = max(_NUDGE * self.diameter, 64 * torch.finfo(dtype).eps * self._scale())
            take(p[rest] - step * normal[rest], rest)
        # 4. a redraw inside: guaranteed
        rest = torch.nonzero(~done).flatten()
        if len(rest):
            if generator is not None:
                y[rest] = self.sample(len(rest), generator, dtype=torch.float64).to(x.device)
            else:
                y[rest] = self._anchor(dtype).to(x.device)
        out[todo] = y.to(dtype)
        return out

    def _anchor(self, dtype: torch.dtype) -> Tensor:
        """A fixed interior point: the deepest of 256 fixed-seed draws."""
        gen = torch.Generator().manual_seed(0)
        cand = self.sample(256, gen, dtype=torch.float64)
        depth = -self.signed_distance(cand)
        best = cand[depth.argmax()]
        return best if bool(self.contains(best[None].to(dtype))) else cand[0]

    def _check_nonempty(self, what: str) -> None:
        if not self.volume > 1e-12 * self._leaf_scale() ** 2:
            raise ValueError(
                f"{what} is empty (area {self.volume:.3g}); allowed: a non-empty result"
            )

    def _leaf_scale(self) -> float:
        leaves = self._leaves()
        lo = np.min([leaf._box()[0] for leaf in leaves], axis=0)
        hi = np.max([leaf._box()[1] for leaf in leaves], axis=0)
        return float(np.hypot(*(hi - lo)))


class Primitive(Shape):
    """A rectangle, disk or polygon: one boundary piece."""

    kind: str = "piece"
    name: str | None = None
    #: one name per edge (counter-clockwise), making each edge its own piece; None: one piece
    edges: tuple[str, ...] | None = None

    def _leaves(self) -> list[Primitive]:
        return [self]

    def _curves(self) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[tuple[np.ndarray, float]]]:
        """Its boundary: counter-clockwise segments (start, end) and circles (centre, radius)."""
        raise NotImplementedError

    def _box(self) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _name_repr(self) -> str:
        if self.edges is not None:
            return f", edges={self.edges!r}"
        return "" if self.name is None else f", name={self.name!r}"


def _check_name(name, owner: str) -> str | None:
    if name is not None and (not isinstance(name, str) or not name):
        raise ValueError(f"{owner}: name={name!r} must be a non-empty string or None")
    return name


def _check_edges(edges, count: int, name, owner: str) -> tuple[str, ...] | None:
    """``edges`` as a tuple of ``count`` distinct non-empty names, or None."""
    if edges is None:
        return None
    if name is not None:
        raise ValueError(f"{owner}: give name={name!r} or edges, not both")
    if isinstance(edges, str) or not isinstance(edges, Sequence):
        raise ValueError(f"{owner}: edges={edges!r} must be a sequence of {count} names")
    names = tuple(edges)
    if (
        len(names) != count
        or not all(isinstance(e, str) and e for e in names)
        or len(set(names)) != count
    ):
        raise ValueError(
            f"{owner}: edges={edges!r}; allowed: {count} distinct non-empty names, one per edge"
        )
    return names


class Rectangle(Primitive):
    """The closed axis-aligned rectangle [lo_x, hi_x] x [lo_y, hi_y]: one boundary piece named
    ``name``, or with ``edges`` four, named in the order bottom, right, top, left (e.g.
    ``edges=("wall_bottom", "wall_right", "lid", "wall_left")``)."""

    kind = "rectangle"

    def __init__(
        self,
        lo: Sequence[float],
        hi: Sequence[float],
        *,
        name: str | None = None,
        edges: Sequence[str] | None = None,
    ):
        owner = f"Rectangle(lo={lo!r}, hi={hi!r})"
        self.lo = _pair(lo, "lo", owner)
        self.hi = _pair(hi, "hi", owner)
        size = self.hi - self.lo
        if not (size > 0).all():
            raise ValueError(
                f"{owner}: the size {_fmt(size)} must be > 0 in both coordinates (hi above lo)"
            )
        self.name = _check_name(name, owner)
        self.edges = _check_edges(edges, 4, name, owner)

    def __repr__(self) -> str:
        return f"Rectangle(lo={_fmt(self.lo)}, hi={_fmt(self.hi)}{self._name_repr()})"

    def _box(self):
        return self.lo, self.hi

    def _curves(self):
        (x0, y0), (x1, y1) = self.lo, self.hi
        corners = [np.array(c) for c in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))]
        return [(corners[i], corners[(i + 1) % 4]) for i in range(4)], []

    def _sd(self, x: Tensor) -> Tensor:
        lo = torch.as_tensor(self.lo, dtype=x.dtype, device=x.device)
        hi = torch.as_tensor(self.hi, dtype=x.dtype, device=x.device)
        centre, half = (lo + hi) / 2, (hi - lo) / 2
        q = (x - centre).abs() - half
        outside = torch.linalg.vector_norm(q.clamp_min(0.0), dim=1)
        return outside + q.max(dim=1).values.clamp_max(0.0)


class Disk(Primitive):
    """The closed disk of ``radius`` around ``center``."""

    kind = "disk"

    def __init__(self, center: Sequence[float], radius: float, *, name: str | None = None):
        owner = f"Disk(center={center!r}, radius={radius!r})"
        self.center = _pair(center, "center", owner)
        try:
            r = float(radius)
        except (TypeError, ValueError):
            r = float("nan")
        if not (math.isfinite(r) and r > 0):
            raise ValueError(f"{owner}: radius={radius!r} must be a finite number > 0")
        self.radius = r
        self.name = _check_name(name, owner)

    def __repr__(self) -> str:
        return f"Disk(center={_fmt(self.center)}, radius={self.radius:g}{self._name_repr()})"

    def _box(self):
        return self.center - self.radius, self.center + self.radius

    def _curves(self):
        return [], [(self.center, self.radius)]

    def _sd(self, x: Tensor) -> Tensor:
        c = torch.as_tensor(self.center, dtype=x.dtype, device=x.device)
        return torch.linalg.vector_norm(x - c, dim=1) - self.radius


class Polygon(Primitive):
    """The closed simple polygon through ``vertices`` (k >= 3 points, either orientation; a
    closing copy of the first vertex is dropped). Needs shapely, to check it is simple. One
    boundary piece named ``name``, or with ``edges`` k, edge i running from vertex i to vertex
    i + 1 (the last back to the first)."""

    kind = "polygon"

    def __init__(
        self,
        vertices: Sequence[Sequence[float]],
        *,
        name: str | None = None,
        edges: Sequence[str] | None = None,
    ):
        try:
            v = np.asarray(vertices, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(
                f"Polygon vertices={vertices!r} must be a (k, 2) array of finite numbers"
            ) from None
        shown = np.array2string(v, separator=", ", threshold=20).replace("\n", "")
        if v.ndim != 2 or v.shape[1:] != (2,) or not np.isfinite(v).all():
            raise ValueError(f"Polygon vertices={shown} must be a (k, 2) array of finite numbers")
        if len(v) > 1 and np.array_equal(v[0], v[-1]):
            v = v[:-1]
        if len(v) < 3:
            raise ValueError(f"Polygon vertices={shown}: {len(v)} vertices; allowed: at least 3")
        try:
            import shapely
            from shapely.validation import explain_validity
        except ImportError:  # pragma: no cover - depends on the environment
            raise ImportError(f"Polygon needs shapely: {_INSTALL}") from None
        poly = shapely.Polygon(v)
        if not (poly.is_valid and poly.exterior.is_simple) or poly.area <= 0:
            why = explain_validity(poly) if not poly.is_valid else "zero area"
            raise ValueError(
                f"Polygon vertices={shown} are not a simple polygon ({why}); allowed: edges that "
                "meet only at consecutive vertices, enclosing a positive area"
            )
        owner = f"Polygon(vertices={shown})"
        self.name = _check_name(name, owner)
        self.edges = _check_edges(edges, len(v), name, owner)
        if not poly.exterior.is_ccw:
            v = v[::-1].copy()
            if self.edges is not None:  # reversed, edge j runs along the user's edge k - 2 - j
                k = len(v)
                self.edges = tuple(self.edges[(k - 2 - j) % k] for j in range(k))
        self.vertices = v

    def __repr__(self) -> str:
        shown = np.array2string(self.vertices, separator=", ", threshold=20).replace("\n", "")
        return f"Polygon({shown}{self._name_repr()})"

    def _box(self):
        return self.vertices.min(axis=0), self.vertices.max(axis=0)

    def _curves(self):
        v = self.vertices
        return [(v[i], v[(i + 1) % len(v)]) for i in range(len(v))], []

    def _sd(self, x: Tensor) -> Tensor:
        a = torch.as_tensor(self.vertices, dtype=x.dtype, device=x.device)
        b = torch.roll(a, -1, dims=0)
        d = b - a
        len2 = (d * d).sum(dim=1)
        step = max(1, _CHUNK // len(a))
        out = []
        for i in range(0, len(x), step):
            xi = x[i : i + step]
            w = xi[:, None, :] - a[None]
            t = ((w * d[None]).sum(dim=2) / len2).clamp(0.0, 1.0)
            dist = torch.linalg.vector_norm(w - t[..., None] * d[None], dim=2).min(dim=1).values
            # even-odd: crossings of the horizontal ray to the right
            ay, by = a[None, :, 1], b[None, :, 1]
            straddle = (ay > xi[:, None, 1]) != (by > xi[:, None, 1])
            dy = torch.where(straddle, by - ay, torch.ones_like(by - ay))
            xcross = a[None, :, 0] + (xi[:, None, 1] - ay) * (d[None, :, 0] / dy)
            inside = ((straddle & (xi[:, None, 0] < xcross)).sum(dim=1) % 2) == 1
            out.append(torch.where(inside, -dist, dist))
        return torch.cat(out) if out else x.new_zeros((0,))


class CSGDomain(Shape):
    """The union, difference or intersection of two shapes (build it with ``|``, ``-``, ``&``
    or :func:`union`, :func:`difference`, :func:`intersection`)."""

    _SYMBOL = {"union": "|", "difference": "-", "intersection": "&"}

    def __init__(self, op: str, left: Shape, right: Shape, *, _check: bool = True) -> None:
        if op not in self._SYMBOL:
            raise ValueError(f"op={op!r} is unknown; allowed: {', '.join(self._SYMBOL)}")
        for operand in (left, right):
            if not isinstance(operand, Shape):
                raise TypeError(
                    f"{op} takes shapes (Rectangle, Disk, Polygon or their combinations), got "
                    f"{type(operand).__name__}"
                )
        self.op, self.left, self.right = op, left, right
        if _check:
            self._validate()

    def __repr__(self) -> str:
        return f"({self.left!r} {self._SYMBOL[self.op]} {self.right!r})"

    def _leaves(self) -> list[Primitive]:
        seen: list[Primitive] = []
        for leaf in (*self.left._leaves(), *self.right._leaves()):
            if not any(leaf is s for s in seen):
                seen.append(leaf)
        return seen

    def _sd(self, x: Tensor) -> Tensor:
        a, b = self.left._sd(x), self.right._sd(x)
        if self.op == "union":
            return torch.minimum(a, b)
        if self.op == "intersection":
            return torch.maximum(a, b)
        return torch.maximum(a, -b)

    def _validate(self) -> None:
        self.boundary_pieces  # noqa: B018 - builds, and checks the names
        if self.op == "difference":
            overlap = CSGDomain("intersection", self.left, self.right, _check=False)
            if not overlap.volume > 1e-12 * self._leaf_scale() ** 2:
                raise ValueError(
                    f"{self!r}: the subtracted {self.right!r} does not overlap {self.left!r}; "
                    "allowed: a hole or notch that overlaps its parent by a positive area"
                )
        self._check_nonempty(repr(self))


def union(a: Shape, b: Shape) -> CSGDomain:
    """The points in ``a`` or ``b`` (``a | b``)."""
    return CSGDomain("union", a, b)


def difference(a: Shape, b: Shape) -> CSGDomain:
    """The points of ``a`` not inside ``b`` (``a - b``): ``b`` must overlap ``a``."""
    return CSGDomain("difference", a, b)


def intersection(a: Shape, b: Shape) -> CSGDomain:
    """The points in both ``a`` and ``b`` (``a & b``): they must overlap."""
    return CSGDomain("intersection", a, b)
