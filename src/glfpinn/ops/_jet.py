"""Second-order Taylor arithmetic for the output transform of a hard-constrained network.

A :class:`~glfpinn.nn.Constrained` model is ``u = transform(x, NN(x))``. Once the Taylor engine
has the network's value, gradient and pure second derivatives, ``u``'s come from evaluating
``transform`` once on :class:`Jet` arguments, whose arithmetic carries the derivatives along
(forward mode, truncated at order 2). Everything stays a first-order graph of plain tensor ops,
which is what ``torch.compile`` can compile; ``torch.func.jvp`` nested twice does the same in
principle, but measured 13 ms per allen-cahn step (N = 2000) in eager mode against about 1 ms
for this, and fails under ``torch.compile`` in torch 2.13 ("more than one element of the
written-to tensor refers to a single memory location"). Transforms that use an operation not
listed in ``_UNARY`` or the operators below raise :class:`UnsupportedJetOp`, and the caller
falls back to reverse mode.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, final

import torch
from torch import Tensor

__all__ = ["Jet", "UnsupportedJetOp", "transform_jet", "directional_jet"]


class UnsupportedJetOp(TypeError):
    """The transform used an operation the jet arithmetic does not implement."""


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def _scale(a: Tensor | None, s: Tensor | float) -> Tensor | None:
    return None if a is None else a * s


#: f -> (f(t), f'(t), f''(t)), each written in terms of the cheapest reusable quantities.
def _sin(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sin(t)
    return s, torch.cos(t), -s


def _cos(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    c = torch.cos(t)
    return c, -torch.sin(t), -c


def _exp(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    e = torch.exp(t)
    return e, e, e


def _tanh(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    h = torch.tanh(t)
    s1 = 1.0 - h * h
    return h, s1, -2.0 * h * s1


def _sigmoid(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    p = torch.sigmoid(t)
    s1 = p * (1.0 - p)
    return p, s1, s1 * (1.0 - 2.0 * p)


def _log(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r = 1.0 / t
    return torch.log(t), r, -r * r


def _sqrt(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    s = torch.sqrt(t)
    return s, 0.5 / s, -0.25 / (s * t)


def _square(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    return t * t, 2.0 * t, torch.full_like(t, 2.0)


def _reciprocal(t: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    r = 1.0 / t
    return r, -r * r, 2.0 * r * r * r


_UNARY: dict[str, Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]] = {
    "sin": _sin,
    "cos": _cos,
    "exp": _exp,
    "tanh": _tanh,
    "sigmoid": _sigmoid,
    "log": _log,
    "sqrt": _sqrt,
    "square": _square,
    "reciprocal": _reciprocal,
}


@final
class Jet:
    """A quantity with its first derivatives along every axis and its pure second derivatives
    along some: ``value (...)``, ``d1 (D, ...)``, ``d2 (K, ...)`` with ``d2[j]`` the second
    derivative along axis ``axes[j]``; ``None`` stands for identically zero. Mixed second
    derivatives are not carried, so only pure ones come out right (all a residual asks for).
    """

    __slots__ = ("value", "d1", "d2", "axes")

    def __init__(
        self, value: Tensor, d1: Tensor | None, d2: Tensor | None, axes: list[int]
    ) -> None:
        self.value, self.d1, self.d2, self.axes = value, d1, d2, axes

    def _lift(self, other: Any) -> Jet:
        if isinstance(other, Jet):
            return other
        if isinstance(other, (Tensor, int, float)):
            return Jet(other, None, None, self.axes)  # type: ignore[arg-type]
        raise UnsupportedJetOp(f"cannot combine a jet with {type(other).__name__}")

    def unary(self, f: Callable[[Tensor], tuple[Tensor, Tensor, Tensor]]) -> Jet:
        f0, f1, f2 = f(self.value)
        d2 = _scale(self.d2, f1)
        if self.d1 is not None:
            c = self.d1[self.axes]
            d2 = _add(d2, f2 * (c * c))
        return Jet(f0, _scale(self.d1, f1), d2, self.axes)

    def __add__(self, other: Any) -> Jet:
        o = self._lift(other)
        return Jet(self.value + o.value, _add(self.d1, o.d1), _add(self.d2, o.d2), self.axes)

    __radd__ = __add__

    def __neg__(self) -> Jet:
        return Jet(-self.value, _scale(self.d1, -1.0), _scale(self.d2, -1.0), self.axes)

    def __sub__(self, other: Any) -> Jet:
        return self + (-self._lift(other))

    def __rsub__(self, other: Any) -> Jet:
        return (-self) + other

    def __mul__(self, other: Any) -> Jet:
        o = self._lift(other)
        d1 = _add(_scale(self.d1, o.value), _scale(o.d1, self.value))
        d2 = _add(_scale(self.d2, o.value), _scale(o.d2, self.value))
        if self.d1 is not None and o.d1 is not None:
            d2 = _add(d2, 2.0 * self.d1[self.axes] * o.d1[self.axes])
        return Jet(self.value * o.value, d1, d2, self.axes)

    __rmul__ = __mul__

    def __truediv__(self, other: Any) -> Jet:
        if isinstance(other, Jet):
            return self * other.unary(_reciprocal)
        return self * (1.0 / other)

    def __rtruediv__(self, other: Any) -> Jet:
        return self.unary(_reciprocal) * other

    def __pow__(self, p: Any) -> Jet:
        if isinstance(p, Jet) or not isinstance(p, (int, float)):
            raise UnsupportedJetOp("a jet can only be raised to a constant number")
        if p == 0:
            return Jet(torch.ones_like(self.value), None, None, self.axes)
        if p == 1:
            return self
        if p == 2:
            return self.unary(_square)
        return self.unary(lambda t: (t**p, p * t ** (p - 1), p * (p - 1) * t ** (p - 2)))

    def __rpow__(self, base: Any) -> Jet:
        if not isinstance(base, (int, float)) or base <= 0:
            raise UnsupportedJetOp("only a positive constant can be raised to a jet")
        return (self * math.log(base)).unary(_exp)

    def _full(self, t: Tensor | None) -> Tensor | None:
        """A derivative broadcast to the value's shape (it may be narrower: a jet plus a wider
        constant keeps its derivatives' shape), as indexing and reducing need."""
        return None if t is None else t.expand(t.shape[0], *self.value.shape)

    def __getitem__(self, index: Any) -> Jet:
        index = index if isinstance(index, tuple) else (index,)
        if any(i is Ellipsis for i in index):
            raise UnsupportedJetOp("indexing a jet with ... is not supported")
        lead = (slice(None), *index)
        d1, d2 = self._full(self.d1), self._full(self.d2)
        return Jet(
            self.value[index],
            None if d1 is None else d1[lead],
            None if d2 is None else d2[lead],
            self.axes,
        )

    def sum(self, dim: int | None = None, keepdim: bool = False) -> Jet:
        if not isinstance(dim, int):
            raise UnsupportedJetOp("a jet sums along one given dim only")
        shifted = dim + 1 if dim >= 0 else dim  # d1 and d2 carry a leading axis

        def total(t: Tensor | None) -> Tensor | None:
            return None if t is None else t.sum(shifted, keepdim=keepdim)

        return Jet(
            self.value.sum(dim, keepdim=keepdim),
            total(self._full(self.d1)),
            total(self._full(self.d2)),
            self.axes,
        )

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):  # protocols (copy, pickling, numpy) probe these: not ours
            raise AttributeError(name)
        raise UnsupportedJetOp(f"the jet arithmetic does not implement .{name}")

    def detach(self) -> Jet:
        """A constant: what stopping the gradient means for derivatives in x."""
        return Jet(self.value.detach(), None, None, self.axes)

    @classmethod
    def __torch_function__(
        cls, func: Any, types: Any, args: tuple[Any, ...] = (), kwargs: Any = None
    ) -> Any:
        kwargs = kwargs or {}
        if func in _UNARY_FUNCS and len(args) == 1 and not kwargs:
            return args[0].unary(_UNARY_FUNCS[func])
        if func in _SUMS and isinstance(args[0], Jet):
            return args[0].sum(*args[1:], **kwargs)
        if func in _LIKE:
            return func(args[0].value, *args[1:], **kwargs)  # a constant tensor
        if func in _BINARY and len(args) == 2 and not kwargs:
            a, b = args
            method, reflected = _BINARY[func]
            if isinstance(a, Jet):
                return getattr(a, method)(b)
            return getattr(b, reflected)(a)  # a tensor on the left, the jet on the right
        raise UnsupportedJetOp(f"the jet arithmetic does not implement {func}")


# Dispatch by identity (not by name: torch.compile cannot trace string methods).
_UNARY_FUNCS = {
    f: derivative
    for name, derivative in _UNARY.items()
    for f in (getattr(torch, name), getattr(Tensor, name))
}
_SUMS = {torch.sum, Tensor.sum}
_LIKE = {torch.ones_like, torch.zeros_like, torch.full_like, torch.empty_like}


def _binary_table() -> dict[Any, tuple[str, str]]:
    """torch function -> (method when the jet is on the left, method when it is on the right)."""
    table: dict[Any, tuple[str, str]] = {}
    for names, methods in (
        (("add", "__add__", "__radd__"), ("__add__", "__radd__")),
        (("sub", "__sub__"), ("__sub__", "__rsub__")),
        (("__rsub__",), ("__rsub__", "__sub__")),
        (("mul", "__mul__", "__rmul__"), ("__mul__", "__rmul__")),
        (("div", "true_divide", "__truediv__"), ("__truediv__", "__rtruediv__")),
        (("__rtruediv__", "__rdiv__"), ("__rtruediv__", "__truediv__")),
    ):
        for name in names:
            for owner in (torch, Tensor):
                if hasattr(owner, name):
                    table[getattr(owner, name)] = methods
    return table


_BINARY = _binary_table()


def transform_jet(
    transform: Callable[[Any, Any], Any],
    x: Tensor,
    value: Tensor,
    d1: Tensor,
    d2: Tensor,
    axes: list[int],
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, its gradient ``(n, d)`` and pure second derivatives along ``axes``
    ``(n, len(axes))`` for ``u = transform(x, y)``, given ``y``'s value ``(n, o)``, gradient
    ``d1 (d, n, o)`` and second derivatives ``d2 (len(axes), n, o)``."""
    n, d = x.shape
    eye = torch.eye(d, dtype=x.dtype, device=x.device).unsqueeze(1)  # (d, 1, d): dx/dx_i
    out = transform(Jet(x, eye, None, axes), Jet(value, d1, d2, axes))
    if not isinstance(out, Jet):
        raise UnsupportedJetOp(f"the transform returned {type(out).__name__}, not a jet")
    shape = out.value.shape  # (n,) or (n, 1)

    def rows(t: Tensor | None, k: int) -> Tensor:
        if t is None:
            return x.new_zeros(n, k)
        return t.expand(k, *shape).reshape(k, n).T

    return out.value.reshape(n), rows(out.d1, d), rows(out.d2, len(axes))


def directional_jet(
    transform: Callable[[Any, Any], Any],
    x: Tensor,
    x_dirs: Tensor,
    value: Tensor,
    d1: Tensor,
    d2: Tensor | None,
    m: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, its first derivatives along k directions ``(k, n)`` and its second
    derivatives along the first ``m`` of them ``(m, n)`` for ``u = transform(x, y)``, given the
    directions ``x_dirs (k, n | 1, d)``, ``y``'s value ``(n, o)``, its first derivatives
    ``d1 (k, n, o)`` and its second derivatives ``d2 (m, n, o)`` (None: zero) along them.

    The same arithmetic as :func:`transform_jet`, with directions in place of axes: what
    ``axis_jet`` and ``laplacian`` need for a hard-constrained network."""
    n = x.shape[0]
    axes = list(range(m))
    out = transform(Jet(x, x_dirs, None, axes), Jet(value, d1, d2, axes))
    if not isinstance(out, Jet):
        raise UnsupportedJetOp(f"the transform returned {type(out).__name__}, not a jet")
    shape = out.value.shape  # (n,) or (n, 1)

    def rows(t: Tensor | None, k: int) -> Tensor:
        if t is None:
            return x.new_zeros(k, n)
        return t.expand(k, *shape).reshape(k, n)

    return out.value.reshape(n), rows(out.d1, x_dirs.shape[0]), rows(out.d2, m)
