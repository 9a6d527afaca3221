"""Three PINNacle cases with PINNacle's own reference solutions (Hao et al., "PINNacle: A
Comprehensive Benchmark of Physics-Informed Neural Networks for Solving PDEs", NeurIPS 2024;
repository i207M/PINNacle, commit 6f8d69c):

``burgers1d-c`` (:class:`PinnacleBurgers`, PINNacle's Burgers1d-C)::

    u_t + u u_x = (0.01 / pi) u_xx    on [-1, 1] x [0, 1]  (x, t),
    u(x, 0) = -sin(pi x),  u(+-1, t) = 0;

``poisson2d-c`` (:class:`PoissonHoles`, PINNacle's Poisson2d-C)::

    Laplacian u = 0   on [-0.5, 0.5]^2 minus four disks of radius 0.1 at (+-0.3, +-0.3),
    u = 1 on the outer edge,  u = 0 on the four circles;

``ns2d-c`` (:class:`LidDrivenCavity`, PINNacle's NS2d-C), steady incompressible Navier-Stokes
in the unit square, outputs (u, v, p), nu = 1/100::

    u u_x + v u_y + p_x - nu Laplacian u = 0      (momentum_x)
    u v_x + v v_y + p_y - nu Laplacian v = 0      (momentum_y)
    u_x + v_y = 0                                 (continuity)
    u = 4 x (1 - x), v = 0 on the lid y = 1;  u = v = 0 on the other three walls;  p(0, 0) = 0.

What was read in PINNacle's source at that commit (``src/pde/burgers.py`` ``Burgers1D``,
``src/pde/poisson.py`` ``Poisson2D_Classic``, ``src/pde/ns.py`` ``NS2D_LidDriven``,
``src/pde/baseclass.py``, ``benchmark.py``; nothing of it is copied here): the equations,
domains and conditions above (the Poisson outer-edge test is "on the rectangle's edge", the
rest of the boundary is the holes; the lid test is y = 1 and the walls everything else, so the
lid's corners, where 4 x (1 - x) = 0 anyway, count as lid); every condition is its own loss
term, the mean squared misfit over its points, the terms summed with weight 1 (PINNacle's
default loss weights), as here with ``*_weight = 1``; the pressure is pinned by a single point
condition p(0, 0) = 0; training points default to 8192 in the domain and 2048 on the boundary
(and 2048 initial for time-dependent cases); the network is a tanh MLP of 5 hidden layers of
100 (``--hidden-layers 100*5``), trained 20,000 Adam steps at lr 1e-3. Hence the ``defaults``
below (n_points 8192, hidden (100,) * 5); the condition points are the trainer's
``n_condition`` (1000 unless a run says otherwise), not part of ``defaults``.

All conditions are soft here, like PINNacle's: Burgers1d-C is the same PDE as ``burgers``, but
that one builds its conditions into the network and is measured against the exact Cole-Hopf
solution; this one penalises them and is measured against PINNacle's COMSOL export (which
differs from Cole-Hopf by 1.33e-2 relative L2: docs/problems.md).

References. Each problem's test set is its file's points and values, read with
:func:`~glfpinn.problems.reference.files.load_reference` from the gzip-compressed original
exports shipped in ``glfpinn/problems/data/pinnacle`` (MIT licence, with its LICENSE and a
README naming the source): Burgers1d-C 101 nodes x 11 times (1111 points), Poisson2d-C 1246
FEM nodes, NS2d-C 10,201 points with all three outputs (the L2 error pools them). The values
are known at those points only, so there is no ``solution(x)`` elsewhere (no error map on a
grid); a user's own file attached with :func:`~glfpinn.problems.base.with_reference` still wins.
"""

from __future__ import annotations

import math
from importlib import resources
from typing import final

import numpy as np
import torch
from torch import Tensor

from glfpinn import ops
from glfpinn._checks import check_positive
from glfpinn.domains import Box
from glfpinn.geometry import Disk, Rectangle
from glfpinn.problems.base import Model, Problem
from glfpinn.problems.reference.files import ReferenceData, load_reference

__all__ = ["LidDrivenCavity", "PinnacleBurgers", "PoissonHoles", "pinnacle_reference"]

#: PINNacle's training protocol: a 100 x 5 tanh network on 8192 collocation points.
_DEFAULTS = {"n_points": 8192, "resample_every": 500, "hidden": (100,) * 5}

#: The hole centres of Poisson2d-C (radius ``HOLE_RADIUS``), and the pieces' names.
HOLE_CENTRES = ((0.3, 0.3), (-0.3, 0.3), (0.3, -0.3), (-0.3, -0.3))
HOLE_RADIUS = 0.1
HOLE_NAMES = ("hole_pp", "hole_mp", "hole_pm", "hole_mm")


def pinnacle_reference(filename: str, dim: int, n_outputs: int = 1) -> ReferenceData:
    """The shipped PINNacle export ``filename`` (``burgers1d.dat.gz``, ...) read by
    :func:`load_reference`, located with :mod:`importlib.resources`."""
    resource = resources.files("glfpinn.problems").joinpath("data", "pinnacle", filename)
    with resources.as_file(resource) as path:
        return load_reference(path, dim, n_outputs)


def _weight(label: str, value: float) -> float:
    """A condition weight: a finite real number >= 0, as a float."""
    check_positive(label, value, allow_zero=True)
    return float(value)


def _mean_square(r: Tensor) -> Tensor:
    """Mean of ``r ** 2``; 0 (not NaN) for no points."""
    return (r**2).sum() / max(r.numel(), 1)


class _FileReference:
    """A test set that is a shipped file's points and values (loaded once per instance)."""

    reference_filename: str
    dim: int
    outputs: tuple[str, ...]

    def reference_data(self) -> ReferenceData:
        """The shipped export as :class:`ReferenceData` (points ``(n, dim)``, values ``(n, k)``)."""
        if "_reference_data" not in self.__dict__:
            self._reference_data = pinnacle_reference(
                self.reference_filename, self.dim, len(self.outputs)
            )
        return self._reference_data

    def test_points(self) -> np.ndarray:
        return self.reference_data().points

    def test_set(self) -> tuple[np.ndarray, np.ndarray]:
        data = self.reference_data()
        return data.points, data.values[:, 0] if len(self.outputs) == 1 else data.values


@final
class PinnacleBurgers(_FileReference, Problem):
    """PINNacle's Burgers1d-C: u_t + u u_x = (0.01/pi) u_xx, soft initial and boundary
    conditions, measured against PINNacle's COMSOL export; see the module."""

    name = "burgers1d-c"
    reference_filename = "burgers1d.dat.gz"
    defaults = dict(_DEFAULTS)
    viscosity = 0.01 / math.pi

    def __init__(self, initial_weight: float = 1.0, boundary_weight: float = 1.0) -> None:
        self.initial_weight = _weight("initial_weight", initial_weight)
        self.boundary_weight = _weight("boundary_weight", boundary_weight)
        self.dim = 2
        self.domain = Box([-1.0, 0.0], [1.0, 1.0])

    def __repr__(self) -> str:
        return (
            f"PinnacleBurgers(initial_weight={self.initial_weight!r}, "
            f"boundary_weight={self.boundary_weight!r})"
        )

    def residual(self, model: Model, x: Tensor) -> Tensor:
        u, grad, d = ops.gradient_and_axis_jet(model, x, 2, dims=[0])
        return grad[:, 1] + u * grad[:, 0] - self.viscosity * d[0, :, 0]

    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        dev = generator.device
        n_init = n // 2
        x0 = 2 * torch.rand(n_init, generator=generator, device=dev, dtype=torch.float64) - 1
        initial = torch.stack([x0, torch.zeros_like(x0)], dim=1)
        n_side = n - n_init
        side = torch.randint(0, 2, (n_side,), generator=generator, device=dev) * 2.0 - 1.0
        t = torch.rand(n_side, generator=generator, device=dev, dtype=torch.float64)
        boundary = torch.stack([side.to(torch.float64), t], dim=1)
        return {
            "initial": initial.to(dtype),
            "initial_values": (-torch.sin(math.pi * x0)).to(dtype),
            "boundary": boundary.to(dtype),
        }

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        x0, xb = points["initial"], points["boundary"]
        return {
            "initial": _mean_square(model(x0).reshape(-1) - points["initial_values"]),
            "boundary": _mean_square(model(xb).reshape(-1)),
        }

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor:
        misfits = self.condition_misfits(model, points)
        return self.initial_weight * misfits["initial"] + self.boundary_weight * misfits["boundary"]


@final
class PoissonHoles(_FileReference, Problem):
    """PINNacle's Poisson2d-C: Laplace u = 0 on a square with four round holes, u = 1 on the
    outer edge and 0 on the holes (soft), measured against PINNacle's COMSOL export; see the
    module. The domain is a :mod:`glfpinn.geometry` shape whose boundary pieces are named
    ``outer`` and ``hole_pp``, ``hole_mp``, ``hole_pm``, ``hole_mm`` (the signs of the
    centre's coordinates)."""

    name = "poisson2d-c"
    reference_filename = "poisson1_cg_data.dat.gz"
    defaults = dict(_DEFAULTS)
    outer_value = 1.0
    hole_value = 0.0

    def __init__(self, outer_weight: float = 1.0, hole_weight: float = 1.0) -> None:
        self.outer_weight = _weight("outer_weight", outer_weight)
        self.hole_weight = _weight("hole_weight", hole_weight)
        self.dim = 2
        domain = Rectangle([-0.5, -0.5], [0.5, 0.5], name="outer")
        for centre, piece in zip(HOLE_CENTRES, HOLE_NAMES, strict=True):
            domain = domain - Disk(centre, HOLE_RADIUS, name=piece)
        self.domain = domain

    def __repr__(self) -> str:
        return f"PoissonHoles(outer_weight={self.outer_weight!r}, hole_weight={self.hole_weight!r})"

    def residual(self, model: Model, x: Tensor) -> Tensor:
        _, lap = ops.laplacian(model, x)
        return lap

    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        # Uniform in arc length over the whole boundary, as PINNacle draws it, but with at
        # least one point on each part so that neither condition is empty.
        lengths = self.domain.boundary_lengths
        share = lengths["outer"] / sum(lengths.values())
        n_outer = min(max(round(n * share), 1), n - 1) if n >= 2 else n
        return {
            "outer": self._boundary(n_outer, generator, dtype, ["outer"]),
            "holes": self._boundary(n - n_outer, generator, dtype, list(HOLE_NAMES)),
        }

    def _boundary(
        self, n: int, generator: torch.Generator, dtype: torch.dtype, pieces: list[str]
    ) -> Tensor:
        if n == 0:
            return torch.empty(0, 2, device=generator.device, dtype=dtype)
        return self.domain.sample_boundary_tagged(n, generator, dtype=dtype, pieces=pieces)[0]

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        outer, holes = points["outer"], points["holes"]
        return {
            "outer": _mean_square(model(outer).reshape(-1) - self.outer_value),
            "holes": _mean_square(model(holes).reshape(-1) - self.hole_value),
        }

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor:
        misfits = self.condition_misfits(model, points)
        return self.outer_weight * misfits["outer"] + self.hole_weight * misfits["holes"]


@final
class LidDrivenCavity(_FileReference, Problem):
    """PINNacle's NS2d-C: the steady lid-driven cavity at nu = 1/100 with lid u = 4 x (1 - x),
    a system of outputs (u, v, p) and three equations, soft conditions, measured against
    PINNacle's COMSOL export (all three outputs); see the module."""

    name = "ns2d-c"
    reference_filename = "lid_driven_a4.dat.gz"
    defaults = dict(_DEFAULTS)
    outputs = ("u", "v", "p")
    equations = ("momentum_x", "momentum_y", "continuity")
    viscosity = 1.0 / 100
    lid_amplitude = 4.0

    def __init__(self, boundary_weight: float = 1.0, pressure_weight: float = 1.0) -> None:
        self.boundary_weight = _weight("boundary_weight", boundary_weight)
        self.pressure_weight = _weight("pressure_weight", pressure_weight)
        self.dim = 2
        self.domain = Box([0.0, 0.0], [1.0, 1.0])

    def __repr__(self) -> str:
        return (
            f"LidDrivenCavity(boundary_weight={self.boundary_weight!r}, "
            f"pressure_weight={self.pressure_weight!r})"
        )

    def lid_velocity(self, x: Tensor) -> Tensor:
        """u on the lid, 4 x (1 - x) at ``x`` (n, 2), shape (n,)."""
        return self.lid_amplitude * x[:, 0] * (1 - x[:, 0])

    def residual(self, model: Model, x: Tensor) -> Tensor:
        # every output's value, gradient (n, 2, 3) and Laplacian in one pass (p's is unused)
        w, grad, lap = ops.outputs_value_grad_laplacian(model, x)
        u, v = w[:, 0], w[:, 1]
        grad_u, grad_v, grad_p = grad[:, :, 0], grad[:, :, 1], grad[:, :, 2]
        lap_u, lap_v = lap[:, 0], lap[:, 1]
        nu = self.viscosity
        momentum_x = u * grad_u[:, 0] + v * grad_u[:, 1] + grad_p[:, 0] - nu * lap_u
        momentum_y = u * grad_v[:, 0] + v * grad_v[:, 1] + grad_p[:, 1] - nu * lap_v
        continuity = grad_u[:, 0] + grad_v[:, 1]
        return torch.stack([momentum_x, momentum_y, continuity], dim=1)

    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        # The boundary uniformly, as PINNacle draws it: the lid is a quarter of its length
        # (at least one point on it and, from n = 2, on the walls), plus the pressure point.
        dev = generator.device
        n_lid = min(max(n // 4, 1), n - 1) if n >= 2 else n
        n_walls = n - n_lid
        s_lid = torch.rand(n_lid, generator=generator, device=dev, dtype=dtype)
        lid = torch.stack([s_lid, torch.ones_like(s_lid)], dim=1)
        wall = torch.randint(0, 3, (n_walls,), generator=generator, device=dev)
        s = torch.rand(n_walls, generator=generator, device=dev, dtype=dtype)
        zero, one = torch.zeros_like(s), torch.ones_like(s)
        xs = torch.where(wall == 0, zero, torch.where(wall == 1, one, s))  # left, right, bottom
        ys = torch.where(wall == 2, zero, s)
        return {
            "lid": lid,
            "walls": torch.stack([xs, ys], dim=1),
            "pressure": torch.zeros(1, 2, device=dev, dtype=dtype),
        }

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        lid, walls = points["lid"], points["walls"]
        on_lid, on_walls = model(lid), model(walls)
        u_lid, v_lid = self.output(on_lid, "u"), self.output(on_lid, "v")
        return {
            "lid": _mean_square(u_lid - self.lid_velocity(lid)) + _mean_square(v_lid),
            "walls": _mean_square(self.output(on_walls, "u"))
            + _mean_square(self.output(on_walls, "v")),
            "pressure": _mean_square(self.output(model(points["pressure"]), "p")),
        }

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor:
        misfits = self.condition_misfits(model, points)
        boundary = misfits["lid"] + misfits["walls"]
        return self.boundary_weight * boundary + self.pressure_weight * misfits["pressure"]
