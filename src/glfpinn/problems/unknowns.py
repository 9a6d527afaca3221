"""An inverse problem's unknown coefficients: each a guess and a transform between the raw
parameter the optimizer trains and the value the problem reads.

``unknowns = {"nu": Unknown(0.05, "positive")}`` trains ``log(nu)``: the optimizer moves an
unconstrained number, the residual reads ``exp`` of it, which never leaves (0, inf) and moves
in relative steps, so a coefficient two orders of magnitude from its guess is reached at the
same pace as one next to it. ``Unknown(0.5, Bounded(0.0, 1.0))`` keeps a value inside an
interval through a sigmoid. A bare number is ``Unknown(number)``: trained as it is.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Mapping
from typing import final

import torch
from torch import Tensor, nn

from glfpinn._checks import unknown
from glfpinn._params import Params

__all__ = [
    "Transform",
    "Identity",
    "Positive",
    "Bounded",
    "Unknown",
    "UnknownParameters",
    "TRANSFORMS",
]


class Transform(Params, abc.ABC):
    """The map from a raw, unconstrained parameter to the value a problem reads."""

    @abc.abstractmethod
    def forward(self, raw: Tensor) -> Tensor:
        """The value for the raw parameter ``raw`` (differentiable)."""

    @abc.abstractmethod
    def inverse(self, value: float) -> float:
        """The raw parameter whose value is ``value`` (a one-line ValueError outside the
        transform's range)."""

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"


@final
class Identity(Transform):
    """The raw parameter is the value."""

    def forward(self, raw: Tensor) -> Tensor:
        return raw

    def inverse(self, value: float) -> float:
        return value


@final
class Positive(Transform):
    """value = exp(raw): positive, trained on a log scale."""

    def forward(self, raw: Tensor) -> Tensor:
        return torch.exp(raw)

    def inverse(self, value: float) -> float:
        if not value > 0:
            raise ValueError(f"a positive unknown's guess must be > 0, got {value!r}")
        return math.log(value)


@final
class Bounded(Transform):
    """value = low + (high - low) * sigmoid(raw): inside the open interval (low, high)."""

    def __init__(self, low: float, high: float) -> None:
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"Bounded(low={low!r}, high={high!r}) needs finite low < high")
        self.low = float(low)
        self.high = float(high)

    def forward(self, raw: Tensor) -> Tensor:
        return self.low + (self.high - self.low) * torch.sigmoid(raw)

    def inverse(self, value: float) -> float:
        if not self.low < value < self.high:
            raise ValueError(
                f"a bounded unknown's guess {value!r} must lie strictly inside "
                f"({self.low}, {self.high})"
            )
        share = (value - self.low) / (self.high - self.low)
        return math.log(share / (1.0 - share))


#: Transforms a string may name (``Unknown(0.05, "positive")``); ``Bounded`` needs its bounds.
TRANSFORMS: dict[str, type[Transform]] = {"identity": Identity, "positive": Positive}


@final
class Unknown(Params):
    """One unknown coefficient: its initial ``guess`` and its ``transform`` (``"identity"``,
    ``"positive"``, or a :class:`Transform` such as ``Bounded(0.0, 1.0)``)."""

    def __init__(self, guess: float, transform: str | Transform = "identity") -> None:
        if (
            isinstance(guess, bool)
            or not isinstance(guess, int | float)
            or not math.isfinite(guess)
        ):
            raise ValueError(f"an unknown's guess must be a finite number, got {guess!r}")
        if isinstance(transform, str):
            if transform not in TRANSFORMS:
                raise unknown("transform", transform, [*TRANSFORMS, "Bounded(low, high)"])
            transform = TRANSFORMS[transform]()
        if not isinstance(transform, Transform):
            raise ValueError(
                f"transform={transform!r} must be 'identity', 'positive' or a Transform "
                "such as Bounded(low, high)"
            )
        self.guess = float(guess)
        self.transform = transform
        self.raw_guess = transform.inverse(self.guess)  # checks the guess is in range

    def __repr__(self) -> str:
        return f"Unknown({self.guess!r}, {self.transform!r})"


class UnknownParameters(nn.ParameterDict):
    """The raw trainable parameters of a problem's unknowns (what optimizers and checkpoints
    hold), with each one's transform: :meth:`value` is what the problem reads."""

    def __init__(self, unknowns: Mapping[str, float | Unknown]) -> None:
        specs = {
            name: spec if isinstance(spec, Unknown) else Unknown(spec)
            for name, spec in unknowns.items()
        }
        super().__init__(
            {name: nn.Parameter(torch.tensor(spec.raw_guess)) for name, spec in specs.items()}
        )
        self._transforms = {name: spec.transform for name, spec in specs.items()}

    def value(self, name: str) -> Tensor:
        """The constrained value of ``name``: the raw parameter itself for an identity
        transform, so a problem without transforms reads exactly what it trains."""
        return self._transforms[name].forward(self[name])

    def current(self) -> dict[str, float]:
        """Every unknown's constrained value now, as numbers."""
        with torch.no_grad():
            return {name: float(self.value(name)) for name in self}
