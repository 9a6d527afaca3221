"""Geometries: where collocation points live, how to draw them, and how to fold strays back in.

Every draw takes an explicit ``torch.Generator``; the points come out on the generator's device
in the requested dtype. Time, where a problem has one, is just the last coordinate of a box.

2-D domains with holes and curved boundaries (rectangles, disks and polygons under union,
difference and intersection) live in :mod:`glfpinn.geometry` and are re-exported here.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "Domain",
    "Box",
    "LShape",
    "Region",
    "SAMPLING_METHODS",
    # 2-D shapes with holes and curved boundaries (glfpinn.geometry)
    "Shape",
    "Rectangle",
    "Disk",
    "Polygon",
    "CSGDomain",
    "union",
    "difference",
    "intersection",
]

SamplingMethod = Literal["uniform", "sobol", "halton", "lhs"]
SAMPLING_METHODS: tuple[str, ...] = ("uniform", "sobol", "halton", "lhs")


def _seed_from(generator: torch.Generator) -> int:
    """A fresh integer seed drawn from ``generator``, so that scipy's QMC engines are
    re-scrambled at every call while the whole sequence stays reproducible from the run's seed."""
    return int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device).item())


def _unit_cube(
    n: int, dim: int, method: str, generator: torch.Generator, dtype: torch.dtype
) -> Tensor:
    """``n`` points in [0, 1)^dim by ``method``."""
    if method == "uniform":
        return torch.rand(n, dim, generator=generator, device=generator.device, dtype=dtype)
    if method not in SAMPLING_METHODS:
        raise ValueError(f"method={method!r} is unknown; allowed: {', '.join(SAMPLING_METHODS)}")
    from scipy.stats import qmc  # here: scipy.stats takes seconds to import, uniform needs none

    rng = np.random.default_rng(_seed_from(generator))
    if method == "sobol":
        engine = qmc.Sobol(dim, scramble=True, seed=rng)
        # Sobol' balance properties hold for powers of two: draw the next one and keep n.
        m = max(0, math.ceil(math.log2(max(n, 1))))
        pts = engine.random_base2(m)[:n]
    elif method == "halton":
        pts = qmc.Halton(dim, scramble=True, seed=rng).random(n)
    else:
        pts = qmc.LatinHypercube(dim, seed=rng).random(n)
    return torch.as_tensor(pts, dtype=dtype, device=generator.device)


class Domain(abc.ABC):
    """A bounded region of R^dim.

    Subclasses give ``contains``, ``sample``, ``sample_boundary`` and ``reflect``; ``bounds`` is
    the bounding box, used e.g. to cap GLF's perturbation scale by the diameter.
    """

    dim: int

    @property
    @abc.abstractmethod
    def bounds(self) -> tuple[Tensor, Tensor]:
        """Lower and upper corners of the bounding box, float64 CPU tensors of shape (dim,)."""

    @property
    def diameter(self) -> float:
        lo, hi = self.bounds
        return float(torch.linalg.vector_norm(hi - lo))

    @property
    def volume(self) -> float:
        lo, hi = self.bounds
        return float(torch.prod(hi - lo))

    @abc.abstractmethod
    def contains(self, x: Tensor) -> Tensor:
        """Boolean mask (n,): which rows of ``x`` lie in the closed domain."""

    @abc.abstractmethod
    def sample(
        self,
        n: int,
        generator: torch.Generator,
        *,
        method: SamplingMethod = "uniform",
        dtype: torch.dtype = torch.float32,
    ) -> Tensor:
        """``n`` interior points, shape (n, dim), on the generator's device."""

    @abc.abstractmethod
    def sample_boundary(
        self, n: int, generator: torch.Generator, *, dtype: torch.dtype = torch.float32
    ) -> Tensor:
        """``n`` points on the boundary, uniform with respect to surface measure."""

    @abc.abstractmethod
    def reflect(self, x: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Fold points that left the domain back inside; points inside are unchanged."""

    def check_points(self, x: Tensor, name: str = "points") -> None:
        """Raise ValueError unless ``x`` is a finite (n, dim) floating tensor inside the domain."""
        if not isinstance(x, Tensor):
            raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"{name} has shape {tuple(x.shape)}; expected (n, {self.dim})")
        if not x.is_floating_point():
            raise TypeError(f"{name} has dtype {x.dtype}; expected a floating dtype")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or Inf values")
        outside = int((~self.contains(x)).sum())
        if outside:
            raise ValueError(f"{name}: {outside} of {x.shape[0]} points lie outside {self!r}")


def _fold(x: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """Triangle-wave reflection into [lo, hi] per coordinate, exact for any excursion size:
    y = (x - lo) mod 2L, x' = lo + L - |y - L|, with L = hi - lo."""
    length = hi - lo
    y = torch.remainder(x - lo, 2 * length)
    return (lo + length - (y - length).abs()).clamp(lo, hi)


class Box(Domain):
    """The axis-aligned box [lower_1, upper_1] x ... x [lower_d, upper_d]."""

    def __init__(self, lower: Sequence[float], upper: Sequence[float]) -> None:
        lo = torch.as_tensor(list(lower), dtype=torch.float64)
        hi = torch.as_tensor(list(upper), dtype=torch.float64)
        if lo.ndim != 1 or lo.shape != hi.shape or lo.numel() == 0:
            raise ValueError(
                f"lower={list(lower)} and upper={list(upper)} must be non-empty and equally long"
            )
        if not bool((hi > lo).all()):
            raise ValueError(f"lower={list(lower)} must be below upper={list(upper)} everywhere")
        self._lo, self._hi = lo, hi
        self.dim = int(lo.numel())

    @classmethod
    def cube(cls, dim: int, low: float = 0.0, high: float = 1.0) -> Box:
        return cls([low] * dim, [high] * dim)

    def __repr__(self) -> str:
        return f"Box(lower={self._lo.tolist()}, upper={self._hi.tolist()})"

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        return self._lo, self._hi

    def _lo_hi(self, like: Tensor) -> tuple[Tensor, Tensor]:
        return self._lo.to(like), self._hi.to(like)

    def contains(self, x: Tensor) -> Tensor:
        lo, hi = self._lo_hi(x)
        return ((x >= lo) & (x <= hi)).all(dim=1)

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        lo, hi = self._lo.to(dtype), self._hi.to(dtype)
        u = _unit_cube(n, self.dim, method, generator, dtype)
        return lo.to(u.device) + (hi - lo).to(u.device) * u

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        """Pick a face with probability proportional to its area, then a uniform point on it."""
        dev = generator.device
        lo, hi = self._lo.to(dev, dtype), self._hi.to(dev, dtype)
        widths = hi - lo
        face_area = torch.stack(
            [torch.prod(torch.cat([widths[:i], widths[i + 1 :]])) for i in range(self.dim)]
        )
        probs = face_area.repeat(2) / (2 * face_area.sum())
        faces = torch.multinomial(probs, n, replacement=True, generator=generator)
        x = lo + widths * torch.rand(n, self.dim, generator=generator, device=dev, dtype=dtype)
        axis = faces % self.dim
        upper = faces >= self.dim
        rows = torch.arange(n, device=dev)
        x[rows, axis] = torch.where(upper, hi[axis], lo[axis])
        return x

    def reflect(self, x, generator=None):
        lo, hi = self._lo_hi(x)
        return _fold(x, lo, hi)


class Ball(Domain):
    """The closed ball |x - center| <= radius in ``dim`` dimensions.

    Uniform samples are exact (a Gaussian direction times radius U^(1/dim)); the quasi-random
    methods draw the bounding cube by that method and keep the points inside, so their low
    discrepancy holds only approximately (the cube's share inside falls fast with dim: 16% at
    dim = 5). The reflection folds the distance from the centre into [0, radius] along the
    point's own ray, so it never leaves a point outside and keeps inside points as they are.
    """

    def __init__(self, dim: int, center: Sequence[float] | None = None, radius: float = 1.0):
        if int(dim) != dim or dim < 1:
            raise ValueError(f"dim={dim} must be an integer >= 1")
        if not (math.isfinite(radius) and radius > 0):
            raise ValueError(f"radius={radius} must be positive and finite")
        self.dim = int(dim)
        if center is None:
            c = torch.zeros(self.dim, dtype=torch.float64)
        else:
            c = torch.as_tensor(list(center), dtype=torch.float64)
            if c.shape != (self.dim,) or not bool(torch.isfinite(c).all()):
                raise ValueError(f"center={list(center)} must be {self.dim} finite numbers")
        self._center, self.radius = c, float(radius)

    def __repr__(self) -> str:
        return f"Ball(dim={self.dim}, center={self._center.tolist()}, radius={self.radius!r})"

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        return self._center - self.radius, self._center + self.radius

    @property
    def volume(self) -> float:
        d = self.dim
        return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * self.radius**d

    @property
    def surface_area(self) -> float:
        """The sphere's (dim - 1)-dimensional measure, dim V / radius."""
        return self.dim * self.volume / self.radius

    def contains(self, x: Tensor) -> Tensor:
        r = torch.linalg.vector_norm(x - self._center.to(x), dim=1)
        return r <= self.radius * (1 + 4 * torch.finfo(x.dtype).eps)

    def _directions(self, n: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        g = torch.randn(n, self.dim, generator=generator, device=generator.device, dtype=dtype)
        return g / torch.linalg.vector_norm(g, dim=1, keepdim=True).clamp(min=1e-30)

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        c = self._center.to(generator.device, dtype)
        if method == "uniform":
            u = torch.rand(n, 1, generator=generator, device=generator.device, dtype=dtype)
            return c + self.radius * u ** (1.0 / self.dim) * self._directions(n, generator, dtype)
        lo, hi = self.bounds
        box = Box(lo.tolist(), hi.tolist())
        kept: list[Tensor] = []
        while sum(k.shape[0] for k in kept) < n:
            x = box.sample(max(2 * n, 64), generator, method=method, dtype=dtype)
            kept.append(x[self.contains(x)])
        return torch.cat(kept)[:n]

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        c = self._center.to(generator.device, dtype)
        return c + self.radius * self._directions(n, generator, dtype)

    def reflect(self, x, generator=None):
        c = self._center.to(x)
        v = x - c
        r = torch.linalg.vector_norm(v, dim=1, keepdim=True)
        outside = r > self.radius
        radius = torch.tensor(self.radius, dtype=x.dtype, device=x.device)
        folded = _fold(r, torch.zeros_like(radius), radius)
        scaled = c + v * (folded / r.clamp(min=torch.finfo(x.dtype).tiny))
        return torch.where(outside, scaled, x)


class SpaceTime(Domain):
    """``space`` x [t0, t1], time the last coordinate: a time-dependent problem on a domain
    other than a box (a box in space is simply a :class:`Box` with time as one more axis).

    The boundary is the lateral one (space's boundary x [t0, t1]) and the two time faces,
    each drawn in proportion to its measure, so ``space`` must give its boundary's measure as
    ``surface_area`` (:class:`Ball` does). Sampling draws space by ``method`` and time
    uniformly; the reflection is space's, with time folded into [t0, t1].
    """

    def __init__(self, space: Domain, t0: float = 0.0, t1: float = 1.0) -> None:
        if not isinstance(space, Domain):
            raise ValueError(f"space={space!r} must be a glfpinn Domain")
        if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
            raise ValueError(f"t0={t0} must be below t1={t1}, both finite")
        self.space, self.t0, self.t1 = space, float(t0), float(t1)
        self.dim = space.dim + 1

    def __repr__(self) -> str:
        return f"SpaceTime({self.space!r}, t0={self.t0!r}, t1={self.t1!r})"

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        lo, hi = self.space.bounds
        t = torch.tensor([self.t0, self.t1], dtype=torch.float64)
        return torch.cat([lo, t[:1]]), torch.cat([hi, t[1:]])

    @property
    def volume(self) -> float:
        return self.space.volume * (self.t1 - self.t0)

    def contains(self, x: Tensor) -> Tensor:
        t = x[:, -1]
        return self.space.contains(x[:, :-1]) & (t >= self.t0) & (t <= self.t1)

    def _times(self, n: int, generator: torch.Generator, dtype: torch.dtype) -> Tensor:
        u = torch.rand(n, 1, generator=generator, device=generator.device, dtype=dtype)
        return self.t0 + (self.t1 - self.t0) * u

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        x = self.space.sample(n, generator, method=method, dtype=dtype)
        return torch.cat([x, self._times(n, generator, dtype)], dim=1)

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        area = getattr(self.space, "surface_area", None)
        if area is None:
            raise NotImplementedError(
                f"{self.space!r} gives no surface_area: the boundary of {self!r} cannot be "
                "drawn in proportion to its measure"
            )
        lateral = float(area) * (self.t1 - self.t0)
        caps = self.space.volume
        weights = torch.tensor([lateral, caps, caps], dtype=torch.float64)
        part = torch.multinomial(weights, n, replacement=True, generator=generator)
        part = part.to(generator.device)
        x = self.sample(n, generator, dtype=dtype)
        side = self.space.sample_boundary(n, generator, dtype=dtype)
        x[:, :-1] = torch.where((part == 0)[:, None], side, x[:, :-1])
        x[:, -1] = torch.where(part == 1, self.t0, torch.where(part == 2, self.t1, x[:, -1]))
        return x

    def reflect(self, x, generator=None):
        t = _fold(
            x[:, -1:],
            *(torch.tensor(v, dtype=x.dtype, device=x.device) for v in (self.t0, self.t1)),
        )
        return torch.cat([self.space.reflect(x[:, :-1], generator), t], dim=1)


class LShape(Domain):
    """The L-shaped domain (-1, 1)^2 minus [0, 1) x (-1, 0], with its re-entrant corner at 0.

    Reflection folds a point into the bounding square [-1, 1]^2 first; a point that lands in the
    removed quadrant is mirrored across the nearer of the two re-entrant edges (x = 0 or y = 0),
    which always lands inside. That is the geometric reflection for a single excursion across a
    re-entrant edge, and a documented, deterministic rule for larger ones.
    """

    dim = 2

    def __repr__(self) -> str:
        return "LShape()"

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        return torch.tensor([-1.0, -1.0], dtype=torch.float64), torch.tensor(
            [1.0, 1.0], dtype=torch.float64
        )

    @property
    def volume(self) -> float:
        return 3.0

    def contains(self, x: Tensor) -> Tensor:
        in_square = ((x >= -1) & (x <= 1)).all(dim=1)
        in_hole = (x[:, 0] > 0) & (x[:, 1] < 0)
        return in_square & ~in_hole

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        """Map the unit square onto three unit cells (so QMC stays low-discrepancy per cell)."""
        u = _unit_cube(n, 3, method, generator, dtype)
        cell = torch.clamp((u[:, 2] * 3).long(), max=2)
        # Cells: [-1,0]x[-1,0], [-1,0]x[0,1], [0,1]x[0,1].
        ox = torch.tensor([-1.0, -1.0, 0.0], dtype=dtype, device=u.device)[cell]
        oy = torch.tensor([-1.0, 0.0, 0.0], dtype=dtype, device=u.device)[cell]
        return torch.stack([ox + u[:, 0], oy + u[:, 1]], dim=1)

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        """Uniform on the boundary's six edges (total length 8)."""
        dev = generator.device
        # Edges as (start, end); lengths 2, 2, 1, 1, 1, 1.
        starts = torch.tensor(
            [[-1, -1], [-1, 1], [1, 1], [1, 0], [0, 0], [0, -1]], dtype=dtype, device=dev
        )
        ends = torch.tensor(
            [[-1, 1], [1, 1], [1, 0], [0, 0], [0, -1], [-1, -1]], dtype=dtype, device=dev
        )
        lengths = torch.linalg.vector_norm(ends - starts, dim=1)
        edge = torch.multinomial(lengths / lengths.sum(), n, replacement=True, generator=generator)
        s = torch.rand(n, 1, generator=generator, device=dev, dtype=dtype)
        return starts[edge] + s * (ends[edge] - starts[edge])

    def reflect(self, x, generator=None):
        one = torch.ones((), dtype=x.dtype, device=x.device)
        y = _fold(x, -one, one)
        in_hole = (y[:, 0] > 0) & (y[:, 1] < 0)
        mirror_x = in_hole & (y[:, 0] <= -y[:, 1])  # nearer to the edge x = 0
        mirror_y = in_hole & ~mirror_x
        y = y.clone()
        y[mirror_x, 0] = -y[mirror_x, 0]
        y[mirror_y, 1] = -y[mirror_y, 1]
        return y


#: Rejection rounds before a region whose inside test accepts nothing is given up.
_MAX_ROUNDS = 200


class Region(Domain):
    """A domain known only by its bounding box and a vectorised inside test.

    Sampling draws uniform points in the box from the run's generator and keeps those inside
    (rejection); reflection folds strays into the box and redraws those still outside, since a
    mere inside test cannot say where the boundary is. ``inside`` maps a numpy array (n, dim)
    to a boolean array (n,).
    """

    def __init__(
        self,
        lower: Sequence[float],
        upper: Sequence[float],
        inside: Callable[[np.ndarray], np.ndarray],
        name: str,
    ) -> None:
        self._box = Box(lower, upper)
        self.dim = self._box.dim
        self.inside = inside
        self.name = name

    def __repr__(self) -> str:
        return f"Region({self.name}, {self._box!r})"

    @property
    def bounds(self) -> tuple[Tensor, Tensor]:
        return self._box.bounds

    def contains(self, x: Tensor) -> Tensor:
        mask = np.asarray(self.inside(x.detach().cpu().numpy()), dtype=bool).reshape(-1)
        return torch.as_tensor(mask, device=x.device)

    def sample(self, n, generator, *, method="uniform", dtype=torch.float32):
        parts, found = [], 0
        for _ in range(_MAX_ROUNDS):
            if found >= n:
                break
            # Draw more than missing so that a region filling half its box needs ~2 rounds.
            cand = self._box.sample(max(2 * (n - found), 64), generator, method=method, dtype=dtype)
            keep = cand[self.contains(cand)]
            parts.append(keep)
            found += keep.shape[0]
        if found < n:
            raise ValueError(
                f"{self!r}: the inside test accepted {found} of the points drawn in its bounding "
                f"box, fewer than the {n} needed; is the geometry empty or degenerate?"
            )
        return torch.cat(parts)[:n]

    def sample_boundary(self, n, generator, *, dtype=torch.float32):
        raise NotImplementedError(
            f"{self!r} has no boundary sampler: boundary points stay the framework's own"
        )

    def reflect(self, x, generator=None):
        lo, hi = (b.to(x) for b in self._box.bounds)
        # The fold's arithmetic may move a point inside by an ulp: leave those exactly alone.
        y = torch.where(self._box.contains(x).unsqueeze(1), x, _fold(x, lo, hi))
        outside = ~self.contains(y)
        if bool(outside.any()):
            if generator is None:
                raise ValueError(f"{self!r} redraws points outside it and needs a generator")
            y = y.clone()
            y[outside] = self.sample(int(outside.sum()), generator, dtype=y.dtype).to(y.device)
        return y


# last: glfpinn.geometry builds on Domain above (and imports no optional package at import time)
from glfpinn.geometry import CSGDomain as CSGDomain  # noqa: E402
from glfpinn.geometry import Disk as Disk  # noqa: E402
from glfpinn.geometry import Polygon as Polygon  # noqa: E402
from glfpinn.geometry import Rectangle as Rectangle  # noqa: E402
from glfpinn.geometry import Shape as Shape  # noqa: E402
from glfpinn.geometry import difference as difference  # noqa: E402
from glfpinn.geometry import intersection as intersection  # noqa: E402
from glfpinn.geometry import union as union  # noqa: E402
