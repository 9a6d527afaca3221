"""The network: an MLP with optional Fourier features, and the hard-constraint wrapper that turns
its output into u."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "MLP",
    "ResidualMLP",
    "ModifiedMLP",
    "Constrained",
    "FourierFeatures",
    "Sin",
    "residual_mlp",
    "modified_mlp",
]


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


def _glorot_linear(a: int, b: int, generator: torch.Generator | None) -> nn.Linear:
    """``nn.Linear(a, b)`` with Glorot-normal weights from ``generator`` and zero biases, as
    :class:`MLP` initialises its layers (the global random state is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        layer = nn.Linear(a, b)
    nn.init.xavier_normal_(layer.weight, generator=generator)
    nn.init.zeros_(layer.bias)
    return layer


def _check_shape(in_dim: int, out_dim: int, width: int, depth: int, activation: str) -> None:
    if activation not in _ACTIVATIONS:
        raise ValueError(
            f"activation={activation!r} is unknown; allowed: {', '.join(sorted(_ACTIVATIONS))}"
        )
    for name, value in (("in_dim", in_dim), ("out_dim", out_dim), ("width", width)):
        if type(value) is not int or value < 1:
            raise ValueError(f"{name}={value!r}: must be an integer >= 1")
    if type(depth) is not int or depth < 1:
        raise ValueError(f"depth={depth!r}: must be an integer >= 1")


class ResidualMLP(nn.Module):
    """An MLP with skip connections: ``h = act(W_in x + b)``, then ``depth`` residual blocks
    ``h <- h + act(W_2 act(W_1 h + b_1) + b_2)``, then ``u = W_out h + b``.

    Glorot-normal weights and zero biases drawn from ``generator`` (as :class:`MLP`). The fast
    derivative engines of :mod:`glfpinn.ops` follow it through its ``torch.fx`` trace.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        width: int = 64,
        depth: int = 2,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_shape(in_dim, out_dim, width, depth, activation)
        self.activation_name = activation
        self.activation = _ACTIVATIONS[activation]()
        self.inp = _glorot_linear(in_dim, width, generator)
        self.blocks = nn.ModuleList(
            nn.ModuleList(_glorot_linear(width, width, generator) for _ in range(2))
            for _ in range(depth)
        )
        self.out = _glorot_linear(width, out_dim, generator)

    def forward(self, x: Tensor) -> Tensor:
        act = self.activation
        h = act(self.inp(x))
        for first, second in self.blocks:
            h = h + act(second(act(first(h))))
        return self.out(h)

    def extra_repr(self) -> str:
        return f"activation={self.activation_name!r}"


class ModifiedMLP(nn.Module):
    """The "modified MLP" of Wang, Teng and Perdikaris (2021, "Understanding and mitigating
    gradient flow pathologies in physics-informed neural networks"), which jaxpi and PirateNets
    build on: two encoders ``U = act(W_u x + b_u)`` and ``V = act(W_v x + b_v)`` gate every
    hidden layer,

        h = act(W_1 x + b_1);  z = act(W_k h + b_k),  h <- (1 - z) * U + z * V  (depth times);
        u = W_out h + b.

    Glorot-normal weights and zero biases drawn from ``generator``. The fast derivative engines
    of :mod:`glfpinn.ops` follow it through its ``torch.fx`` trace.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        width: int = 64,
        depth: int = 3,
        activation: str = "tanh",
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        _check_shape(in_dim, out_dim, width, depth, activation)
        self.activation_name = activation
        self.activation = _ACTIVATIONS[activation]()
        self.encoder_u = _glorot_linear(in_dim, width, generator)
        self.encoder_v = _glorot_linear(in_dim, width, generator)
        self.inp = _glorot_linear(in_dim, width, generator)
        self.gates = nn.ModuleList(_glorot_linear(width, width, generator) for _ in range(depth))
        self.out = _glorot_linear(width, out_dim, generator)

    def forward(self, x: Tensor) -> Tensor:
        act = self.activation
        u = act(self.encoder_u(x))
        v_minus_u = act(self.encoder_v(x)) - u
        h = act(self.inp(x))
        for gate in self.gates:
            # (1 - z) * u + z * v, written with one product: the derivative engines then carry
            # one product rule per layer instead of two (half the gating's cost)
            h = u + act(gate(h)) * v_minus_u
        return self.out(h)

    def extra_repr(self) -> str:
        return f"activation={self.activation_name!r}"


def residual_mlp(
    problem: object, width: int = 64, depth: int = 2, activation: str = "tanh"
) -> ResidualMLP:
    """A :class:`ResidualMLP` for ``problem``'s input dimension: the factory that a run config
    and the CLI name (``--model glfpinn.nn:residual_mlp --set model_params.width=32``). Its
    initialisation draws from torch's random state, which a run seeds from its seed."""
    return ResidualMLP(problem.dim, 1, width, depth, activation)  # type: ignore[attr-defined]


def modified_mlp(
    problem: object, width: int = 64, depth: int = 3, activation: str = "tanh"
) -> ModifiedMLP:
    """A :class:`ModifiedMLP` for ``problem``'s input dimension, as :func:`residual_mlp`."""
    return ModifiedMLP(problem.dim, 1, width, depth, activation)  # type: ignore[attr-defined]


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
