"""The network: a plain MLP and the hard-constraint wrapper that turns its output into u."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

__all__ = ["MLP", "Constrained"]


class _Sin(nn.Module):
    def forward(self, x: Tensor) -> Tensor:
        return torch.sin(x)


_ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "tanh": nn.Tanh,
    "sin": _Sin,
    "gelu": nn.GELU,
    "silu": nn.SiLU,
}


class MLP(nn.Module):
    """Fully connected network ``R^in_dim -> R^out_dim`` with Glorot-normal weights and zero biases.

    ``hidden`` lists the widths of the hidden layers; the default (64, 64, 64) is the paper's
    Allen-Cahn network. Pass ``generator`` to seed the initialisation without touching global
    random state. ``layers`` exposes the affine maps in order, so derivative operators that
    propagate through the network layer by layer (``glfpinn.ops``) can read them.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int = 1,
        hidden: tuple[int, ...] | list[int] = (64, 64, 64),
        activation: str = "tanh",
        generator: torch.Generator | None = None,
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
        self.in_dim = in_dim
        self.out_dim = out_dim
        self.activation_name = activation
        widths = [in_dim, *[int(w) for w in hidden], out_dim]
        # nn.Linear initialises itself from the global RNG; fork it so that state is left as it
        # was, then draw the real initialisation from ``generator``.
        with torch.random.fork_rng(devices=[]):
            self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths[:-1], widths[1:]))
        self.activation = _ACTIVATIONS[activation]()
        for layer in self.layers:
            nn.init.xavier_normal_(layer.weight, generator=generator)
            nn.init.zeros_(layer.bias)

    def forward(self, x: Tensor) -> Tensor:
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
