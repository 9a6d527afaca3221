"""The network: an MLP with optional Fourier features, and the hard-constraint wrapper that turns
its output into u."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["MLP", "Constrained", "FourierFeatures", "Sin"]


class Sin(nn.Module):
    """``sin`` as a module, for ``nn.Sequential`` networks (torch has none); the fast derivative
    engines know it like ``nn.Tanh``."""

    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "sin": Sin,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


class FourierFeatures(nn.Module):
    """Random Fourier features ``x (n, in_dim) -> [sin(2 pi x B^T), cos(2 pi x B^T)] (n, 2 m)``.

    ``B (m, in_dim)`` has N(0, scale^2) entries, drawn once from ``generator`` (without one, from
    a freshly seeded generator: never from global random state) and kept as a buffer: saved in
    ``state_dict``, moved by ``.to``, not trained. A larger ``scale`` lets the network represent
    higher frequencies (Tancik et al. 2020, "Fourier features let networks learn high frequency
    functions in low dimensional domains").
    """

    def __init__(
        self,
        in_dim: int,
        n_features: int,
        scale: float = 1.0,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        if in_dim < 1:
            raise ValueError(f"in_dim={in_dim}: must be >= 1")
        if n_features < 1:
            raise ValueError(f"n_features={n_features}: must be >= 1")
        if not (math.isfinite(scale) and scale > 0):
            raise ValueError(f"scale={scale}: must be a finite number > 0")
        self.scale = float(scale)
        if generator is None:
            generator = torch.Generator()
            generator.seed()
        self.register_buffer("B", torch.randn(n_features, in_dim, generator=generator) * scale)

    def affine(self) -> tuple[Tensor, Tensor]:
        """``(W, b)`` with ``W = 2 pi [B; B]`` and ``b = [0; pi/2]``: since cos z = sin(z + pi/2),
        the features are ``sin(x W^T + b)``, an affine map followed by sin, which is how the
        Taylor engine of :mod:`glfpinn.ops` propagates derivatives through them."""
        m = self.B.shape[0]
        weight = (2.0 * math.pi) * torch.cat([self.B, self.B])
        bias = torch.cat([self.B.new_zeros(m), self.B.new_full((m,), 0.5 * math.pi)])
        return weight, bias

    def forward(self, x: Tensor) -> Tensor:
        # the same arithmetic as the Taylor engine, so both give the same values
        return torch.sin(F.linear(x, *self.affine()))

    def extra_repr(self) -> str:
        n_features, in_dim = self.B.shape
        return f"in_dim={in_dim}, n_features={n_features}, scale={self.scale}"


class MLP(nn.Module):
    """Fully connected network ``R^in_dim -> R^out_dim`` with Glorot-normal weights and zero biases.

    ``hidden`` lists the widths of the hidden layers; the default (64, 64, 64) is the paper's
    Allen-Cahn network. Pass ``generator`` to seed the initialisation (Fourier frequencies
    included) without touching global random state. ``layers`` exposes the affine maps in order,
    so derivative operators that propagate through the network layer by layer (``glfpinn.ops``)
    can read them.

    ``fourier_features > 0`` puts :class:`FourierFeatures` with that many frequencies (standard
    deviation ``fourier_scale``) in front of the first layer, which then takes
    ``2 * fourier_features`` inputs.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        hidden: tuple[int, ...] | list[int] = (64, 64, 64),
        activation: str = "tanh",
        generator: torch.Generator | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(
                f"activation={activation!r} is unknown; allowed: {', '.join(sorted(_ACTIVATIONS))}"
            )
        if in_dim < 1 or out_dim < 1 or any(int(w) < 1 for w in hidden):
            raise ValueError(
                f"in_dim={in_dim}, out_dim={out_dim}, hidden={tuple(hidden)}: all must be >= 1"
            )
        if type(fourier_features) is not int or fourier_features < 0:  # refuses bools too
            raise ValueError(f"fourier_features={fourier_features!r}: must be an integer >= 0")
        if not (math.isfinite(fourier_scale) and fourier_scale > 0):
            raise ValueError(f"fourier_scale={fourier_scale}: must be a finite number > 0")
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.activation_name = activation
        first = 2 * fourier_features if fourier_features else in_dim
        widths = [first, *[int(w) for w in hidden], out_dim]
        # nn.Linear initialises itself from the global RNG; fork it so that state is left as it
        # was, then draw the real initialisation from ``generator``.
        with torch.random.fork_rng(devices=[]):
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = _ACTIVATIONS[activation]()
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)
        # B is drawn after the layers, so that an MLP without Fourier features draws exactly
        # what it always did (recorded results depend on it)
        self.fourier: FourierFeatures | None = None
        if fourier_features:
            self.fourier = FourierFeatures(in_dim, fourier_features, fourier_scale, generator)

    def forward(self, x: Tensor) -> Tensor:
        if self.fourier is not None:
            x = self.fourier(x)
        for layer in self.layers[:-1]:
            x = self.activation(layer(x))
        return self.layers[-1](x)

    def extra_repr(self) -> str:
        return f"activation={self.activation_name!r}"


class Constrained(nn.Module):
    """``u(x) = transform(x, net(x))``: a network whose output satisfies conditions exactly.

    Problems with hard constraints (``allen-cahn``, ``burgers``) supply ``transform``.
    """

    def __init__(self, net: nn.Module, transform: Callable[[Tensor, Tensor], Tensor]) -> None:
        super().__init__()
        self.net = net
        self.transform = transform

    def forward(self, x: Tensor) -> Tensor:
        return self.transform(x, self.net(x))
