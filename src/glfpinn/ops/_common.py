"""What the engines share: field shapes, axis selections, and the plan that recognises a
network the Taylor engine can propagate through."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from glfpinn.nn import MLP, Constrained, FourierFeatures, Sin

Field = Callable[[Tensor], Tensor]
Dims = slice | Sequence[int] | None
Method = Literal["auto", "taylor", "jvp"]
JetMethod = Literal["auto", "taylor", "nested"]
Transform = Callable[[Tensor, Tensor], Tensor]

#: What the Taylor engine recognises, for error messages.
SUPPORTED = (
    "a network of Linear layers, tanh, sin, silu or exact gelu activations, FourierFeatures, "
    "sums, products and concatenations that torch.fx can trace (glfpinn.nn.MLP, ResidualMLP, "
    "ModifiedMLP, an nn.Sequential of them), alone or in Constrained"
)


# --------------------------------------------------------------------------------------------
# shapes and axes


def _flat(out: Tensor, n: int) -> Tensor:
    """Accept ``(n,)`` and ``(n, 1)`` outputs; anything else is a vector field we cannot treat."""
    if out.shape == (n,):
        return out
    if out.shape == (n, 1):
        return out.reshape(n)
    raise ValueError(f"the field must map (n, d) to (n,) or (n, 1); got output {tuple(out.shape)}")


def _check_x(x: Tensor) -> tuple[int, int]:
    if x.dim() != 2:
        raise ValueError(f"x must have shape (n, d); got {tuple(x.shape)}")
    if not x.is_floating_point():
        raise TypeError(f"x must be floating point; got {x.dtype}")
    return x.shape[0], x.shape[1]


def _axes(dims: Dims, d: int) -> list[int]:
    """Normalise ``dims`` so that negative indices (``slice(0, -1)`` for "space, not time") work."""
    if dims is None:
        return list(range(d))
    if isinstance(dims, slice):
        return list(range(d))[dims]
    out = []
    for i in dims:
        i = int(i)
        if not -d <= i < d:
            raise IndexError(f"axis {i} is out of range for d={d}")
        out.append(i % d)
    if len(set(out)) != len(out):
        raise ValueError(f"dims has repeated axes: {list(dims)}")
    return out


def _one_hot(axes: list[int], d: int, like: Tensor) -> Tensor:
    e = torch.zeros(len(axes), 1, d, dtype=like.dtype, device=like.device)
    e[torch.arange(len(axes)), 0, torch.tensor(axes, dtype=torch.long)] = 1.0
    return e


# --------------------------------------------------------------------------------------------
# the plan: a supported network as affine maps and activations


class Affine(NamedTuple):
    weight: Tensor
    bias: Tensor | None


class Plan(NamedTuple):
    """A network reduced to what the Taylor engine propagates through: ``layers[0]``, then for
    each ``i`` the activation ``kinds[i]`` followed by ``layers[i + 1]``; and the output
    transform of a :class:`~glfpinn.nn.Constrained` wrapper (``None`` without one).

    Any other network the engine can follow is ``program``, its ``torch.fx`` trace
    (``_graph.py``), run on ``module``; ``layers`` and ``kinds`` are then empty."""

    layers: tuple[Affine, ...]
    kinds: tuple[str, ...]
    transform: Transform | None
    program: Program | None = None
    module: nn.Module | None = None


#: Activation modules with closed-form derivatives in the Taylor engine, keyed by their forward:
#: a subclass that overrides it computes something else.
_KINDS: dict[Callable[..., Tensor], str] = {
    nn.Tanh.forward: "tanh",
    Sin.forward: "sin",
    nn.SiLU.forward: "silu",
    nn.GELU.forward: "gelu",
}


def _activation_kind(act: object) -> str | None:
    if not isinstance(act, nn.Module):
        return None
    kind = _KINDS.get(type(act).forward)
    if kind == "gelu" and act.approximate != "none":
        return None
    return kind


def _is_linear(m: object) -> bool:
    return isinstance(m, nn.Linear) and type(m).forward is nn.Linear.forward


def _is_fourier(m: object) -> bool:
    return isinstance(m, FourierFeatures) and type(m).forward is FourierFeatures.forward


def _mlp_parts(net: MLP) -> tuple[list[Affine], list[str]] | None:
    kind = _activation_kind(net.activation)
    if kind is None or not all(_is_linear(m) for m in net.layers):
        return None
    layers = [Affine(m.weight, m.bias) for m in net.layers]
    kinds = [kind] * (len(layers) - 1)
    if net.fourier is not None:
        if not _is_fourier(net.fourier):
            return None
        layers.insert(0, Affine(*net.fourier.affine()))
        kinds.insert(0, "sin")
    return layers, kinds


def _sequential_parts(net: nn.Sequential) -> tuple[list[Affine], list[str]] | None:
    """Linear, activation, Linear, ..., Linear, optionally after FourierFeatures."""
    modules = list(net)
    layers: list[Affine] = []
    kinds: list[str] = []
    if modules and _is_fourier(modules[0]):
        layers.append(Affine(*modules[0].affine()))
        kinds.append("sin")
        modules = modules[1:]
    if len(modules) % 2 == 0:  # also refuses an empty stack
        return None
    for i, m in enumerate(modules):
        if i % 2 == 0:
            if not _is_linear(m):
                return None
            layers.append(Affine(m.weight, m.bias))
        else:
            kind = _activation_kind(m)
            if kind is None:
                return None
            kinds.append(kind)
    return layers, kinds


def _hooked(m: nn.Module) -> bool:
    """Forward hooks could change what a module computes; the engine would not see them."""
    return bool(m._forward_hooks or m._forward_pre_hooks)


def _taylor_plan(fn: object, *, any_width: bool = False) -> Plan | None:
    """The plan when ``fn`` is something the Taylor engine knows, else ``None``.

    A chain (MLP, Sequential) with its stock ``forward`` becomes a list of layers, the fastest
    form; any other module is traced (``_graph.trace_program``) and kept if every operation is
    one the engine can follow. The scalar operators need one output (or a
    :class:`~glfpinn.nn.Constrained` transform making one); with ``any_width`` (the
    ``outputs_*`` operators, which take every output at once) the output may have any width,
    and a ``Constrained`` network is refused (its transform is applied column by column).
    """
    transform = None
    net: object = fn
    if isinstance(fn, Constrained) and type(fn).forward is Constrained.forward:
        if any_width or _hooked(fn):
            return None
        net, transform = fn.net, fn.transform
    if not isinstance(net, nn.Module) or any(_hooked(m) for m in net.modules()):
        return None
    parts = None
    if isinstance(net, MLP) and type(net).forward is MLP.forward:
        parts = _mlp_parts(net)
    elif isinstance(net, nn.Sequential) and type(net).forward is nn.Sequential.forward:
        parts = _sequential_parts(net)
    if parts is not None:
        layers, kinds = parts
        if transform is None and not any_width and layers[-1].weight.shape[0] != 1:
            return None
        return Plan(tuple(layers), tuple(kinds), transform)
    program = trace_program(net)
    if program is None:
        return None
    if transform is None and not any_width and output_width(net, program) != 1:
        return None
    return Plan((), (), transform, program, net)


# at the end: _graph reads the helpers above
from glfpinn.ops._graph import Program, output_width, trace_program  # noqa: E402
