"""Derivative operators for PINN residuals: gradients, Laplacians and higher axis derivatives.

Every operator takes a *field* ``fn`` mapping an ``(n, d)`` tensor to ``(n,)`` or ``(n, 1)``
whose rows are independent (a model, or any callable with that property), and returns
derivatives with respect to the input coordinates that stay differentiable with respect to the
field's parameters (the ``create_graph=True`` semantics a residual loss needs). The
``outputs_*`` operators (:func:`outputs_value_and_gradient`, :func:`outputs_laplacian`,
:func:`outputs_value_grad_laplacian`) take a *vector* field ``(n, d) -> (n, o)``, a system's
network, and give every output's derivatives at once, with the outputs along a last axis.

Two engines compute the same numbers:

``"taylor"`` (``_taylor.py``)
    Forward propagation through the network, layer by layer, of the value and its derivatives
    along each direction (univariate Taylor jets, the activation's derivatives in closed form).
    For the Laplacian the second order is summed over directions as it goes (the "forward
    Laplacian"), inside one fused autograd Function per layer whose hand-written backward keeps
    a training step to a few batched matmuls. It knows the networks :func:`supports_taylor`
    accepts: :class:`glfpinn.nn.MLP` and ``torch.nn.Sequential`` stacks of ``nn.Linear`` layers
    between tanh, sin, silu or exact gelu activations (one kind per layer), either of them
    optionally starting with :class:`glfpinn.nn.FourierFeatures` (an affine map followed by
    sin), which ``_common.py`` reduces to their list of affine maps and activations; and any
    other module that ``torch.fx`` traces into those operations, sums (skip connections),
    products (gates) and concatenations (:class:`glfpinn.nn.ResidualMLP`,
    :class:`glfpinn.nn.ModifiedMLP`, your own), which ``_graph.py`` turns into a small program
    that the engine runs. Either may be inside :class:`glfpinn.nn.Constrained`, whose (small)
    transform goes through the jet arithmetic of ``_jet.py`` (or ``torch.func`` for operations
    it lacks).
``"jvp"`` (``_jvp.py``)
    ``torch.func`` for any row-wise callable: one reverse pass for the first derivatives, then
    jvps along each direction (forward-over-reverse), ``vmap``-ed over the directions.

``"auto"`` (the default) uses ``"taylor"`` when the field is a supported network and ``"jvp"``
otherwise (``_dispatch.py``): ``"jvp"`` is the general fallback, not the fast path. How the
engines compare with nested reverse mode (one ``torch.autograd.grad`` per axis) in time and
memory is measured by ``benchmarks/derivatives.py``, whose current figures are in
docs/results.md ("Derivative operators against nested autograd"); they are not repeated here,
where they would go stale. :func:`gradient_and_axis_jet` also offers nested reverse mode
itself (``_nested.py``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any, Literal

import torch
from torch import Tensor
from torch.func import vjp

from glfpinn.ops._common import (
    SUPPORTED,
    Dims,
    Field,
    JetMethod,
    Method,
    _axes,
    _check_x,
    _flat,
    _taylor_plan,
)
from glfpinn.ops._dispatch import (
    _jet,
    _lap_jet,
    _outputs_gradient,
    _outputs_lap_jet,
    _resolve_outputs,
)
from glfpinn.ops._jvp import _generic_gradient_and_jet
from glfpinn.ops._nested import _nested_gradient_and_jet
from glfpinn.ops._taylor import _streams_gradient_and_jet

__all__ = [
    "value_and_gradient",
    "laplacian",
    "value_grad_laplacian",
    "outputs_value_and_gradient",
    "outputs_laplacian",
    "outputs_value_grad_laplacian",
    "axis_jet",
    "gradient_and_axis_jet",
    "axis_derivatives",
    "partial_derivative",
    "chunked",
    "supports_taylor",
]


def supports_taylor(model: object, *, outputs: bool = False) -> bool:
    """Whether the fast ``"taylor"`` engines recognise ``model`` (a network, or a
    :class:`~glfpinn.nn.Constrained` network); other fields take the generic engines.

    True for :class:`glfpinn.nn.MLP`, ``torch.nn.Sequential`` stacks ``Linear, act, Linear,
    ..., Linear`` with tanh, sin (``glfpinn.nn``'s), silu or exact gelu activations, and any
    module that ``torch.fx`` traces into ``nn.Linear`` / ``F.linear`` / ``@`` with a parameter,
    those activations (modules or functions), :class:`glfpinn.nn.FourierFeatures`, ``+``,
    ``-``, ``*``, ``/`` by a constant and ``torch.cat`` along the last dimension (residual
    blocks, gates: :class:`glfpinn.nn.ResidualMLP`, :class:`glfpinn.nn.ModifiedMLP`); with a
    scalar output unless wrapped in ``Constrained``. Modules with forward hooks, other
    operations and Python control flow on tensor values are not: they take the generic engines.

    With ``outputs=True``: whether the ``outputs_*`` operators take every output of ``model``
    through the Taylor engine at once, as they do for those networks with any number of
    outputs, but not in ``Constrained`` (they differentiate its outputs one by one).
    """
    return _taylor_plan(model, any_width=outputs) is not None


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


def outputs_value_and_gradient(
    fn: Field, x: Tensor, *, method: Method = "auto"
) -> tuple[Tensor, Tensor]:
    """:func:`value_and_gradient` of every output of a vector field ``fn: (n, d) -> (n, o)``:
    ``u (n, o)`` and ``grad (n, d, o)``, ``grad[:, :, i]`` the gradient of output ``i``.

    On a network the Taylor engine follows (:func:`supports_taylor` with ``outputs=True``) the
    d directions go forward through it once for all the outputs; a field's column taken as
    ``lambda y: model(y)[:, i]`` is a callable the engines cannot see into, differentiated
    generically and once per output. Any other field (a :class:`~glfpinn.nn.Constrained`
    network of several outputs, an unsupported module, ``method="jvp"``) gets the scalar
    operator output by output: the same numbers, slower.
    """
    _check_x(x)
    plan = _resolve_outputs(fn, method)
    if plan is None:
        return _by_output(fn, x, lambda f: value_and_gradient(f, x))  # type: ignore[return-value]
    u, d1 = _outputs_gradient(fn, plan, x)
    return u, d1.movedim(0, 1)


def outputs_laplacian(
    fn: Field, x: Tensor, *, dims: Dims = None, method: Method = "auto"
) -> tuple[Tensor, Tensor]:
    """:func:`laplacian` of every output of a vector field ``fn: (n, d) -> (n, o)``:
    ``u (n, o)`` and the Laplacians over ``dims`` (all coordinates by default) ``(n, o)``, in
    one propagation on the Taylor engine (see :func:`outputs_value_and_gradient`)."""
    n, d = _check_x(x)
    axes = _axes(dims, d)
    plan = _resolve_outputs(fn, method)
    if plan is None:
        return _by_output(  # type: ignore[return-value]
            fn, x, lambda f: laplacian(f, x, dims=axes, method=method)
        )
    if not axes:
        u = fn(x)
        return u, torch.zeros_like(u)
    u, _, lap = _outputs_lap_jet(fn, plan, x, axes, len(axes))
    return u, lap


def outputs_value_grad_laplacian(
    fn: Field, x: Tensor, *, dims: Dims = None, method: Method = "auto"
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`value_grad_laplacian` of every output of a vector field ``fn: (n, d) -> (n, o)``:
    ``u (n, o)``, ``grad (n, d, o)`` over all coordinates (``grad[:, :, i]`` output ``i``'s
    gradient) and the Laplacians over ``dims`` ``(n, o)``.

    What a system of second-order equations needs in one call, e.g. steady Navier-Stokes with
    outputs (u, v, p): ``w, g, lap = outputs_value_grad_laplacian(model, x)``, then
    ``u = w[:, 0]``, ``u_x = g[:, 0, 0]``, ``p_y = g[:, 1, 2]``, ``Lap v = lap[:, 1]``. On the
    Taylor engine it is one propagation for all outputs (the last layer's few extra rows cost
    next to nothing, so an output whose Laplacian the residual ignores is free); other fields
    go output by output (see :func:`outputs_value_and_gradient`).
    """
    n, d = _check_x(x)
    axes = _axes(dims, d)
    plan = _resolve_outputs(fn, method)
    if plan is None:
        return _by_output(  # type: ignore[return-value]
            fn, x, lambda f: value_grad_laplacian(f, x, dims=axes, method=method)
        )
    order = axes + [i for i in range(d) if i not in set(axes)]
    u, d1, lap = _outputs_lap_jet(fn, plan, x, order, len(axes))
    if order != list(range(d)):
        d1 = d1[[order.index(i) for i in range(d)]]
    return u, d1.movedim(0, 1), lap


def _by_output(
    fn: Field, x: Tensor, op: Callable[[Field], tuple[Tensor, ...]]
) -> tuple[Tensor, ...]:
    """The scalar operator ``op`` on each output column of ``fn``, its results stacked along a
    last axis: the ``outputs_*`` operators' route for fields the Taylor engine cannot take whole.
    A single output is ``fn`` itself, so that a :class:`~glfpinn.nn.Constrained` transform
    keeps its jets."""
    n = x.shape[0]
    out = fn(x)
    if out.shape != (n,) and (out.dim() != 2 or out.shape[0] != n):
        raise ValueError(f"the field must map (n, d) to (n, o); got output {tuple(out.shape)}")
    if out.dim() == 1 or out.shape[1] == 1:
        return tuple(t.unsqueeze(-1) for t in op(fn))
    columns = [op(_column(fn, i)) for i in range(out.shape[1])]
    return tuple(torch.stack(ts, dim=-1) for ts in zip(*columns, strict=True))


def _column(fn: Field, i: int) -> Field:
    return lambda y: fn(y)[:, i]


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
    ``"taylor"`` (order 2, networks the Taylor engine knows: :func:`supports_taylor`)
        The value, first and pure second derivatives propagate through the network as
        streams, and a :class:`~glfpinn.nn.Constrained` transform is evaluated once on
        second-order Taylor jets (``glfpinn.ops._jet``; if it uses an operation the jets lack,
        the generic route of the ``"taylor"`` engine: forward mode through the transform with
        the network replaced by its Taylor polynomial, correct but not compilable). With the
        jets, no ``torch.autograd.grad`` inside: a first-order graph, which ``torch.compile``
        can compile (a double backward it cannot).

    ``"auto"`` uses ``"taylor"`` while ``torch.compile`` traces (``Trainer(compile=True)``)
    and ``"nested"`` otherwise. A field the Taylor engine does not know (or an order above 2)
    takes forward-over-reverse mode (``torch.func``) while ``torch.compile`` traces, since a
    double backward cannot be compiled.
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
            f"method='taylor' needs order 2 and {SUPPORTED}, with scalar output; got order "
            f"{order}, {type(fn).__name__}"
        )
    if method == "nested":
        streams = False
    elif method == "auto":
        streams = streams and torch.compiler.is_compiling()
    with torch.enable_grad():
        if streams:
            return _streams_gradient_and_jet(plan, x, axes)  # type: ignore[arg-type]
        if method == "auto" and torch.compiler.is_compiling():
            return _generic_gradient_and_jet(fn, x, int(order), axes)
        return _nested_gradient_and_jet(fn, x, int(order), axes)


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


def partial_derivative(
    fn: Field, x: Tensor, axis: int, order: int = 1, *, method: Method = "auto"
) -> Tensor:
    """``d^order u / dx_axis^order`` as ``(n,)``: one direction, so about the cost of a forward."""
    return axis_jet(fn, x, order, [axis], method=method)[1][-1, :, 0]


def __getattr__(name: str) -> Any:
    # ``partial``, the old name of partial_derivative, shadowed functools.partial in a star
    # import; it still works, with a DeprecationWarning, but is no longer exported.
    if name == "partial":
        warnings.warn(
            "glfpinn.ops.partial is renamed partial_derivative",
            DeprecationWarning,
            stacklevel=2,
        )
        return partial_derivative
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


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
