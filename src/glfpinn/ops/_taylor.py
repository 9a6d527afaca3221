"""The "taylor" engine: derivatives propagated forward through a network layer by layer.

A network the plan recognises (``_common._taylor_plan``) is a chain of affine maps and
activations. Along each direction the value and its derivatives go through it as univariate
Taylor jets, the activations' derivatives in closed form (``_mlp_taylor``); the Laplacian sums
the second order over directions as it goes, in one fused autograd Function per layer
(``_mlp_laplacian``); ``gradient_and_axis_jet`` at order 2 propagates the value, the gradient
and the pure second derivatives as separate streams (``_mlp_streams``). Any other network the
plan accepts is a traced program, which ``_graph.py`` propagates the same quantities through.
A :class:`~glfpinn.nn.Constrained` transform is then applied by the jet arithmetic of ``_jet``
or, for operations it lacks, through ``torch.func`` to the network's Taylor polynomial (or,
while ``torch.compile`` traces, by the generic engine, which compiles).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch.func import jvp

from glfpinn.ops._activations import _activation_derivatives, _compose_activation
from glfpinn.ops._common import Field, Plan, _flat
from glfpinn.ops._graph import graph_laplacian, graph_streams, graph_taylor
from glfpinn.ops._jet import UnsupportedJetOp, directional_jet, transform_jet
from glfpinn.ops._jvp import _directions_full as _directions_of
from glfpinn.ops._jvp import _generic_derivatives, _generic_lap, _line_derivatives

#: Highest derivative order of the closed-form activation derivatives in the "taylor" engine;
#: higher orders fall back to "jvp" under "auto".
MAX_TAYLOR_ORDER = 4

# --------------------------------------------------------------------------------------------
# propagation through the network


def _first_layer(weight: Tensor, dirs: list[int] | Tensor) -> Tensor:
    """Directional derivative of the first pre-activation: a column gather for axis directions."""
    if isinstance(dirs, Tensor):
        return dirs @ weight.T  # (k, n, d) @ (d, w)
    return weight[:, dirs].T.contiguous().unsqueeze(1)  # (k, 1, w); contiguous for the matmuls


def _mlp_taylor(
    plan: Plan, x: Tensor, dirs: list[int] | Tensor, order: int
) -> tuple[Tensor, list[Tensor]]:
    """Network value ``(n, o)`` and its derivatives of orders 1..order along each direction,
    each ``(k, n, o)``."""
    if plan.program is not None:
        return graph_taylor(plan.module, plan.program, x, dirs, order)  # type: ignore[arg-type]
    (w0, b0), *rest = plan.layers
    h = F.linear(x, w0, b0)
    a: list[Tensor | None] = [_first_layer(w0, dirs)] + [None] * (order - 1)
    for (weight, bias), kind in zip(rest, plan.kinds, strict=True):
        s = _activation_derivatives(kind, h, order)
        a = _compose_activation(s, a)
        h = F.linear(s[0], weight, bias)
        a = [None if t is None else F.linear(t, weight) for t in a]
    shape = (a[0].shape[0], h.shape[0], h.shape[1])
    return h, [h.new_zeros(shape) if t is None else t.expand(shape) for t in a]


def _mlp_streams(plan: Plan, x: Tensor, second: list[int]) -> tuple[Tensor, Tensor, Tensor]:
    """Value ``(n, o)``, all first derivatives ``(d, n, o)`` and the pure second derivatives
    along the axes ``second`` ``(len(second), n, o)``: the jet 2-D evolution equations need.

    Four streams go through each layer: the value, the first derivatives along ``second``, those
    along the other axes, and the second derivatives, each its own matmul. Stacking them into
    one tensor measured slower on the CPU, because the concatenation and the slicing of the
    result (whose backward zero-fills the whole stack) move more memory than the matmuls save.
    The graph is first order (no ``torch.autograd.grad`` inside), so ``torch.compile`` can fuse
    it.
    """
    if plan.program is not None:
        return graph_streams(plan.module, plan.program, x, second)  # type: ignore[arg-type]
    (w0, b0), *layers = plan.layers
    d = w0.shape[1]
    rest = [i for i in range(d) if i not in second]
    z = F.linear(x, w0, b0)
    # first-layer derivatives along each axis: weight columns, broadcast over the points
    a1s, a1r = w0[:, second].T.unsqueeze(1), w0[:, rest].T.unsqueeze(1)
    a2: Tensor | None = None
    for (weight, bias), kind in zip(layers, plan.kinds, strict=True):
        s0, s1, s2 = _activation_derivatives(kind, z, 2)
        curv = s2 * (a1s * a1s)
        d2 = curv if a2 is None else s1 * a2 + curv
        z = F.linear(s0, weight, bias)
        a1s, a1r = F.linear(s1 * a1s, weight), F.linear(s1 * a1r, weight)
        a2 = F.linear(d2, weight)
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


def _mlp_laplacian(
    plan: Plan, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    """Value ``(n, o)``, first derivatives along each direction ``(k, n, o)`` and
    ``scale * sum`` of the second derivatives along the first ``n_lap`` directions ``(n, o)``.

    Summing the second order as it propagates is what makes this cheaper than per-direction
    jets: the Laplacian's update ``sigma' L + sigma'' sum_i (dz/dx_i)^2`` only needs the sum.
    """
    if plan.program is not None:
        return graph_laplacian(plan.module, plan.program, x, dirs, n_lap, scale)  # type: ignore[arg-type]
    (w0, b0), *layers = plan.layers
    h = F.linear(x, w0, b0)
    a1 = _first_layer(w0, dirs)
    lap: Tensor | None = None
    # whether autograd records: if not (scoring), buffers can be reused
    record = torch.is_grad_enabled() and (
        x.requires_grad or any(t is not None and t.requires_grad for ab in plan.layers for t in ab)
    )
    for (weight, bias), kind in zip(layers, plan.kinds, strict=True):
        args = (h, a1, lap, weight, bias, kind, n_lap, scale)
        if record:
            h, a1, lap, _, _ = _LaplacianLayer.apply(*args)
        else:  # a1 is ours from the second layer on: overwrite it rather than allocate
            h, a1, lap, _, _ = _laplacian_layer_forward(*args, a1.shape[1] != 1)
    if lap is None:  # a single affine layer has no curvature
        lap = torch.zeros_like(h)
    return h, a1.expand(a1.shape[0], h.shape[0], h.shape[1]), lap


# --------------------------------------------------------------------------------------------
# fields: the network, then the transform of Constrained


def _directions(dirs: list[int] | Tensor, x: Tensor) -> Tensor:
    return _directions_of(dirs, x.shape[1], x)


def _taylor_jet(
    fn: Field, plan: Plan, x: Tensor, dirs: list[int] | Tensor, order: int
) -> list[Tensor]:
    """``[u (n,), D1 (k, n), ..., D_order (k, n)]`` for a field the plan describes."""
    transform = plan.transform
    v, vs = _mlp_taylor(plan, x, dirs, order)
    if transform is None:
        return [v[:, 0], *(t[..., 0] for t in vs)]
    if order <= 2:
        try:
            k = vs[0].shape[0]
            second = vs[1] if order == 2 else None
            u, d1, d2 = directional_jet(
                transform, x, _directions(dirs, x), v, vs[0], second, k if order == 2 else 0
            )
            return [u, d1] if order == 1 else [u, d1, d2]
        except UnsupportedJetOp:
            pass
    if torch.compiler.is_compiling():  # nested forward mode through the transform cannot compile
        return _generic_derivatives(fn, x, dirs, order)
    out = _line_derivatives(fn, x, dirs, order, transform, [v, *vs])
    return [out[0][0], *out[1:]]


def _taylor_lap(
    fn: Field, plan: Plan, x: Tensor, dirs: list[int] | Tensor, n_lap: int, scale: float
) -> tuple[Tensor, Tensor, Tensor]:
    """``u (n,)``, first derivatives ``(k, n)`` and ``scale * sum`` of the second derivatives
    along the first ``n_lap`` directions ``(n,)`` for a field the plan describes."""
    transform = plan.transform
    v, v1, vlap = _mlp_laplacian(plan, x, dirs, n_lap, scale)
    if transform is None:
        return v[:, 0], v1[..., 0], vlap[:, 0]
    # u = g(x, v(x)): per direction, the second derivative is the part that depends on the first
    # derivatives of v, plus g_v . v''; the latter is linear in v'' so its sum is g_v . (sum v''),
    # the first derivative of u along one more direction: x still, v moving by sum v''.
    k = v1.shape[0]
    x_dirs = _directions(dirs, x)
    still = x_dirs.new_zeros(1, *x_dirs.shape[1:])
    try:
        u, d1, d2 = directional_jet(
            transform, x, torch.cat([x_dirs, still]), v, torch.cat([v1, vlap[None]]), None, n_lap
        )
        return u, d1[:k], d2.sum(0) * scale + d1[k]
    except UnsupportedJetOp:
        pass
    if torch.compiler.is_compiling():  # nested forward mode through the transform cannot compile
        return _generic_lap(fn, x, dirs, n_lap, scale)
    _, d1, d2 = _line_derivatives(fn, x, dirs, 2, transform, [v, v1])
    u, corr = jvp(lambda w: _flat(transform(x, w), x.shape[0]), (v,), (vlap,))
    return u, d1, d2[:n_lap].sum(0) * scale + corr


def _streams_gradient_and_jet(
    plan: Plan, x: Tensor, axes: list[int]
) -> tuple[Tensor, Tensor, Tensor]:
    """``gradient_and_axis_jet`` at order 2 by the streams of ``_mlp_streams``."""
    transform = plan.transform
    n, n_axes = x.shape
    v, d1, d2 = _mlp_streams(plan, x, axes)
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
