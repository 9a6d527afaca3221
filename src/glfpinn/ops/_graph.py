"""Networks beyond a chain of layers on the Taylor engine: ``torch.fx`` traces the module once
into a small program of affine maps, activations, sums, products and concatenations, and the
engine propagates the derivatives through that program.

This is how residual blocks (``h + act(W h + b)``), the gated "modified MLP" of Wang et al.
(``(1 - z) * u + z * v``) and any module written with those operations get the same
first-order graph as :class:`~glfpinn.nn.MLP`, which ``torch.compile`` can compile. What the
program accepts:

- modules: ``nn.Linear``, tanh / sin / silu / exact gelu activations (``nn.Tanh``,
  :class:`~glfpinn.nn.Sin`, ``nn.SiLU``, ``nn.GELU``), :class:`~glfpinn.nn.FourierFeatures`,
  ``nn.Identity``; any other module is traced through (its own ``forward``);
- functions and methods: ``torch.tanh``, ``torch.sin``, ``F.silu``, exact ``F.gelu``,
  ``F.linear`` and ``@`` with a parameter, ``+``, ``-``, ``*``, ``/`` by a constant, negation,
  and ``torch.cat`` along the last dimension; parameters and buffers enter as constants.

Anything else (another activation, data-dependent control flow, a forward hook) leaves the
module to the generic engines. The program holds only names (attribute paths), not tensors, so
it reads the live parameters on every call and survives ``.to``, ``load_state_dict`` and copies.

Three propagations share the program (``_Algebra``): per-direction Taylor jets of any order up
to ``MAX_TAYLOR_ORDER`` (:func:`graph_taylor`), and first derivatives along k directions with the
second derivatives along the first m of them, kept apart (:func:`graph_streams`, what
``gradient_and_axis_jet`` needs) or summed (:func:`graph_laplacian`, the forward Laplacian).
"""

from __future__ import annotations

import math
import operator
import weakref
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, fx, nn

from glfpinn.ops._activations import _activation_derivatives, _compose_activation
from glfpinn.ops._common import _activation_kind, _is_fourier, _is_linear, _one_hot

__all__ = ["Program", "trace_program", "graph_taylor", "graph_streams", "graph_laplacian"]


class Ref(NamedTuple):
    """An earlier instruction's result."""

    index: int


#: ``(op, *operands)``; operands are :class:`Ref`, numbers, strings or attribute paths.
Instruction = tuple[Any, ...]


class Program(NamedTuple):
    """The traced network: instruction ``i``'s result is ``values[i]``; the last is the output."""

    instructions: tuple[Instruction, ...]


# --------------------------------------------------------------------------------------------
# tracing


class _Tracer(fx.Tracer):
    """Stops at the modules the engine knows; traces through every other one."""

    def is_leaf_module(self, m: nn.Module, module_qualified_name: str) -> bool:
        return _known_module(m) is not None or super().is_leaf_module(m, module_qualified_name)


def _known_module(m: nn.Module) -> tuple[Any, ...] | None:
    if _is_linear(m):
        return ("linear",)
    if _is_fourier(m):
        return ("fourier",)
    if type(m) is nn.Identity:
        return ("identity",)
    kind = _activation_kind(m)
    return None if kind is None else ("act", kind)


_ACT_FUNCTIONS = {torch.tanh: "tanh", torch.sin: "sin", F.silu: "silu", F.gelu: "gelu"}
_ACT_METHODS = {"tanh": "tanh", "sin": "sin"}
_ARITHMETIC = {
    operator.add: "add",
    torch.add: "add",
    "add": "add",
    operator.sub: "sub",
    torch.sub: "sub",
    "sub": "sub",
    operator.mul: "mul",
    torch.mul: "mul",
    "mul": "mul",
    operator.truediv: "div",
    torch.div: "div",
    "div": "div",
    operator.neg: "neg",
    torch.neg: "neg",
    "neg": "neg",
    operator.matmul: "matmul",
    torch.matmul: "matmul",
    "matmul": "matmul",
}


class _Untraceable(Exception):
    """The module uses something the program does not accept."""


def _path(target: str) -> tuple[str, ...]:
    return tuple(target.split(".")) if target else ()


def _convert(root: nn.Module, graph: fx.Graph) -> Program:
    index: dict[fx.Node, int] = {}
    out: list[Instruction] = []

    def operand(a: Any) -> Any:
        if isinstance(a, fx.Node):
            return Ref(index[a])
        if isinstance(a, (int, float)) and not isinstance(a, bool):
            return float(a)
        raise _Untraceable(f"operand {a!r}")

    def emit(node: fx.Node, instruction: Instruction) -> None:
        index[node] = len(out)
        out.append(instruction)

    inputs = 0
    for node in graph.nodes:
        kwargs = dict(node.kwargs)
        if node.op == "placeholder":
            inputs += 1
            if inputs > 1:
                raise _Untraceable("more than one input")
            emit(node, ("input",))
        elif node.op == "get_attr":
            emit(node, ("const", _path(str(node.target))))
        elif node.op == "call_module":
            known = _known_module(root.get_submodule(str(node.target)))
            if known is None or len(node.args) != 1 or kwargs:
                raise _Untraceable(f"module {node.target}")
            if known[0] == "identity":
                index[node] = index[node.args[0]]
                continue
            emit(node, (*known, operand(node.args[0]), _path(str(node.target))))
        elif node.op in ("call_function", "call_method"):
            emit(node, _call(node, kwargs, operand))
        elif node.op == "output":
            result = node.args[0]
            if not isinstance(result, fx.Node):
                raise _Untraceable("the output is not one tensor")
            out.append(("alias", Ref(index[result])))
    if inputs != 1:
        raise _Untraceable("no input")
    _check_constants(out)
    return Program(tuple(out))


def _check_constants(instructions: list[Instruction]) -> None:
    """The engine differentiates products of two inputs-dependent factors but not a division by,
    a matrix product with or a linear map by one; and the output must depend on the input."""
    live: list[bool] = []
    for ins in instructions:
        refs = [a for a in ins[1:] if isinstance(a, Ref)]
        if ins[0] == "cat":
            refs = list(ins[1])
        depends = [live[r.index] for r in refs]
        live.append(ins[0] == "input" or any(depends))
        if ins[0] in ("div", "matmul") and depends[-1] and isinstance(ins[2], Ref):
            raise _Untraceable(f"{ins[0]} by an input-dependent tensor")
        if ins[0] == "flinear" and any(depends[1:]):
            raise _Untraceable("F.linear with input-dependent weights")
    if not live[-1]:
        raise _Untraceable("the output does not depend on the input")


def _call(node: fx.Node, kwargs: dict[str, Any], operand: Any) -> Instruction:
    target, args = node.target, node.args
    method = node.op == "call_method"
    if not method and target in _ACT_FUNCTIONS:
        kind = _ACT_FUNCTIONS[target]
        if kind == "gelu" and kwargs.pop("approximate", "none") != "none":
            raise _Untraceable("approximate gelu")
        if kwargs.pop("inplace", False):
            raise _Untraceable("an in-place activation")
        if len(args) != 1 or kwargs:
            raise _Untraceable(str(target))
        return ("act", kind, operand(args[0]))
    if method and target in _ACT_METHODS and len(args) == 1 and not kwargs:
        return ("act", _ACT_METHODS[target], operand(args[0]))
    if not method and target is F.linear:
        weight = kwargs.pop("weight", args[1] if len(args) > 1 else None)
        bias = kwargs.pop("bias", args[2] if len(args) > 2 else None)
        if kwargs or weight is None:
            raise _Untraceable("F.linear")
        bias = None if bias is None else operand(bias)
        return ("flinear", operand(args[0]), operand(weight), bias)
    if not method and target is torch.cat:
        tensors = args[0] if args else kwargs.pop("tensors")
        dim = kwargs.pop("dim", args[1] if len(args) > 1 else 0)
        if kwargs or dim not in (-1, 1) or not isinstance(tensors, (list, tuple)):
            raise _Untraceable("torch.cat other than along the last dimension")
        return ("cat", tuple(operand(t) for t in tensors))
    op = _ARITHMETIC.get(target)  # type: ignore[call-overload]
    if op is None or kwargs or len(args) != (1 if op == "neg" else 2):
        raise _Untraceable(str(target))
    return (op, *(operand(a) for a in args))


#: module id -> (weak reference to it, its program or None when it is not traceable)
_PROGRAMS: dict[int, tuple[weakref.ref, Program | None]] = {}


def trace_program(module: nn.Module) -> Program | None:
    """The module's program (traced on the first call, then kept), or None if the engine cannot
    follow it."""
    entry = _PROGRAMS.get(id(module))
    if entry is not None and entry[0]() is module:
        return entry[1]
    # outside torch.compile's tracing (a graph break there); wrapped here, not at import, since
    # that imports torch's compiler, which would fill in TORCHINDUCTOR_CACHE_DIR before
    # glfpinn.training.compiling reads whether the user set it
    return torch.compiler.disable(_trace)(module)


def _trace(module: nn.Module) -> Program | None:
    try:
        program: Program | None = _convert(module, _Tracer().trace(module))
    except Exception:  # noqa: BLE001 - fx cannot trace it, or it uses what we lack: generic path
        program = None
    key = id(module)
    _PROGRAMS[key] = (weakref.ref(module, lambda _: _PROGRAMS.pop(key, None)), program)
    return program


def output_width(module: nn.Module, program: Program) -> int | None:
    """The width of the output as far as the program fixes it (None: it depends on the input's
    width, which only a call tells)."""
    instructions = program.instructions

    def width(ref: Any) -> int | None:
        if not isinstance(ref, Ref):
            return 1  # a number
        ins = instructions[ref.index]
        op = ins[0]
        if op == "input":
            return None
        if op == "linear":
            return int(_resolve(module, ins[2]).out_features)
        if op == "fourier":
            return 2 * int(_resolve(module, ins[2]).B.shape[0])
        if op == "const":
            shape = _resolve(module, ins[1]).shape
            return int(shape[-1]) if len(shape) else 1
        if op == "flinear":
            return _rows_of(ins[2])
        if op == "matmul":
            right = instructions[ins[2].index] if isinstance(ins[2], Ref) else None
            return None if right is None else int(_resolve(module, right[1]).shape[-1])
        if op == "cat":
            widths = [width(a) for a in ins[1]]
            return None if None in widths else sum(widths)  # type: ignore[arg-type]
        if op in ("alias", "neg"):
            return width(ins[1])
        if op == "act":
            return width(ins[2])
        widths = [width(a) for a in ins[1:]]  # element-wise: broadcasting
        if None in widths:
            return None
        return max(widths)  # type: ignore[type-var]

    def _rows_of(ref: Any) -> int | None:
        ins = instructions[ref.index]
        return int(_resolve(module, ins[1]).shape[0]) if ins[0] == "const" else None

    return width(Ref(len(instructions) - 1))


def _resolve(root: nn.Module, path: tuple[str, ...]) -> Any:
    obj: Any = root
    for name in path:
        obj = getattr(obj, name)
    return obj


# --------------------------------------------------------------------------------------------
# propagation


class Jet(NamedTuple):
    """A value ``(n, w)`` with its derivative parts (``None``: identically zero)."""

    value: Tensor
    parts: tuple[Tensor | None, ...]


def _add(a: Tensor | None, b: Tensor | None) -> Tensor | None:
    if a is None:
        return b
    return a if b is None else a + b


def _times(a: Tensor | None, c: Any) -> Tensor | None:
    return None if a is None else a * c


class _Algebra:
    """The operations that are linear in the derivative parts, shared by both propagations."""

    def linear(self, j: Jet, weight: Tensor, bias: Tensor | None) -> Jet:
        return Jet(
            F.linear(j.value, weight, bias),
            tuple(None if p is None else F.linear(p, weight) for p in j.parts),
        )

    def scale(self, j: Jet, c: Any) -> Jet:
        return Jet(j.value * c, tuple(_times(p, c) for p in j.parts))

    def add(self, a: Jet, b: Jet) -> Jet:
        return Jet(a.value + b.value, tuple(_add(p, q) for p, q in zip(a.parts, b.parts)))

    def shift(self, j: Jet, c: Any) -> Jet:
        return Jet(j.value + c, j.parts)

    def cat(self, jets: list[Jet]) -> Jet:
        value = torch.cat([j.value for j in jets], dim=-1)
        parts = []
        for i in range(len(jets[0].parts)):
            ps = [j.parts[i] for j in jets]
            given = [p for p in ps if p is not None]
            if not given:
                parts.append(None)
                continue
            lead = max(given, key=lambda p: p.dim()).shape[:-2]
            full = [
                torch.zeros(*lead, *j.value.shape, dtype=value.dtype, device=value.device)
                if p is None
                else p.expand(*lead, *j.value.shape)
                for p, j in zip(ps, jets)
            ]
            parts.append(torch.cat(full, dim=-1))
        return Jet(value, tuple(parts))

    def act(self, j: Jet, kind: str) -> Jet:
        raise NotImplementedError

    def mul(self, a: Jet, b: Jet) -> Jet:
        raise NotImplementedError


class _Taylor(_Algebra):
    """Parts ``(D1, ..., D_order)``, each ``(k, n | 1, w)``: derivatives along each direction."""

    def __init__(self, order: int) -> None:
        self.order = order

    def act(self, j: Jet, kind: str) -> Jet:
        s = _activation_derivatives(kind, j.value, self.order)
        return Jet(s[0], tuple(_compose_activation(s, list(j.parts))))

    def mul(self, a: Jet, b: Jet) -> Jet:
        fa, fb = (a.value, *a.parts), (b.value, *b.parts)
        parts: list[Tensor | None] = []
        for k in range(1, self.order + 1):  # Leibniz: (fg)^(k) = sum_i C(k, i) f^(i) g^(k-i)
            acc: Tensor | None = None
            for i in range(k + 1):
                p, q = fa[i], fb[k - i]
                if p is not None and q is not None:
                    c = math.comb(k, i)
                    acc = _add(acc, p * q if c == 1 else c * (p * q))
            parts.append(acc)
        return Jet(a.value * b.value, tuple(parts))


class _SecondOrder(_Algebra):
    """Parts ``(a, b)``: first derivatives ``a (k, n | 1, w)`` along k directions and the second
    derivatives along the first ``m``, each ``b (m, n, w)``, or their sum times ``scale``
    ``b (n, w)`` when ``summed``."""

    def __init__(self, m: int, summed: bool, scale: float = 1.0) -> None:
        self.m, self.summed, self.factor = m, summed, scale

    def _cross(self, a: Tensor, b: Tensor) -> Tensor:
        prod = a[: self.m] * b[: self.m]
        if not self.summed:
            return prod
        total = prod.sum(0)
        return total if self.factor == 1.0 else total * self.factor

    def act(self, j: Jet, kind: str) -> Jet:
        a, b = j.parts
        s0, s1, s2 = _activation_derivatives(kind, j.value, 2)
        second = _times(b, s1)
        if a is not None:
            second = _add(second, s2 * self._cross(a, a))
        return Jet(s0, (_times(a, s1), second))

    def mul(self, x: Jet, y: Jet) -> Jet:
        (ax, bx), (ay, by) = x.parts, y.parts
        first = _add(_times(ax, y.value), _times(ay, x.value))
        second = _add(_times(bx, y.value), _times(by, x.value))
        if ax is not None and ay is not None:
            second = _add(second, 2.0 * self._cross(ax, ay))
        return Jet(x.value * y.value, (first, second))


def _run(module: nn.Module, program: Program, algebra: _Algebra, x: Jet) -> Jet:
    values: list[Any] = []

    def get(a: Any) -> Any:
        return values[a.index] if isinstance(a, Ref) else a

    for ins in program.instructions:
        op = ins[0]
        if op == "input":
            out: Any = x
        elif op == "alias":
            out = get(ins[1])
        elif op == "const":
            out = _resolve(module, ins[1])
        elif op == "linear":
            layer = _resolve(module, ins[2])
            out = _apply(algebra, "linear", get(ins[1]), layer.weight, layer.bias)
        elif op == "fourier":
            out = _apply(algebra, "fourier", get(ins[1]), *_resolve(module, ins[2]).affine())
        elif op == "flinear":
            bias = None if ins[3] is None else get(ins[3])
            out = _apply(algebra, "linear", get(ins[1]), get(ins[2]), bias)
        elif op == "act":
            out = _apply(algebra, ins[1], get(ins[2]))
        elif op == "cat":
            out = _cat(algebra, [get(a) for a in ins[1]])
        else:
            out = _arithmetic(algebra, op, [get(a) for a in ins[1:]])
        values.append(out)
    return values[-1]


_ACTIVATIONS = {"tanh": torch.tanh, "sin": torch.sin, "silu": F.silu, "gelu": F.gelu}


def _apply(algebra: _Algebra, op: str, j: Any, *args: Any) -> Any:
    if op in ("linear", "fourier"):
        if not isinstance(j, Jet):
            out = F.linear(j, *args)
            return torch.sin(out) if op == "fourier" else out
        out = algebra.linear(j, *args)
        return algebra.act(out, "sin") if op == "fourier" else out
    if not isinstance(j, Jet):  # an activation of a constant
        return _ACTIVATIONS[op](j)
    return algebra.act(j, op)


def _cat(algebra: _Algebra, items: list[Any]) -> Any:
    if not any(isinstance(t, Jet) for t in items):
        return torch.cat(items, dim=-1)
    n_parts = len(next(t for t in items if isinstance(t, Jet)).parts)
    return algebra.cat([t if isinstance(t, Jet) else Jet(t, (None,) * n_parts) for t in items])


def _arithmetic(algebra: _Algebra, op: str, args: list[Any]) -> Any:
    if not any(isinstance(a, Jet) for a in args):
        return _PLAIN[op](*args)
    if op == "neg":
        return algebra.scale(args[0], -1.0)
    a, b = args
    if op == "add":
        if isinstance(a, Jet) and isinstance(b, Jet):
            return algebra.add(a, b)
        return algebra.shift(a, b) if isinstance(a, Jet) else algebra.shift(b, a)
    if op == "sub":
        if isinstance(b, Jet):
            b = algebra.scale(b, -1.0)
            return algebra.add(a, b) if isinstance(a, Jet) else algebra.shift(b, a)
        return algebra.shift(a, -b)
    if op == "mul":
        if isinstance(a, Jet) and isinstance(b, Jet):
            return algebra.mul(a, b)
        return algebra.scale(a, b) if isinstance(a, Jet) else algebra.scale(b, a)
    if op == "div" and not isinstance(b, Jet):
        return algebra.scale(a, 1.0 / b)
    if op == "matmul" and not isinstance(b, Jet):
        return algebra.linear(a, b.T, None)
    raise _Untraceable(f"{op} with a derivative on the right")


_PLAIN = {
    "add": operator.add,
    "sub": operator.sub,
    "mul": operator.mul,
    "div": operator.truediv,
    "neg": operator.neg,
    "matmul": operator.matmul,
}


def _directions(dirs: list[int] | Tensor, x: Tensor) -> Tensor:
    return dirs if isinstance(dirs, Tensor) else _one_hot(dirs, x.shape[1], x)


def _full(part: Tensor | None, lead: int, value: Tensor) -> Tensor:
    shape = (lead, *value.shape)
    return value.new_zeros(shape) if part is None else part.expand(shape)


def graph_taylor(
    module: nn.Module, program: Program, x: Tensor, dirs: list[int] | Tensor, order: int
) -> tuple[Tensor, list[Tensor]]:
    """As ``_taylor._mlp_taylor``: the value ``(n, o)`` and derivatives of orders 1..order along
    each direction, each ``(k, n, o)``."""
    v = _directions(dirs, x)
    out = _run(module, program, _Taylor(order), Jet(x, (v,) + (None,) * (order - 1)))
    return out.value, [_full(p, v.shape[0], out.value) for p in out.parts]


def graph_streams(
    module: nn.Module, program: Program, x: Tensor, second: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """As ``_taylor._mlp_streams``: value ``(n, o)``, first derivatives along every axis
    ``(d, n, o)``, pure second derivatives along ``second`` ``(len(second), n, o)``."""
    d = x.shape[1]
    order = second + [i for i in range(d) if i not in second]
    start = Jet(x, (_directions(order, x), None))
    out = _run(module, program, _SecondOrder(len(second), False), start)
    first, pure = out.parts
    back = [0] * d  # position of each axis in ``order``
    for pos, axis in enumerate(order):
        back[axis] = pos
    return out.value, _full(first, d, out.value)[back], _full(pure, len(second), out.value)


def graph_laplacian(
    module: nn.Module,
    program: Program,
    x: Tensor,
    dirs: list[int] | Tensor,
    n_lap: int,
    scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """As ``_taylor._mlp_laplacian``: value ``(n, o)``, first derivatives along each direction
    ``(k, n, o)`` and ``scale * sum`` of the second derivatives along the first ``n_lap``."""
    v = _directions(dirs, x)
    out = _run(module, program, _SecondOrder(n_lap, True, scale), Jet(x, (v, None)))
    first, lap = out.parts
    return (
        out.value,
        _full(first, v.shape[0], out.value),
        torch.zeros_like(out.value) if lap is None else lap.expand_as(out.value),
    )
