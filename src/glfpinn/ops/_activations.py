"""Closed-form activation derivatives and their composition along a direction (Faà di Bruno):
what every propagation of the Taylor engine applies at an activation."""

from __future__ import annotations

import math

import torch
from torch import Tensor

# Faà di Bruno for a univariate composition sigma(z(t)): the k-th derivative is
# sum(coef * sigma^(j)(z) * prod(z^(i) for i in idx)); entries are (coef, j, idx).
_FAA_DI_BRUNO: dict[int, tuple[tuple[int, int, tuple[int, ...]], ...]] = {
    1: ((1, 1, (1,)),),
    2: ((1, 1, (2,)), (1, 2, (1, 1))),
    3: ((1, 1, (3,)), (3, 2, (1, 2)), (1, 3, (1, 1, 1))),
    4: ((1, 1, (4,)), (4, 2, (1, 3)), (3, 2, (2, 2)), (6, 3, (1, 1, 2)), (1, 4, (1, 1, 1, 1))),
}


def _activation_derivatives(
    kind: str, z: Tensor, order: int, value: Tensor | None = None
) -> list[Tensor]:
    """``[sigma(z), sigma'(z), ..., sigma^(order)(z)]`` written in terms of the cheapest reusable
    quantities (tanh's derivatives are polynomials in tanh, silu's in the sigmoid).

    ``value`` is ``sigma(z)`` when already known; tanh then needs no transcendental at all,
    which matters because ``torch.tanh`` is several times slower than the polynomial on CPU.
    """
    if kind == "tanh":
        t = torch.tanh(z) if value is None else value
        s1 = 1.0 - t * t
        out = [t, s1]
        if order >= 2:
            out.append(-2.0 * t * s1)
        if order >= 3:
            t2 = t * t
            out.append(s1 * (6.0 * t2 - 2.0))
        if order >= 4:
            out.append(8.0 * t * s1 * (2.0 - 3.0 * t2))
    elif kind == "sin":
        s, c = torch.sin(z), torch.cos(z)
        out = [s, c, -s, -c, s]
    elif kind == "silu":
        p = torch.sigmoid(z)
        q = 1.0 - 2.0 * p
        ps = [p, p * (1.0 - p)]
        if order >= 2:
            ps.append(ps[1] * q)
        if order >= 3:
            ps.append(ps[2] * q - 2.0 * ps[1] * ps[1])
        if order >= 4:
            ps.append(ps[3] * q - 6.0 * ps[1] * ps[2])
        # (z p)^(k) = k p^(k-1) + z p^(k)
        out = [z * p] + [k * ps[k - 1] + z * ps[k] for k in range(1, min(order, 4) + 1)]
    elif kind == "gelu":
        phi = torch.exp(-0.5 * z * z) * (1.0 / math.sqrt(2.0 * math.pi))
        cdf = 0.5 * (1.0 + torch.erf(z * (1.0 / math.sqrt(2.0))))
        z2 = z * z
        out = [z * cdf, cdf + z * phi]
        if order >= 2:
            out.append((2.0 - z2) * phi)
        if order >= 3:
            out.append(z * (z2 - 4.0) * phi)
        if order >= 4:
            out.append((7.0 * z2 - z2 * z2 - 4.0) * phi)
    else:  # pragma: no cover - guarded by _activation_kind
        raise ValueError(kind)
    return out[: order + 1]


def _compose_activation(s: list[Tensor], a: list[Tensor | None]) -> list[Tensor | None]:
    """Derivatives of sigma(z(t)) from those of z(t) (``None`` = identically zero)."""
    powers: dict[tuple[int, ...], Tensor | None] = {}

    def prod(idx: tuple[int, ...]) -> Tensor | None:
        if idx not in powers:
            if len(idx) == 1:
                powers[idx] = a[idx[0] - 1]
            else:
                head, tail = prod(idx[:-1]), a[idx[-1] - 1]
                powers[idx] = None if head is None or tail is None else head * tail
        return powers[idx]

    out: list[Tensor | None] = []
    for k in range(1, len(a) + 1):
        acc: Tensor | None = None
        for coef, j, idx in _FAA_DI_BRUNO[k]:
            p = prod(idx)
            if p is None:
                continue
            term = s[j] * p if coef == 1 else (coef * s[j]) * p
            acc = term if acc is None else acc + term
        out.append(acc)
    return out
