"""The shared base of the two manufactured high-dimensional problems (``dispersive`` and
``reaction_diffusion``): a PDE on [0, 1]^d x [0, 1] whose solution is a smooth global part plus a
Gaussian bump travelling in the (x_1, x_2) plane. Why the bump lives in two coordinates only is
explained in ``dispersive``'s module docstring.
"""

from __future__ import annotations

import abc
from typing import ClassVar

import numpy as np
import torch
from torch import Tensor

from glfpinn.domains import Box
from glfpinn.problems.base import Model, Problem

__all__ = ["MovingBumpProblem"]


class MovingBumpProblem(Problem):
    """Shared base: a PDE on [0, 1]^d x [0, 1] (time last) whose manufactured solution is a
    smooth global part plus ``amplitude`` times a Gaussian bump of ``width`` in (x_1, x_2)
    travelling from (0.3, 0.3) to (0.7, 0.7).

    Soft conditions: ``condition_points(n, ...)`` draws n // 2 initial points (uniform in
    space, t = 0) and n - n // 2 boundary points (uniform on the 2d faces of the space box, t
    uniform); ``condition_loss`` = initial_weight * MSE(initial) + boundary_weight * MSE(faces).
    Test set: ``n_test`` uniform points drawn with the class's own fixed ``test_seed``
    (``numpy.random.default_rng``; no global RNG).
    """

    #: Seed of the fixed test set (each problem its own).
    test_seed: ClassVar[int]
    #: The bump's centre in both x_1 and x_2: c(t) = centre_start + centre_speed * t.
    centre_start: ClassVar[float] = 0.3
    centre_speed: ClassVar[float] = 0.4

    def __init__(
        self,
        space_dim: int,
        amplitude: float,
        width: float,
        initial_weight: float,
        boundary_weight: float,
        n_test: int,
    ) -> None:
        if int(space_dim) != space_dim or space_dim < 2:
            raise ValueError(
                f"space_dim={space_dim} must be an integer >= 2 (the bump uses x_1, x_2)"
            )
        if not 0 < width <= 1:
            raise ValueError(f"width={width} must lie in (0, 1]")
        if not (initial_weight >= 0 and boundary_weight >= 0):
            raise ValueError(f"weights must be >= 0; got {initial_weight}, {boundary_weight}")
        if int(n_test) < 1:
            raise ValueError(f"n_test={n_test} must be >= 1")
        self.space_dim = int(space_dim)
        self.amplitude = float(amplitude)
        self.width = float(width)
        self.initial_weight = float(initial_weight)
        self.boundary_weight = float(boundary_weight)
        self.n_test = int(n_test)
        self.dim = self.space_dim + 1
        self.domain = Box.cube(self.dim, 0.0, 1.0)

    # ------------------------------------------------------------------ the solution
    def bump(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """``B (n,)`` and ``z (n, 2)`` = ((x_1, x_2) - c(t)) / width."""
        t = x[:, -1:]
        z = (x[:, :2] - (self.centre_start + self.centre_speed * t)) / self.width
        return torch.exp(-0.5 * (z * z).sum(1)), z

    @abc.abstractmethod
    def global_part(self, x: Tensor) -> Tensor:
        """The smooth part G (n,) of the solution."""

    def exact(self, x: Tensor) -> Tensor:
        """The manufactured solution u = G + A B as a torch function (n, dim) -> (n,), any dtype,
        differentiable (so ``ops`` can put it into the residual)."""
        return self.global_part(x) + self.amplitude * self.bump(x)[0]

    @abc.abstractmethod
    def source(self, x: Tensor) -> Tensor:
        """The source f (n,) in closed form."""

    def solution(self, x: np.ndarray | Tensor) -> np.ndarray:
        pts = torch.as_tensor(x).detach().cpu().to(torch.float64)
        return self.exact(pts).numpy()

    # ----------------------------------------------------------------- conditions
    def condition_points(
        self, n: int, generator: torch.Generator, dtype: torch.dtype
    ) -> dict[str, Tensor]:
        d, dev = self.space_dim, generator.device
        n_init = n // 2
        x0 = torch.rand(n_init, self.dim, generator=generator, device=dev, dtype=dtype)
        x0[:, -1] = 0.0
        faces = Box.cube(d).sample_boundary(n - n_init, generator, dtype=dtype)
        t = torch.rand(n - n_init, 1, generator=generator, device=dev, dtype=dtype)
        xb = torch.cat([faces, t], dim=1)
        points = {
            "initial": x0,
            "initial_values": self._exact_as(x0),
            "boundary": xb,
            "boundary_values": self._exact_as(xb),
        }
        points.update(self._extra_condition_points(xb))
        return points

    def _exact_as(self, x: Tensor) -> Tensor:
        """The exact solution computed in float64 and returned in ``x``'s dtype."""
        return self.exact(x.to(torch.float64)).to(x.dtype)

    def _extra_condition_points(self, xb: Tensor) -> dict[str, Tensor]:
        return {}

    def _extra_condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor | None:
        return None

    def condition_misfits(self, model: Model, points: dict[str, Tensor]) -> dict[str, Tensor]:
        x0, xb = points["initial"], points["boundary"]
        misfits = {
            "initial": ((model(x0).reshape(-1) - points["initial_values"]) ** 2).mean(),
            "boundary": ((model(xb).reshape(-1) - points["boundary_values"]) ** 2).mean(),
        }
        extra = self._extra_condition_loss(model, points)
        if extra is not None:
            misfits["neumann"] = extra
        return misfits

    def condition_loss(self, model: Model, points: dict[str, Tensor]) -> Tensor:
        misfits = self.condition_misfits(model, points)
        bnd = misfits["boundary"]
        if "neumann" in misfits:  # the Neumann faces weigh as boundary
            bnd = bnd + misfits["neumann"]
        return self.initial_weight * misfits["initial"] + self.boundary_weight * bnd

    # ------------------------------------------------------------------- test sets
    def test_points(self) -> np.ndarray:
        return np.random.default_rng(self.test_seed).random((self.n_test, self.dim))

    def slice_2d(self, n: int = 101, t: float = 0.5, fill: float = 0.5) -> np.ndarray:
        """Points (n * n, dim) of the plane (x_1, x_2) in [0, 1]^2, x_3..x_d = ``fill``, time
        ``t``: ``reshape(n, n)`` of a field over them has rows x_2, columns x_1. The defaults cut
        through the bump's centre (0.5, 0.5) at t = 0.5."""
        if int(n) < 2:
            raise ValueError(f"n={n} must be >= 2")
        if not (0 <= t <= 1 and 0 <= fill <= 1):
            raise ValueError(f"t={t} and fill={fill} must lie in [0, 1]")
        g = np.linspace(0.0, 1.0, int(n))
        x1, x2 = np.meshgrid(g, g)
        pts = np.full((x1.size, self.dim), float(fill))
        pts[:, 0], pts[:, 1], pts[:, -1] = x1.ravel(), x2.ravel(), float(t)
        return pts
