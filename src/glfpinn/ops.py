"""Derivative operators for PINN residuals: gradients, Laplacians and higher axis derivatives.

Every operator takes a *field* ``fn`` mapping an ``(n, d)`` tensor to ``(n,)`` or ``(n, 1)``
whose rows are independent (a model, or any callable with that property), and returns
derivatives with respect to the input coordinates that stay differentiable with respect to the
field's parameters (the ``create_graph=True`` semantics a residual loss needs).

Two engines compute the same numbers:

``"taylor"``
    Forward propagation through :class:`glfpinn.nn.MLP`, layer by layer, of the value and its
    derivatives along each direction (univariate Taylor jets, the activation's derivatives in
    closed form). For the Laplacian the second order is summed over directions as it goes (the
    "forward Laplacian"), inside one fused autograd Function per layer whose hand-written
    backward keeps a training step to a few batched matmuls. :class:`glfpinn.nn.Constrained`
    wrappers of an MLP use it for the network and ``torch.func`` for the (small) transform.
``"jvp"``
    ``torch.func`` for any row-wise callable: one reverse pass for the first derivatives, then
    jvps along each direction (forward-over-reverse), ``vmap``-ed over the directions.

``"auto"`` (the default) uses ``"taylor"`` when the field is a supported network and ``"jvp"``
otherwise. Against nested reverse mode (one ``torch.autograd.grad`` per axis), a training step
on ``u_t - Lap u - f`` with a 3x64 tanh MLP and a batch of 1024 measured, on one CPU thread,
1.5x faster at d = 5, 2.6x at d = 20 and 3.2-3.5x at d = 50-100, with 3-7x less memory;
no-grad scoring 3-3.7x faster from d = 20. ``"jvp"`` measured 0.6-0.9x the speed of the nested
loop, which is why it is only the fallback. See ``benchmarks/derivatives.py``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import jvp, vjp

from glfpinn._jet import UnsupportedJetOp, transform_jet
from glfpinn.nn import MLP, Constrained, _Sin

__all__ = [
    "value_and_gradient",
    "laplacian",
    "value_grad_laplacian",
    "axis_jet",
    "gradient_and_axis_jet",
    "axis_derivatives",
    "partial",
    "chunked",
]

Field = Callable[[Tensor], Tensor]
Dims = slice | Sequence[int] | None
Method = Literal["auto", "taylor", "jvp"]
JetMethod = Literal["auto", "taylor", "nested"]

#: Highest derivative order of the closed-form activation derivatives in the "taylor" engine;
#: higher orders fall back to "jvp" under "auto".
MAX_TAYLOR_ORDER = 4

# Faà di Bruno for a univariate composition sigma(z(t)): the k-th derivative is
# sum(coef * sigma^(j)(z) * prod(z^(i) for i in idx)); entries are (coef, j, idx).
_FAA_DI_BRUNO: dict[int, tuple[tuple[int, int, tuple[int, ...]], ...]] = {
    1: ((1, 1, (1,)),),
    2: ((1, 1, (2,)), (1, 2, (1, 1))),
    3: ((1, 1, (3,)), (3, 2, (1, 2)), (1, 3, (1, 1, 1))),
    4: ((1, 1, (4,)), (4, 2, (1, 3)), (3, 2, (2, 2)), (6, 3, (1, 1, 2)), (1, 4, (1, 1, 1, 1))),
}


# --------------------------------------------------------------------------------------------
# small helpers


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


def _activation_kind(act: nn.Module) -> str | None:
    if isinstance(act, nn.Tanh):
        return "tanh"
    if isinstance(act, _Sin):
        return "sin"
    if isinstance(act, nn.SiLU):
        return "silu"
    if isinstance(act, nn.GELU) and act.approximate == "none":
        return "gelu"
    return None


def _taylor_plan(fn: Field) -> tuple[MLP, str, Callable[[Tensor, Tensor], Tensor] | None] | None:
    """The network, activation and transform when ``fn`` is something the Taylor engine knows.

    Subclasses that override ``forward`` are refused: the engine reimplements the stock forward.
    """
    transform = None
    net: object = fn
    if isinstance(fn, Constrained) and type(fn).forward is Constrained.forward:
        net, transform = fn.net, fn.transform
    if not (isinstance(net, MLP) and type(net).forward is MLP.forward):
        return None
    kind = _activation_kind(net.activation)
    if kind is None or (transform is None and net.out_dim != 1):
        return None
    return net, kind, transform


def _resolve(fn: Field, method: str, order: int) -> str:
    if method not in ("auto", "taylor", "jvp"):
        raise ValueError(f"method={method!r}; allowed: 'auto', 'taylor', 'jvp'")
    if method == "jvp":
        return "jvp"
    ok = _taylor_plan(fn) is not None and order <= MAX_TAYLOR_ORDER
    if method == "taylor" and not ok:
        raise ValueError(
            "method='taylor' needs an MLP (or Constrained(MLP)) with activation tanh, sin, silu "
            f"or exact gelu, scalar output and order <= {MAX_TAYLOR_ORDER}; use 'jvp' or 'auto'"
        )
    return "taylor" if ok else "jvp"


# --------------------------------------------------------------------------------------------
# closed-form activation derivatives


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


# --------------------------------------------------------------------------------------------
# the "taylor" engine: propagation through the MLP


def _first_layer(weight: Tensor, dirs: list[int] | Tensor) -> Tensor:
    """Directional derivative of the first pre-activation: a column gather for axis directions."""
    if isinstance(dirs, Tensor):
        return dirs @ weight.T  # (k, n, d) @ (d, w)
    return weight[:, dirs].T.contiguous().unsqueeze(1)  # (k, 1, w); contiguous for the matmuls


def _mlp_taylor(
    net: MLP, kind: str, x: Tensor, dirs: list[int] | Tensor, order: int
) -> tuple[Tensor, list[Tensor]]:
    """Network value ``(n, o)`` and its derivatives of orders 1..order along each direction,
    each ``(k, n, o)``."""
    layers = net.layers
    h = F.linear(x, layers[0].weight, layers[0].bias)
    a: list[Tensor | None] = [_first_layer(layers[0].weight, dirs)] + [None] * (order - 1)
    for layer in layers[1:]:
        s = _activation_derivatives(kind, h, order)
        a = _compose_activation(s, a)
        h = F.linear(s[0], layer.weight, layer.bias)
        a = [None if t is None else F.linear(t, layer.weight) for t in a]
    shape = (a[0].shape[0], h.shape[0], h.shape[1])
    return h, [h.new_zeros(shape) if t is None else t.expand(shape) for t in a]


def _mlp_streams(
    net: MLP, kind: str, x: Tensor, second: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """Value ``(n, o)``, all first derivatives ``(d, n, o)`` and the pure second derivatives
    along the axes ``second`` ``(len(second), n, o)``: the jet 2-D evolution equations need.

    Four streams go through each layer: the value, the first derivatives along ``second``, those
    along the other axes, and the second derivatives, each its own matmul. Stacking them into
    one tensor measured slower on the CPU, because the concatenation and the slicing of the
    result (whose backward zero-fills the whole stack) move more memory than the matmuls save.
    The graph is first order (no ``torch.autograd.grad`` inside), so ``torch.compile`` can fuse
    it.
    """
    layers = net.layers
    w0 = layers[0].weight
    d = w0.shape[1]
    rest = [i for i in range(d) if i not in second]
    z = F.linear(x, w0, layers[0].bias)
    # first-layer derivatives along each axis: weight columns, broadcast over the points
    a1s, a1r = w0[:, second].T.unsqueeze(1), w0[:, rest].T.unsqueeze(1)
    a2: Tensor | None = None
    for layer in layers[1:]:
        s0, s1, s2 = _activation_derivatives(kind, z, 2)
        curv = s2 * (a1s * a1s)
        d2 = curv if a2 is None else s1 * a2 + curv
        z = F.linear(s0, layer.weight, layer.bias)
        a1s, a1r = F.linear(s1 * a1s, layer.weight), F.linear(s1 * a1r, layer.weight)
        a2 = F.linear(d2, layer.weight)
    shape = z.shape
    if a2 is None:  # a single affine layer has no curvature
        a2 = z.new_zeros(len(second), *shape)
    a1 = torch.cat([a1s.expand(len(second), *shape), a1r.expand(len(rest), *shape)])
    back = [0] * d  # position of each axis in second + rest
    for pos, axis in enumerate(second + rest):
        back[axis] = pos
    return z, a1[back], a2


#: Rows (directions x points) per block in the CPU loops of ``_LaplacianLayer``: about 1 MiB of
#: float32 at width 64, so a block's intermediates stay in cache between the element-wise ops and
#: the matmul that consumes them (a d = 20 training step measured 1.4x faster than unblocked).
#: On other devices one block covers everything.
CPU_BLOCK_ROWS = 4096


def _blocks(k: int, n: int, device: torch.device) -> list[slice]:
    if device.type != "cpu":
        return [slice(0, k)]
    step = max(1, CPU_BLOCK_ROWS // max(n, 1))
    return [slice(i, min(i + step, k)) for i in range(0, k, step)]


def _laplacian_layer_reference(
    z: Tensor,
    a: Tensor,
    lap: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    kind: str,
    n_lap: int,
    scale: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """Plain-autograd version of ``_LaplacianLayer`` (its double backward goes through this)."""
    s = _activation_derivatives(kind, z, 2)
    q = (a[:n_lap] * a[:n_lap]).sum(0) * scale
    mid = s[2] * q if lap is None else s[2] * q + s[1] * lap
    a_out = F.linear(s[1] * a, weight)
    return F.linear(s[0], weight, bias), a_out, F.linear(mid, weight)


def _is_broadcast(a: Tensor, s1: Tensor) -> bool:
    """First layer with axis directions: the tangents are the same for every row."""
    return a.shape[1] == 1 and s1.shape[0] != 1


def _tangents_forward(
    a: Tensor, s1: Tensor, weight: Tensor, n_lap: int, inplace: bool = False
) -> tuple[Tensor, Tensor]:
    """``a' = W (sigma' a)`` for every direction and ``q = sum_{i < n_lap} a_i^2`` (unscaled).

    ``inplace`` overwrites ``a`` block by block (each output block depends only on the same
    input block), for scoring where nothing keeps ``a`` for a backward pass.
    """
    k, n, o = a.shape[0], s1.shape[0], weight.shape[0]
    if _is_broadcast(a, s1):
        # a'_i = (s1 * a_i) W^T = s1 (a_i[:, None] * W^T): one batched GEMM, no (k, n, w) temporary
        a2 = a[:, 0]
        q = (a2[:n_lap] * a2[:n_lap]).sum(0, keepdim=True)
        return torch.matmul(s1, a2[:, :, None] * weight.T), q
    q = torch.zeros_like(s1)
    a_out = a if inplace and o == a.shape[-1] else s1.new_empty(k, n, o)
    for blk in _blocks(k, n, s1.device):
        a_b = a[blk]
        for i in range(min(blk.stop, n_lap) - blk.start):  # in place: no (G, n, w) temporary
            q.addcmul_(a_b[i], a_b[i])
        torch.matmul(a_b * s1, weight.T, out=a_out[blk])
    return a_out, q


def _tangents_backward(
    a: Tensor, s1: Tensor, weight: Tensor, ga_out: Tensor, coef: Tensor, n_lap: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Backward of ``_tangents_forward`` plus the ``q`` term (``coef * a_i`` for i < n_lap).

    Returns the gradient for ``a``, ``inner = sum_i (W^T ga'_i) * a_i`` (which the caller turns
    into the gradient for z via sigma'') and the tangents' share of the weight gradient.
    """
    k, n, o = a.shape[0], s1.shape[0], weight.shape[0]
    if _is_broadcast(a, s1):
        # everything follows from M_i = ga'_i^T s1 (o, w) and one GEMM for `inner`
        a2 = a[:, 0]
        m = torch.matmul(ga_out.transpose(1, 2), s1)
        g_weight = (m * a2[:, None, :]).sum(0)
        g_a2 = (m * weight).sum(1)
        g_a2[:n_lap] += a2[:n_lap] * coef.sum(0)
        w_a = weight * a2[:, None, :]  # (k, o, w)
        inner = torch.zeros_like(s1)
        for i in range(k):  # accumulating in place beats one GEMM on a transposed copy
            inner.addmm_(ga_out[i], w_a[i])
        return g_a2.unsqueeze(1), inner, g_weight
    g_a = torch.empty_like(a)
    if o == 1:
        # W is a row vector: W^T ga'_i = ga'_i w, so no GEMM at all
        w = weight[0]
        w_s1 = w * s1
        p = torch.zeros_like(s1)  # sum_i ga'_i a_i
        for blk in _blocks(k, n, s1.device):
            a_b, go = a[blk], ga_out[blk]
            for i in range(a_b.shape[0]):
                p.addcmul_(go[i], a_b[i])
            torch.mul(go, w_s1, out=g_a[blk])
            m = max(0, n_lap - blk.start)
            if m:
                g_a[blk][:m].addcmul_(coef, a_b[:m])
        return g_a, p * w, (p * s1).sum(0, keepdim=True)
    g_weight = weight.new_zeros(weight.shape)
    inner = torch.zeros_like(s1)
    for blk in _blocks(k, n, s1.device):
        a_b, go = a[blk], ga_out[blk]
        b = a_b * s1  # recomputed: cheaper than keeping it from the forward
        g_weight.addmm_(go.reshape(-1, o).T, b.reshape(-1, b.shape[-1]))
        gb = go @ weight
        for i in range(a_b.shape[0]):
            inner.addcmul_(gb[i], a_b[i])
        gab = torch.mul(gb, s1, out=g_a[blk])
        m = max(0, n_lap - blk.start)
        if m:
            gab[:m].addcmul_(coef, a_b[:m])
    return g_a, inner, g_weight


class _LaplacianLayer(torch.autograd.Function):
    """Activation then Linear, applied to a pre-activation's value ``z (n, w)``, its first
    derivatives along k directions ``a (k, n | 1, w)`` and its summed second derivative
    ``lap (n, w)`` (``None`` at the first layer, where it is zero):

        z' = W sigma(z) + b,   a' = W (sigma'(z) a),   lap' = W (sigma'(z) lap + sigma''(z) q),
        q = scale * sum_{i < n_lap} a_i^2.

    One Function because with plain autograd a training step spent more time on element-wise
    passes over the large ``(k, n, w)`` tensors (and their bookkeeping) than on the matmuls:
    here each block of directions is scaled, squared, multiplied and (in the backward) reduced
    while it is in cache, of the large tensors only ``a`` is saved, and ``sigma'(z) a`` is
    recomputed rather than stored (a training step measured about 1.3x faster than with the
    same arithmetic in plain autograd). Under ``create_graph=True`` the backward differentiates
    ``_laplacian_layer_reference`` instead, so higher-order gradients stay exact.
    """

    @staticmethod
    def forward(
        z: Tensor,
        a: Tensor,
        lap: Tensor | None,
        weight: Tensor,
        bias: Tensor | None,
        kind: str,
        n_lap: int,
        scale: float,
    ) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        # q and sigma(z) are returned (non-differentiable) only so the backward can reuse them
        return _laplacian_layer_forward(z, a, lap, weight, bias, kind, n_lap, scale, False)

    @staticmethod
    def setup_context(ctx: Any, inputs: tuple[Any, ...], output: tuple[Tensor, ...]) -> None:
        z, a, lap, weight, bias, kind, n_lap, scale = inputs
        ctx.mark_non_differentiable(output[3], output[4])
        ctx.save_for_backward(z, a, lap, weight, bias, output[3], output[4])
        ctx.kind, ctx.n_lap, ctx.scale = kind, n_lap, scale

    @staticmethod
    def backward(
        ctx: Any, gh: Tensor, ga_out: Tensor, glap: Tensor, *_: Tensor
    ) -> tuple[Tensor | None, ...]:
        z, a, lap, weight, bias, q, value = ctx.saved_tensors
        kind, n_lap, scale = ctx.kind, ctx.n_lap, ctx.scale
        if torch.is_grad_enabled():
            return _LaplacianLayer._differentiable_backward(ctx, gh, ga_out, glap)
        s0, s1, s2, s3 = _activation_derivatives(kind, z, 3, value)
        mid = s2 * q if lap is None else torch.addcmul(s2 * q, s1, lap)
        # value and Laplacian streams: (n, w), cheap
        g_weight = gh.T @ s0
        g_weight.addmm_(glap.T, mid)
        g_bias = None if bias is None else gh.sum(0)
        gm = glap @ weight
        gz = (gh @ weight) * s1
        gz += gm * (s3 * q if lap is None else torch.addcmul(s3 * q, s2, lap))
        g_lap = None if lap is None else gm * s1
        coef = (2.0 * scale) * (gm * s2)  # d lap' / d a_i = 2 scale W^T(glap) sigma'' a_i
        g_a, inner, g_w = _tangents_backward(a, s1, weight, ga_out, coef, n_lap)
        g_weight += g_w
        gz += inner * s2
        return gz, g_a, g_lap, g_weight, g_bias, None, None, None

    @staticmethod
    def _differentiable_backward(
        ctx: Any, gh: Tensor, ga_out: Tensor, glap: Tensor
    ) -> tuple[Tensor | None, ...]:
        z, a, lap, weight, bias, _, _ = ctx.saved_tensors
        inputs = [z, a, lap, weight, bias]
        wanted = [i for i, t in enumerate(inputs) if t is not None and ctx.needs_input_grad[i]]
        outs = _laplacian_layer_reference(z, a, lap, weight, bias, ctx.kind, ctx.n_lap, ctx.scale)
        grads = torch.autograd.grad(
            outs,
            [inputs[i] for i in wanted],
            (gh, ga_out, glap),
            create_graph=True,
            allow_unused=True,
            materialize_grads=True,
        )
        result: list[Tensor | None] = [None] * 8
        for i, g in zip(wanted, grads, strict=True):
            result[i] = g
        return tuple(result)


def _laplacian_layer_forward(
    z: Tensor,
    a: Tensor,
    lap: Tensor | None,
    weight: Tensor,
    bias: Tensor | None,
    kind: str,
    n_lap: int,
    scale: float,
    inplace: bool,
) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
    """The arithmetic of ``_LaplacianLayer.forward``, plus ``q`` and ``sigma(z)``."""
    s0, s1, s2 = _activation_derivatives(kind, z, 2)
    a_out, q = _tangents_forward(a, s1, weight, n_lap, inplace)
    if scale != 1.0:
        q *= scale
    mid = s2 * q if lap is None else torch.addcmul(s2 * q, s1, lap)
    return F.linear(s0, weight, bias), a_out, F.linear(mid, weight), q, s0


def _records_graph(fn: Field, x: Tensor) -> bool:
    """Whether autograd would record: if not (scoring), buffers can be reused and rows split."""
    if not torch.is_grad_enabled():
        return False
    ps = fn.parameters() if isinstance(fn, nn.Module) else ()
    return x.requires_grad or any(p.requires_grad for p in ps)


def _mlp_laplacian(
    net: MLP, kind: str, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Value ``(n, o)``, first derivatives along each direction ``(k, n, o)`` and
    ``scale * sum`` of the second derivatives along the first ``n_lap`` directions ``(n, o)``.

    Summing the second order as it propagates is what makes this cheaper than per-direction
    jets: the Laplacian's update ``sigma' L + sigma'' sum_i (dz/dx_i)^2`` only needs the sum.
    """
    layers = net.layers
    h = F.linear(x, layers[0].weight, layers[0].bias)
    a1 = _first_layer(layers[0].weight, dirs)
    lap: Tensor | None = None
    record = _records_graph(net, x)
    for layer in layers[1:]:
        args = (h, a1, lap, layer.weight, layer.bias, kind, n_lap, scale)
        if record:
            h, a1, lap, _, _ = _LaplacianLayer.apply(*args)
        else:  # a1 is ours from the second layer on: overwrite it rather than allocate
            h, a1, lap, _, _ = _laplacian_layer_forward(*args, a1.shape[1] != 1)
    if lap is None:  # a single affine layer has no curvature
        lap = torch.zeros_like(h)
    return h, a1.expand(a1.shape[0], h.shape[0], h.shape[1]), lap


# --------------------------------------------------------------------------------------------
# the "jvp" engine and the transform of Constrained


def _nested_derivatives(h: Callable[[Tensor], Tensor], s: Tensor, order: int) -> tuple[Tensor, ...]:
    """``(h(s), h'(s), ..., h^(order)(s))`` for a row-wise ``h`` by nesting forward mode.

    Forward mode (rather than reverse) because each row needs a derivative along one scalar
    parameter, which is exactly one jvp, and because it composes with the outer backward pass.
    """
    if order == 0:
        return (h(s),)
    primals, tangents = jvp(
        lambda t: _nested_derivatives(h, t, order - 1), (s,), (torch.ones_like(s),)
    )
    return (*primals, tangents[-1])


def _stack(t: Tensor, k: int, n: int) -> Tensor:
    """``(n, c)`` or ``(k | 1, n | 1, c)`` -> ``(k * n, c)``: directions become extra rows."""
    if t.dim() == 2:
        t = t.unsqueeze(0)
    return t.expand(k, n, t.shape[-1]).reshape(k * n, t.shape[-1])


def _directions_full(dirs: list[int] | Tensor, d: int, like: Tensor) -> Tensor:
    return dirs if isinstance(dirs, Tensor) else _one_hot(dirs, d, like)


def _line_derivatives(
    fn: Field,
    x: Tensor,
    dirs: list[int] | Tensor,
    order: int,
    transform: Callable[[Tensor, Tensor], Tensor] | None = None,
    v_jet: Sequence[Tensor] = (),
) -> list[Tensor]:
    """Derivatives 0..order of ``t -> fn(x + t v_k)`` for each direction, as ``(k, n)`` tensors.

    With ``transform`` the field is ``transform(y, net(y))`` and ``v_jet`` holds the network's
    value and its per-direction derivatives; the network is then replaced by its Taylor
    polynomial, which has the same derivatives up to ``order`` at t = 0 and costs nothing.
    """
    if not torch.is_grad_enabled():  # see _generic_derivatives
        with torch.enable_grad():
            out = _line_derivatives(fn, x, dirs, order, transform, v_jet)
        return [t.detach() for t in out]
    n, d = x.shape
    full = _directions_full(dirs, d, x)
    k = full.shape[0]
    xs, vs = _stack(x, k, n), _stack(full, k, n)
    if transform is None:

        def h(s: Tensor) -> Tensor:
            return _flat(fn(xs + s[:, None] * vs), k * n)
    else:
        coeffs = [_stack(c, k, n) for c in v_jet]

        def h(s: Tensor) -> Tensor:
            sc = s[:, None]
            poly = coeffs[-1]
            for j in range(len(coeffs) - 1, 0, -1):  # Horner for sum_j s^j / j! * v_j
                poly = coeffs[j - 1] + (sc / j) * poly
            return _flat(transform(xs + sc * vs, poly), k * n)

    s0 = torch.zeros(k * n, dtype=x.dtype, device=x.device)
    return [t.reshape(k, n) for t in _nested_derivatives(h, s0, order)]


def _generic_derivatives(
    fn: Field, x: Tensor, dirs: list[int] | Tensor, order: int
) -> list[Tensor]:
    """``[u (n,), D1 (k, n), ..., D_order (k, n)]`` for any row-wise callable.

    The first derivative along v is ``grad u . v`` from one reverse pass, shared by all
    directions; each further order is one jvp along v (forward-over-reverse), ``vmap``-ed over
    the directions so that the primal computation is not repeated per direction. This measured
    about 3x faster than nesting forward mode only. Callables that ``vmap`` cannot trace fall
    back to forward-mode nesting with the directions stacked as rows.
    """
    n, d = x.shape
    full = _directions_full(dirs, d, x)
    k = full.shape[0]

    def f(y: Tensor) -> Tensor:
        return _flat(fn(y), n)

    def along(v: Tensor) -> tuple[Tensor, ...]:
        def first(y: Tensor) -> tuple[Tensor, Tensor]:
            u, pull = vjp(f, y)
            (g,) = pull(torch.ones_like(u))
            return u, (g * v).sum(-1)

        def nest(y: Tensor, j: int) -> tuple[Tensor, ...]:
            if j == 1:
                return first(y)
            primals, tangents = jvp(lambda z: nest(z, j - 1), (y,), (v,))
            return (*primals, tangents[-1])

        return nest(x, order)

    if not torch.is_grad_enabled():
        # some fused kernels (e.g. silu) lack forward-mode formulas for their backward under
        # no_grad but decompose under grad mode; nothing is kept since the results are detached
        with torch.enable_grad():
            return [t.detach() for t in _generic_derivatives(fn, x, dirs, order)]
    try:
        out = torch.func.vmap(along)(full.expand(k, n, d))
    except (RuntimeError, NotImplementedError, ValueError):
        out = _line_derivatives(fn, x, dirs, order)
    return [out[0][0], *out[1:]]


# --------------------------------------------------------------------------------------------
# dispatch


#: Directions x rows per piece when an operator runs without a graph (scoring) on CPU: the rows
#: are processed in pieces so that the ``(k, rows, width)`` buffers stay around 8 MiB, which
#: bounds memory independently of the caller's chunk size and of k, and keeps the buffers below
#: the size glibc serves with fresh (page-faulted) mappings. Measured 1.5-2x faster scoring.
NO_GRAD_PIECE = 32768


def _pieces(fn: Field, x: Tensor, dirs: list[int] | Tensor) -> list[slice]:
    k = dirs.shape[0] if isinstance(dirs, Tensor) else len(dirs)
    rows = max(1, NO_GRAD_PIECE // max(k, 1))
    n = x.shape[0]
    if n <= rows or x.device.type != "cpu" or _records_graph(fn, x):
        return [slice(0, n)]
    return [slice(i, min(i + rows, n)) for i in range(0, n, rows)]


def _rows(dirs: list[int] | Tensor, sl: slice) -> list[int] | Tensor:
    if isinstance(dirs, Tensor) and dirs.shape[1] != 1:
        return dirs[:, sl]
    return dirs


def _jet(fn: Field, x: Tensor, dirs: list[int] | Tensor, order: int, method: str) -> list[Tensor]:
    """``[u (n,), D1 (k, n), ..., D_order (k, n)]``: derivatives along each direction."""
    engine = _generic_derivatives if _resolve(fn, method, order) == "jvp" else _taylor_jet
    parts = [engine(fn, x[sl], _rows(dirs, sl), order) for sl in _pieces(fn, x, dirs)]
    if len(parts) == 1:
        return parts[0]
    return [torch.cat(ts, dim=min(i, 1)) for i, ts in enumerate(zip(*parts, strict=True))]


def _taylor_jet(fn: Field, x: Tensor, dirs: list[int] | Tensor, order: int) -> list[Tensor]:
    net, kind, transform = _taylor_plan(fn)  # type: ignore[misc]
    v, vs = _mlp_taylor(net, kind, x, dirs, order)
    if transform is None:
        return [v[:, 0], *(t[..., 0] for t in vs)]
    out = _line_derivatives(fn, x, dirs, order, transform, [v, *vs])
    return [out[0][0], *out[1:]]


def _lap_jet(
    fn: Field, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float, method: str
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, first derivatives ``(k, n)`` and ``scale * sum`` of the second derivatives
    along the first ``n_lap`` directions ``(n,)``."""
    engine = _generic_lap if _resolve(fn, method, 2) == "jvp" else _taylor_lap
    parts = [engine(fn, x[sl], _rows(dirs, sl), n_lap, scale) for sl in _pieces(fn, x, dirs)]
    if len(parts) == 1:
        return parts[0]
    u, d1, lap = zip(*parts, strict=True)
    return torch.cat(u), torch.cat(d1, dim=1), torch.cat(lap)


def _generic_lap(
    fn: Field, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    u, d1, d2 = _generic_derivatives(fn, x, dirs, 2)
    return u, d1, d2[:n_lap].sum(0) * scale


def _taylor_lap(
    fn: Field, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    net, kind, transform = _taylor_plan(fn)  # type: ignore[misc]
    v, v1, vlap = _mlp_laplacian(net, kind, x, dirs, n_lap, scale)
    if transform is None:
        return v[:, 0], v1[..., 0], vlap[:, 0]
    # u = g(x, v(x)): per direction, the second derivative is the part that depends on the first
    # derivatives of v, plus g_v . v''; the latter is linear in v'' so its sum is g_v . (sum v'').
    _, d1, d2 = _line_derivatives(fn, x, dirs, 2, transform, [v, v1])
    u, corr = jvp(lambda w: _flat(transform(x, w), x.shape[0]), (v,), (vlap,))
    return u, d1, d2[:n_lap].sum(0) * scale + corr


# --------------------------------------------------------------------------------------------
# public API


def value_and_gradient(fn: Field, x: Tensor) -> tuple[Tensor, Tensor]:
    """``u (n,)`` and ``grad u (n, d)``.

    One reverse pass gives all d components at once because rows are independent (the gradient
    of ``sum(u)`` is the row-wise gradient), so the cost does not grow with d. ``torch.func.vjp``
    is used instead of ``torch.autograd.grad`` so that ``x`` needs no ``requires_grad`` and the
    result works under ``torch.no_grad`` too, while staying differentiable w.r.t. parameters.
    """
    n, _ = _check_x(x)
    u, pull = vjp(lambda y: _flat(fn(y), n), x)
    (grad,) = pull(torch.ones_like(u))
    return u, grad


def laplacian(
    fn: Field,
    x: Tensor,
    *,
    method: Literal["auto", "taylor", "jvp", "hutchinson"] = "auto",
    probes: int | None = None,
    generator: torch.Generator | None = None,
    dims: Dims = None,
) -> tuple[Tensor, Tensor]:
    """``u (n,)`` and the Laplacian over the coordinates ``dims`` (all by default) ``(n,)``.

    Problems with time as the last coordinate pass ``dims=slice(0, -1)``.

    ``method="hutchinson"`` returns the unbiased estimate ``mean_p v_p^T H v_p`` with ``probes``
    Rademacher vectors per row drawn from ``generator`` (required, so that no global RNG state is
    consumed and a seed reproduces the estimate); it costs ``probes`` directions instead of
    ``len(dims)``, which pays off only when ``probes << len(dims)``. Rows get independent probes.
    """
    n, d = _check_x(x)
    axes = _axes(dims, d)
    if method == "hutchinson":
        if generator is None:
            raise ValueError("method='hutchinson' needs an explicit torch.Generator")
        if probes is None or int(probes) < 1:
            raise ValueError(f"method='hutchinson' needs probes >= 1; got {probes}")
        signs = torch.randint(
            0, 2, (int(probes), n, len(axes)), generator=generator, device=generator.device
        )
        v = torch.zeros(int(probes), n, d, dtype=x.dtype, device=x.device)
        v[:, :, axes] = (2 * signs - 1).to(device=x.device, dtype=x.dtype)
        u, _, lap = _lap_jet(fn, x, v, int(probes), 1.0 / int(probes), "auto")
        return u, lap
    if probes is not None or generator is not None:
        raise ValueError("probes and generator only apply to method='hutchinson'")
    if not axes:
        u = _flat(fn(x), n)
        return u, torch.zeros_like(u)
    u, _, lap = _lap_jet(fn, x, axes, len(axes), 1.0, method)
    return u, lap


def value_grad_laplacian(
    fn: Field, x: Tensor, *, dims: Dims = None, method: Method = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, ``grad u (n, d)`` over all coordinates, and the Laplacian over ``dims``.

    One pass for parabolic residuals such as ``u_t - Lap u - f``: the Laplacian's propagation
    already carries the first derivatives along ``dims``, so the time derivative (and any other
    coordinate) costs one extra direction rather than another pass over the network.
    """
    n, d = _check_x(x)
    axes = _axes(dims, d)
    order = axes + [i for i in range(d) if i not in set(axes)]
    u, d1, lap = _lap_jet(fn, x, order, len(axes), 1.0, method)
    inverse = torch.argsort(torch.tensor(order, device=x.device))
    return u, d1.T[:, inverse], lap


def gradient_and_axis_jet(
    fn: Field, x: Tensor, order: int, dims: Dims = None, *, method: JetMethod = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, the full gradient ``(n, d)``, and ``D (order - 1, n, len(dims))`` with
    ``D[k - 2, :, j] = d^k u / dx_{dims[j]}^k`` for k = 2 .. order.

    What 2-D evolution equations need (u_t from the gradient, u_xx along the space axis).
    Two engines:

    ``"nested"``
        Nested reverse mode: one reverse pass for the gradient, one per extra order and axis;
        any order, any row-wise field. In eager mode ``"taylor"`` is only 3-6% faster with
        few input coordinates (allen-cahn and burgers steps, ``benchmarks/compile_speedup.py``).
    ``"taylor"`` (order 2, networks the Taylor engine knows)
        The value, first and pure second derivatives propagate through the network as
        streams, and a :class:`~glfpinn.nn.Constrained` transform is evaluated once on
        second-order Taylor jets (``glfpinn._jet``; if it uses an operation the jets lack,
        the generic route of the ``"taylor"`` engine: forward mode through the transform with
        the network replaced by its Taylor polynomial, correct but not compilable). With the
        jets, no ``torch.autograd.grad`` inside: a first-order graph, which ``torch.compile``
        can compile (a double backward it cannot).

    ``"auto"`` uses ``"taylor"`` while ``torch.compile`` traces (``Trainer(compile=True)``)
    and ``"nested"`` otherwise.
    """
    n, d = _check_x(x)
    if int(order) < 2:
        raise ValueError(f"order must be >= 2; got {order}")
    if method not in ("auto", "taylor", "nested"):
        raise ValueError(f"method={method!r}; allowed: 'auto', 'taylor', 'nested'")
    axes = _axes(dims, d)
    plan = _taylor_plan(fn)
    streams = plan is not None and int(order) == 2
    if method == "taylor" and not streams:
        raise ValueError(
            "method='taylor' needs order 2 and an MLP (or Constrained(MLP)) with activation "
            f"tanh, sin, silu or exact gelu; got order {order}, {type(fn).__name__}"
        )
    if method == "nested":
        streams = False
    elif method == "auto":
        streams = streams and torch.compiler.is_compiling()
    with torch.enable_grad():
        if streams:
            return _streams_gradient_and_jet(plan, x, axes)  # type: ignore[arg-type]
        return _nested_gradient_and_jet(fn, x, int(order), axes)


def _nested_gradient_and_jet(
    fn: Field, x: Tensor, order: int, axes: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    if not x.requires_grad:
        x = x.detach().requires_grad_(True)
    u = _flat(fn(x), x.shape[0])
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    current = [grad[:, i] for i in axes]
    higher = []
    for _ in range(2, order + 1):
        current = [
            torch.autograd.grad(c.sum(), x, create_graph=True)[0][:, i]
            for c, i in zip(current, axes, strict=True)
        ]
        higher.append(torch.stack(current, dim=1) if current else u.new_zeros(u.shape[0], 0))
    return u, grad, torch.stack(higher)


def _streams_gradient_and_jet(
    plan: tuple[MLP, str, Callable[[Tensor, Tensor], Tensor] | None], x: Tensor, axes: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    net, kind, transform = plan
    n, n_axes = x.shape
    v, d1, d2 = _mlp_streams(net, kind, x, axes)
    if transform is None:
        return v[:, 0], d1[..., 0].T, d2[..., 0].T.unsqueeze(0)
    try:
        u, grad, second = transform_jet(transform, x, v, d1, d2, axes)
        return u, grad, second.unsqueeze(0)
    except UnsupportedJetOp:  # the generic Taylor-polynomial route (forward mode, not compilable)
        u, d1u = _line_derivatives(transform, x, list(range(n_axes)), 1, transform, [v, d1])
        if not axes:
            return u[0], d1u.T, u.new_zeros(1, n, 0)
        _, _, d2u = _line_derivatives(transform, x, axes, 2, transform, [v, d1[axes], d2])
        return u[0], d1u.T, d2u.T.unsqueeze(0)


def axis_jet(
    fn: Field, x: Tensor, order: int, dims: Dims = None, *, method: Method = "auto"
) -> tuple[Tensor, Tensor]:
    """``u (n,)`` and ``D (order, n, len(dims))`` with ``D[k - 1, :, j] = d^k u / dx_{dims[j]}^k``.

    All orders along an axis come out of one propagation, e.g. Burgers' ``u_x, u_t, u_xx``
    from ``axis_jet(model, x, 2)`` (``u_tt`` is a by-product).
    """
    n, d = _check_x(x)
    if int(order) < 1:
        raise ValueError(f"order must be >= 1; got {order}")
    axes = _axes(dims, d)
    if not axes:
        u = _flat(fn(x), n)
        return u, u.new_zeros(int(order), n, 0)
    u, *ds = _jet(fn, x, axes, int(order), method)
    return u, torch.stack([t.T for t in ds])


def axis_derivatives(
    fn: Field, x: Tensor, order: int, dims: Dims = None, *, method: Method = "auto"
) -> Tensor:
    """``(n, len(dims))``: the ``order``-th derivative along each axis, ``d^k u / dx_i^k``.

    Only pure (not mixed) derivatives, because that is what sums like the Laplacian or the
    dispersive term ``sum_i d^3 u / dx_i^3`` need and it keeps the cost linear in ``len(dims)``.
    """
    return axis_jet(fn, x, order, dims, method=method)[1][-1]


def partial(fn: Field, x: Tensor, axis: int, order: int = 1, *, method: Method = "auto") -> Tensor:
    """``d^order u / dx_axis^order`` as ``(n,)``: one direction, so about the cost of a forward."""
    return axis_jet(fn, x, order, [axis], method=method)[1][-1, :, 0]


def chunked(fn: Callable[[Tensor], Tensor], x: Tensor, chunk_size: int) -> Tensor:
    """``fn(x)`` evaluated on row chunks of at most ``chunk_size`` and concatenated along dim 0.

    Peak memory then scales with ``chunk_size`` instead of ``len(x)``, which is what scoring
    10^5..10^6 candidate points needs. Gradient tracking is left to the caller: wrap the call in
    ``torch.no_grad()`` when only the values are wanted, otherwise every chunk's graph is kept
    alive by the concatenated result and nothing is saved. ``fn`` must be row-wise.
    """
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1; got {chunk_size}")
    if x.shape[0] <= chunk_size:
        return fn(x)
    return torch.cat([fn(c) for c in torch.split(x, chunk_size)], dim=0)
