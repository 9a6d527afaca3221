"""A reaction-diffusion equation in d space dimensions plus time, manufactured solution.

    u_t = D Laplacian_x(u) + R(u) + f    on [0, 1]^d x [0, 1]  (time last),
    R(u) = a u + b u^3   (a = ``reaction_linear`` = 1, b = ``reaction_cubic`` = -1: u - u^3),

with the closed-form solution (``k`` = ``wavenumber``, ``s`` = ``width``, ``A`` = ``amplitude``)

    u = G + A B,   G = exp(-D k^2 t) (1/d) sum_i sin(k x_i),
                   B = exp(-|z|^2 / 2),  z_j = (x_j - c(t)) / s  for j = 1, 2,  c(t) = 0.3 + 0.4 t.

G solves the heat equation G_t = D Laplacian G exactly, so the source is the bump's transport
and diffusion and the reaction of the whole solution::

    f = A B [ 0.4 (z_1 + z_2) / s  -  D (|z|^2 - 2) / s^2 ]  -  R(u).

The bump is the one of ``dispersive-10d`` (a Gaussian in (x_1, x_2), constant in x_3..x_d; see
that module for why a function of two coordinates: it stays a localized feature that uniform
samples still hit in any d). Its width defaults to 0.1 here (0.15 for the third-order problem,
whose bump terms scale like s^-3 rather than s^-2).

D = 0.1 (not 0.1 / d) because the (1/d)-normalised global part has Laplacian -k^2 G whatever d
is: with k = pi its diffusion time 1 / (D k^2) = 1.01 matches the time horizon in every
dimension, and the bump's diffusion rate D / s^2 = 10 is comparable with its transport rate
0.4 / s = 4, so neither term is negligible. Conditions (soft): u(x, 0) on the initial face and
Dirichlet values u on the faces of the space box (well-posed for a parabolic equation). The
Laplacian is over the space coordinates only.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from glfpinn import ops
from glfpinn.problems.base import Model
from glfpinn.problems.moving_bump import MovingBumpProblem

__all__ = ["ReactionDiffusion", "AllenCahnND"]


class ReactionDiffusion(MovingBumpProblem):
    """u_t = D Laplacian u + a u + b u^3 + f on [0, 1]^d x [0, 1]; see the module docstring.

    Parameters: ``space_dim`` d (default 20), ``diffusion`` D (0.1), ``reaction_linear`` a (1)
    and ``reaction_cubic`` b (-1), ``wavenumber`` k (pi), ``amplitude`` A (1) and ``width`` s
    (0.1) of the bump, ``initial_weight`` and ``boundary_weight`` (1, 1), ``n_test`` (100,000).
    """

    name = "reaction-diffusion-20d"
    test_seed = 20251029
    defaults = {"n_points": 2000, "resample_every": 500, "hidden": (64, 64, 64)}

    def __init__(
        self,
        space_dim: int = 20,
        diffusion: float = 0.1,
        reaction_linear: float = 1.0,
        reaction_cubic: float = -1.0,
        wavenumber: float = math.pi,
        amplitude: float = 1.0,
        width: float = 0.1,
        initial_weight: float = 1.0,
        boundary_weight: float = 1.0,
        n_test: int = 100_000,
    ) -> None:
        super().__init__(space_dim, amplitude, width, initial_weight, boundary_weight, n_test)
        if not diffusion > 0:
            raise ValueError(f"diffusion={diffusion} must be positive")
        self.diffusion = float(diffusion)
        self.reaction_linear = float(reaction_linear)
        self.reaction_cubic = float(reaction_cubic)
        self.wavenumber = float(wavenumber)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(space_dim={self.space_dim}, diffusion={self.diffusion!r}, "
            f"reaction_linear={self.reaction_linear!r}, reaction_cubic={self.reaction_cubic!r}, "
            f"wavenumber={self.wavenumber!r}, amplitude={self.amplitude!r}, width={self.width!r})"
        )

    def reaction(self, u: Tensor) -> Tensor:
        """R(u) = a u + b u^3."""
        return self.reaction_linear * u + self.reaction_cubic * u**3

    def global_part(self, x: Tensor) -> Tensor:
        k = self.wavenumber
        decay = torch.exp(-self.diffusion * k**2 * x[:, -1])
        return decay * torch.sin(k * x[:, :-1]).mean(1)

    def source(self, x: Tensor) -> Tensor:
        b, z = self.bump(x)
        s = self.width
        u = self.global_part(x) + self.amplitude * b
        transport = self.centre_speed * z.sum(1) / s
        diffusion = self.diffusion * ((z * z).sum(1) - 2.0) / s**2
        return self.amplitude * b * (transport - diffusion) - self.reaction(u)

    def residual(self, model: Model, x: Tensor) -> Tensor:
        # ``model`` itself, not a wrapper: ops recognise an MLP and take their Taylor fast path.
        # One pass: the Laplacian over the space axes carries their first derivatives, and the
        # time derivative costs one more direction.
        u, grad, lap = ops.value_grad_laplacian(model, x, dims=slice(0, -1))
        return grad[:, -1] - self.diffusion * lap - self.reaction(u) - self.source(x)


class AllenCahnND(ReactionDiffusion):
    """A 15-D Allen-Cahn equation with a manufactured solution (ours: the seed summary's next
    check asks for GLF on another high-dimensional PDE, "for example a 15-D Allen-Cahn")::

        u_t = D Laplacian_x(u) + 5 (u - u^3) + f    on [0, 1]^15 x [0, 1]  (time last)

    The reaction is the Allen-Cahn benchmark's (its 1-D form: u_t = 1e-4 u_xx + 5 (u - u^3));
    the exact solution and the source are the reaction-diffusion family's (module docstring),
    with D = 0.01: the global part still decays visibly (exp(-D pi^2) = 0.91 over the horizon)
    while the bump's transport (rate 0.4 / s = 4) dominates its diffusion (D / s^2 = 1), so the
    hard feature is a sharp front that moves, as in Allen-Cahn, and the stiff reaction makes
    the source large where u is far from the stable states +-1. Same parameters as
    :class:`ReactionDiffusion` with these defaults (``space_dim`` 15, ``diffusion`` 0.01,
    ``reaction_linear`` 5, ``reaction_cubic`` -5); the exact solution zeroes the residual to
    rounding (tests/problems/test_problems.py).
    """

    name = "allen-cahn-15d"
    test_seed = 20261215

    def __init__(
        self,
        space_dim: int = 15,
        diffusion: float = 0.01,
        reaction_linear: float = 5.0,
        reaction_cubic: float = -5.0,
        wavenumber: float = math.pi,
        amplitude: float = 1.0,
        width: float = 0.1,
        initial_weight: float = 1.0,
        boundary_weight: float = 1.0,
        n_test: int = 100_000,
    ) -> None:
        super().__init__(
            space_dim,
            diffusion,
            reaction_linear,
            reaction_cubic,
            wavenumber,
            amplitude,
            width,
            initial_weight,
            boundary_weight,
            n_test,
        )
