"""glfpinn.ops against naive nested reverse-mode autograd (one torch.autograd.grad per axis)."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor

import glfpinn.ops as ops
from glfpinn.nn import MLP, Constrained
from glfpinn.ops import _dispatch, _taylor
from glfpinn.ops._common import _axes

# torch.func's jvp decompositions call the deprecated torch.jit.script internally (torch 2.13)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script`:DeprecationWarning")

F64 = torch.float64
TOL = 1e-10
DIMS = (1, 2, 5, 20)
ACTIVATIONS = ("tanh", "sin", "silu", "gelu")


# ---------------------------------------------------------------------------------------------
# fields and the reference


def make_mlp(d: int, seed: int, activation: str = "tanh", out_dim: int = 1) -> MLP:
    """A float64 MLP with random weights *and biases* from its own generator (a zero bias
    would leave some derivative terms untested)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng():
        net = MLP(d, out_dim=out_dim, hidden=(16, 12, 10), activation=activation).to(F64)
    with torch.no_grad():
        for layer in net.layers:
            fan_in = layer.weight.shape[1]
            layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=F64))
            layer.weight.mul_(1.3 / fan_in**0.5)
            layer.bias.copy_(0.5 * torch.randn(layer.bias.shape, generator=gen, dtype=F64))
    return net


def transform(x: Tensor, v: Tensor) -> Tensor:
    """Nonlinear in both x and the network output, and using two network outputs."""
    return (
        x[:, :1] * torch.sin(x.sum(1, keepdim=True))
        + (1 - x[:, :1] ** 2) * v[:, :1]
        + 0.3 * v[:, 1:] ** 2 * torch.exp(-(x[:, -1:] ** 2))
    )


def make_field(kind: str, d: int, seed: int = 0) -> Callable[[Tensor], Tensor]:
    if kind in ACTIVATIONS:
        return make_mlp(d, seed, kind)
    if kind == "constrained":
        return Constrained(make_mlp(d, seed, "tanh", out_dim=2), transform)
    if kind == "callable":  # not a module: only the generic path applies
        net = make_mlp(d, seed, "silu")

        def field(y: Tensor) -> Tensor:
            return torch.tanh(net(y)) * torch.cos(y[:, :1]) + y.square().sum(1, keepdim=True)

        field.net = net  # type: ignore[attr-defined]
        return field
    raise ValueError(kind)


def points(n: int, d: int, seed: int = 1, dtype: torch.dtype = F64) -> Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=F64).to(dtype)


def naive_jet(fn: Callable[[Tensor], Tensor], x: Tensor, order: int, dims: list[int]):
    """u, grad and, per axis in dims, the derivatives of order 1..order, the DeepXDE way."""
    x = x.detach().requires_grad_(True)
    u = fn(x).reshape(-1)
    (grad,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    per_axis = []
    for i in dims:
        ds = [grad[:, i]]
        for _ in range(order - 1):
            (g,) = torch.autograd.grad(ds[-1].sum(), x, create_graph=True)
            ds.append(g[:, i])
        per_axis.append(torch.stack(ds))
    return u, grad, torch.stack(per_axis, dim=-1)  # (order, n, len(dims))


def params(fn: Callable[[Tensor], Tensor]) -> list[Tensor]:
    if isinstance(fn, torch.nn.Module):
        return list(fn.parameters())
    return list(fn.net.parameters())  # type: ignore[attr-defined]


def param_grads(loss: Tensor, ps: list[Tensor], **kw) -> list[Tensor]:
    return list(torch.autograd.grad(loss, ps, allow_unused=True, materialize_grads=True, **kw))


def assert_close(a: Tensor, b: Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    if not b.numel():
        return
    scale = 1.0 + b.detach().abs().max().item()
    err = (a - b).detach().abs().max().item()
    assert err <= tol * scale, f"max error {err:.3e} (scale {scale:.3e})"


def methods_for(kind: str) -> list[str]:
    return ["jvp"] if kind == "callable" else ["taylor", "jvp"]


CASES = [(kind, d) for d in DIMS for kind in (*ACTIVATIONS, "constrained", "callable")]


# ---------------------------------------------------------------------------------------------
# values


def high_order_axes(d: int) -> list[int]:
    """Axes on which orders 3-4 are checked: all of them up to d = 5, three spread-out ones at
    d = 20 (every axis goes through the same code, and the nested reference is slow there)."""
    return list(range(d)) if d <= 5 else [0, d // 2, d - 1]


@pytest.mark.parametrize(("kind", "d"), CASES)
def test_operators_match_nested_autograd(kind: str, d: int) -> None:
    fn = make_field(kind, d)
    x = points(5, d)
    u0, g0, jet2 = naive_jet(fn, x, 2, list(range(d)))
    lap0 = jet2[1].sum(1)
    axes = high_order_axes(d)
    _, _, jet0 = naive_jet(fn, x, 4 if d <= 5 else 3, axes)
    u, g = ops.value_and_gradient(fn, x)
    assert_close(u, u0)
    assert_close(g, g0)
    for method in methods_for(kind):
        # 4th order through nested torch.func is slow to trace; d <= 2 covers it there
        order = 4 if d <= (5 if method == "taylor" else 2) else 3
        u, jet = ops.axis_jet(fn, x, order, axes, method=method)
        assert_close(u, u0)
        assert_close(jet, jet0[:order])
        assert_close(ops.axis_jet(fn, x, 2, method=method)[1], jet2)
        assert_close(ops.axis_derivatives(fn, x, 3, axes, method=method), jet0[2])
        assert_close(ops.partial_derivative(fn, x, axes[-1], 3, method=method), jet0[2, :, -1])
        assert_close(ops.partial_derivative(fn, x, 0, method=method), g0[:, 0])
        u, lap = ops.laplacian(fn, x, method=method)
        assert_close(u, u0)
        assert_close(lap, lap0)
        u, g, lap = ops.value_grad_laplacian(fn, x, method=method)
        assert_close(g, g0)
        assert_close(lap, lap0)


@pytest.mark.parametrize("kind", ["tanh", "constrained", "callable"])
@pytest.mark.parametrize("dims", [slice(0, -1), [3, 0], [-1], slice(1, None, 2)])
def test_dims_subsets(kind: str, dims) -> None:
    d = 5
    fn = make_field(kind, d)
    x = points(6, d)
    axes = _axes(dims, d)
    _, g0, jet0 = naive_jet(fn, x, 3, axes)
    for method in methods_for(kind):
        _, lap = ops.laplacian(fn, x, dims=dims, method=method)
        assert_close(lap, jet0[1].sum(1))
        _, g, lap = ops.value_grad_laplacian(fn, x, dims=dims, method=method)
        assert_close(g, g0)
        assert_close(lap, jet0[1].sum(1))
        assert_close(ops.axis_derivatives(fn, x, 3, dims, method=method), jet0[2])


def test_auto_picks_taylor_for_networks_only() -> None:
    # the plan means "taylor", None means "jvp"
    assert _dispatch._resolve(make_field("tanh", 2), "auto", 2) is not None
    assert _dispatch._resolve(make_field("constrained", 2), "auto", 4) is not None
    assert _dispatch._resolve(make_field("tanh", 2), "auto", 5) is None
    assert _dispatch._resolve(make_field("callable", 2), "auto", 2) is None
    with torch.random.fork_rng():
        relu = MLP(2)
    relu.activation = torch.nn.ReLU()
    assert _dispatch._resolve(relu, "auto", 2) is None


def test_orders_beyond_the_taylor_engine_fall_back() -> None:
    fn, x = make_field("sin", 2), points(5, 2)
    _, _, jet0 = naive_jet(fn, x, 5, [0, 1])
    assert_close(ops.axis_derivatives(fn, x, 5), jet0[4])


# ---------------------------------------------------------------------------------------------
# gradients w.r.t. parameters


def residual_loss(u: Tensor, g: Tensor, lap: Tensor, d3: Tensor) -> Tensor:
    return (g[:, -1] - lap - u**3 + 0.1 * d3.sum(1)).square().mean()


@pytest.mark.parametrize("d", DIMS)
@pytest.mark.parametrize("kind", ["tanh", "silu", "constrained", "callable"])
def test_parameter_gradients_match(kind: str, d: int) -> None:
    fn = make_field(kind, d)
    x = points(5, d)
    space = list(range(max(d - 1, 1)))
    axes = high_order_axes(d)
    u0, g0, jet2 = naive_jet(fn, x, 2, space)
    _, _, jet3 = naive_jet(fn, x, 3, axes)
    ps = params(fn)
    want = param_grads(residual_loss(u0, g0, jet2[1].sum(1), jet3[2]), ps)
    for method in methods_for(kind):
        u, g, lap = ops.value_grad_laplacian(fn, x, dims=space, method=method)
        d3 = ops.axis_derivatives(fn, x, 3, axes, method=method)
        got = param_grads(residual_loss(u, g, lap, d3), ps)
        for a, b in zip(got, want, strict=True):
            assert_close(a, b)


def test_second_order_parameter_gradients_match() -> None:
    """create_graph through the fused Laplacian layer (e.g. gradient-penalty style losses)."""
    fn = make_field("silu", 4)
    x = points(5, 4)
    ps = params(fn)
    u0, g0, jet0 = naive_jet(fn, x, 2, [0, 1, 2])
    u, g, lap = ops.value_grad_laplacian(fn, x, dims=[0, 1, 2])
    results = []
    for uu, gg, ll in ((u0, g0, jet0[1].sum(1)), (u, g, lap)):
        first = param_grads((gg[:, -1] - ll - uu).square().mean(), ps, create_graph=True)
        results.append(param_grads(sum(f.square().sum() for f in first), ps))
    for a, b in zip(*results, strict=True):
        assert_close(a, b)


def test_blocked_cpu_loops(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks that split the directions unevenly give the same values and gradients."""
    fn, x = make_field("tanh", 20), points(6, 20)
    ps = params(fn)
    outs = []
    for rows in (10**6, 6 * 3, 6 * 7, 1):
        monkeypatch.setattr(_taylor, "CPU_BLOCK_ROWS", rows)
        u, g, lap = ops.value_grad_laplacian(fn, x, dims=slice(0, -1))
        grads = param_grads((g[:, -1] - lap - u).square().mean(), ps)
        outs.append([u, g, lap, *grads])
    for other in outs[1:]:
        for a, b in zip(other, outs[0], strict=True):
            assert_close(a, b, 1e-13)


# ---------------------------------------------------------------------------------------------
# Hutchinson


@pytest.mark.parametrize("kind", ["tanh", "callable"])
def test_hutchinson_is_unbiased(kind: str) -> None:
    d = 6
    fn, x = make_field(kind, d), points(4, d)
    dims = [0, 2, 3, 5]
    _, lap0 = ops.laplacian(fn, x, dims=dims)
    # rows get independent probes, so repeating the points gives independent estimates
    reps = 1000
    gen = torch.Generator().manual_seed(1234)
    _, est = ops.laplacian(
        fn, x.repeat(reps, 1), method="hutchinson", probes=2, generator=gen, dims=dims
    )
    est = est.detach().reshape(reps, len(x))
    mean, se = est.mean(0), est.std(0) / reps**0.5
    assert (se > 0).all()
    assert ((mean - lap0).abs() < 4 * se).all(), (mean - lap0) / se


def test_hutchinson_is_deterministic_and_leaves_the_global_rng_alone() -> None:
    fn, x = make_field("tanh", 5), points(6, 5)
    state = torch.random.get_rng_state()
    a = ops.laplacian(
        fn, x, method="hutchinson", probes=3, generator=torch.Generator().manual_seed(7)
    )
    b = ops.laplacian(
        fn, x, method="hutchinson", probes=3, generator=torch.Generator().manual_seed(7)
    )
    c = ops.laplacian(
        fn, x, method="hutchinson", probes=3, generator=torch.Generator().manual_seed(8)
    )
    assert torch.equal(a[1], b[1]) and not torch.equal(a[1], c[1])
    assert torch.equal(state, torch.random.get_rng_state())
    # one probe along each coordinate's sign pattern: the estimate is exact for a diagonal Hessian
    sep = lambda y: torch.sin(y).sum(1)  # noqa: E731
    _, lap0 = ops.laplacian(sep, x)
    _, est = ops.laplacian(sep, x, method="hutchinson", probes=1, generator=torch.Generator())
    assert_close(est, lap0)


def test_hutchinson_requires_generator_and_probes() -> None:
    fn, x = make_field("tanh", 2), points(3, 2)
    with pytest.raises(ValueError, match="Generator"):
        ops.laplacian(fn, x, method="hutchinson", probes=2)
    with pytest.raises(ValueError, match="probes"):
        ops.laplacian(fn, x, method="hutchinson", generator=torch.Generator())
    with pytest.raises(ValueError, match="hutchinson"):
        ops.laplacian(fn, x, probes=2)


# ---------------------------------------------------------------------------------------------
# precision, grad modes, chunking, errors


@pytest.mark.parametrize("kind", ["tanh", "constrained"])
def test_float32(kind: str) -> None:
    fn64, x64 = make_field(kind, 5), points(16, 5)
    fn32, x32 = make_field(kind, 5).float(), x64.float()
    _, g0, lap0 = ops.value_grad_laplacian(fn64, x64, dims=slice(0, -1))
    for method in ("taylor", "jvp"):
        u, g, lap = ops.value_grad_laplacian(fn32, x32, dims=slice(0, -1), method=method)
        assert u.dtype == g.dtype == lap.dtype == torch.float32
        assert_close(g.double(), g0, 1e-5)
        assert_close(lap.double(), lap0, 1e-4)
        assert ops.axis_derivatives(fn32, x32, 3, method=method).dtype == torch.float32


def test_no_grad_scoring_and_chunked() -> None:
    fn, x = make_field("constrained", 3), points(23, 3)

    def residual(y: Tensor) -> Tensor:
        _, g, lap = ops.value_grad_laplacian(fn, y, dims=[0, 1])
        return g[:, -1] - lap

    full = residual(x)
    with torch.no_grad():
        for size in (1, 5, 23, 50):
            part = ops.chunked(residual, x, size)
            assert part.grad_fn is None
            assert_close(part, full, 1e-13)
        for method in ("taylor", "jvp"):
            _, lap = ops.laplacian(make_field("tanh", 3), x, method=method)
            assert lap.grad_fn is None
    with pytest.raises(ValueError):
        ops.chunked(residual, x, 0)


@pytest.mark.parametrize("kind", ["square", "constrained", "callable"])
def test_scoring_path_matches_training_path(kind: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a graph the operators split rows into pieces and the Taylor engine reuses its
    buffers in place; the values must not change."""
    monkeypatch.setattr(_dispatch, "NO_GRAD_PIECE", 40)
    monkeypatch.setattr(_taylor, "CPU_BLOCK_ROWS", 12)
    d = 4
    if kind == "square":  # equal hidden widths, so the in-place reuse happens
        gen = torch.Generator().manual_seed(3)
        with torch.random.fork_rng():
            fn = MLP(d, hidden=(16, 16, 16)).to(F64)
        for p in fn.parameters():
            p.data = 0.5 * torch.randn(p.shape, generator=gen, dtype=F64)
    else:
        fn = make_field(kind, d)
    x = points(37, d)
    hutch = dict(method="hutchinson", probes=3, dims=[0, 2])
    with torch.no_grad():
        got = [
            *ops.value_grad_laplacian(fn, x, dims=slice(0, -1)),
            *ops.axis_jet(fn, x, 3),
            ops.laplacian(fn, x, generator=torch.Generator().manual_seed(5), **hutch)[1],
        ]
    want = [
        *ops.value_grad_laplacian(fn, x, dims=slice(0, -1)),
        *ops.axis_jet(fn, x, 3),
        ops.laplacian(fn, x, generator=torch.Generator().manual_seed(5), **hutch)[1],
    ]
    for a, b in zip(got, want, strict=True):
        assert a.grad_fn is None
        assert_close(a, b, 1e-13)


def test_input_gradient_flows_through() -> None:
    """x itself may be produced by a differentiable map; its gradient must survive."""
    fn = make_field("tanh", 3)
    base = points(5, 3).requires_grad_(True)
    x = 2.0 * base
    u = fn(x).reshape(-1)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap0 = sum(torch.autograd.grad(g[:, i].sum(), x, create_graph=True)[0][:, i] for i in range(3))
    (want,) = torch.autograd.grad(lap0.sum(), base)
    for method in ("taylor", "jvp"):
        _, lap = ops.laplacian(fn, 2.0 * base, method=method)
        (got,) = torch.autograd.grad(lap.sum(), base)
        assert_close(got, want)


def test_errors() -> None:
    x = points(4, 2)
    with pytest.raises(ValueError, match="method"):
        ops.laplacian(make_field("tanh", 2), x, method="nope")
    with pytest.raises(ValueError, match="taylor"):
        ops.laplacian(make_field("callable", 2), x, method="taylor")
    with pytest.raises(ValueError, match=r"\(n,\)"):
        ops.laplacian(lambda y: y, x)
    with pytest.raises(ValueError, match="repeated"):
        ops.laplacian(make_field("tanh", 2), x, dims=[0, 0])
    with pytest.raises(IndexError):
        ops.axis_derivatives(make_field("tanh", 2), x, 2, dims=[2])
    with pytest.raises(ValueError, match="order"):
        ops.axis_derivatives(make_field("tanh", 2), x, 0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_matches_cpu() -> None:
    fn, x = make_field("constrained", 5), points(32, 5)
    _, g0, lap0 = ops.value_grad_laplacian(fn, x, dims=slice(0, -1))
    fn_c, x_c = fn.cuda(), x.cuda()
    for method in ("taylor", "jvp"):
        _, g, lap = ops.value_grad_laplacian(fn_c, x_c, dims=slice(0, -1), method=method)
        assert_close(g.cpu(), g0)
        assert_close(lap.cpu(), lap0)
    gen = torch.Generator(device="cuda").manual_seed(0)
    _, est = ops.laplacian(fn_c, x_c, method="hutchinson", probes=2, generator=gen)
    assert est.device == x_c.device


@pytest.mark.parametrize("d", [1, 2, 5])
def test_gradient_and_axis_jet_agrees_with_nested_autograd(d):
    fn, x, axes = make_field("tanh", d), points(7, d), sorted({0, d - 1})
    u, grad, higher = ops.gradient_and_axis_jet(fn, x, 3, dims=axes)
    u_ref, grad_ref = ops.value_and_gradient(fn, x)
    assert_close(u, u_ref)
    assert_close(grad, grad_ref)
    for k in (2, 3):
        assert_close(higher[k - 2], ops.axis_derivatives(fn, x, k, axes))


@pytest.mark.parametrize("kind", [*ACTIVATIONS, "constrained", "callable"])
@pytest.mark.parametrize(("d", "axes"), [(1, [0]), (2, [0]), (2, [1, 0]), (5, [0, 3]), (3, [])])
def test_second_order_gradient_and_axis_jet_matches_nested_autograd(kind, d, axes):
    """Order 2 takes the stacked-stream engine for networks (values and parameter gradients of
    a residual loss must equal the DeepXDE-style nested reverse mode)."""
    fn, x = make_field(kind, d), points(9, d)
    method = "nested" if kind == "callable" else "taylor"
    u, grad, higher = ops.gradient_and_axis_jet(fn, x, 2, dims=axes, method=method)
    u_ref, grad_ref, per_axis = naive_jet(fn, x, 2, axes or [0])
    higher_ref = per_axis[1:, :, : len(axes)]
    assert_close(u, u_ref)
    assert_close(grad, grad_ref)
    assert_close(higher, higher_ref)
    ps = params(fn)

    def loss(u: Tensor, g: Tensor, h: Tensor) -> Tensor:
        return (g[:, 0] + h.sum() * u + u**3).square().mean() + (g**2).sum()

    grads = param_grads(loss(u, grad, higher), ps)
    grads_ref = param_grads(loss(u_ref, grad_ref, higher_ref), ps)
    for a, b in zip(grads, grads_ref, strict=True):
        assert_close(a, b)


def test_second_order_jet_gradient_with_respect_to_the_points():
    """Samplers that move points along d(r^2)/dx need the input gradient through the jet."""
    fn = make_field("constrained", 2)
    x = points(6, 2).requires_grad_(True)
    _, grad, higher = ops.gradient_and_axis_jet(fn, x, 2, dims=[0], method="taylor")
    (gx,) = torch.autograd.grad((grad[:, 1] * higher[0, :, 0]).sum(), x)
    x_ref = x.detach().requires_grad_(True)
    (grad_ref,) = torch.autograd.grad(fn(x_ref).sum(), x_ref, create_graph=True)
    (hess_row,) = torch.autograd.grad(grad_ref[:, 0].sum(), x_ref, create_graph=True)
    (gx_ref,) = torch.autograd.grad((grad_ref[:, 1] * hess_row[:, 0]).sum(), x_ref)
    assert_close(gx, gx_ref)


def test_second_order_jet_method_errors():
    with pytest.raises(ValueError, match="method='taylor' needs order 2"):
        ops.gradient_and_axis_jet(make_field("tanh", 2), points(3, 2), 3, method="taylor")
    with pytest.raises(ValueError, match="allowed: 'auto', 'taylor', 'nested'"):
        ops.gradient_and_axis_jet(make_field("tanh", 2), points(3, 2), 2, method="jvp")


def test_compiled_streams_match_eager(real_compile):
    """torch.compile of the stream propagation computes the same jet and parameter gradients."""
    fn, x = make_field("constrained", 2), points(64, 2)
    eager = ops.gradient_and_axis_jet(fn, x, 2, dims=[0], method="taylor")
    ps = params(fn)
    g_eager = param_grads(sum(t.square().sum() for t in eager), ps)
    frames = torch._dynamo.utils.counters["frames"]["ok"]
    compiled = torch.compile(ops.gradient_and_axis_jet)(fn, x, 2, dims=[0])  # "auto": taylor
    assert torch._dynamo.utils.counters["frames"]["ok"] > frames  # compiled, no fallback
    for a, b in zip(compiled, eager, strict=True):
        assert_close(a, b)
    g_compiled = param_grads(sum(t.square().sum() for t in compiled), ps)
    for a, b in zip(g_compiled, g_eager, strict=True):
        assert_close(a, b)


def test_partial_is_the_deprecated_name_of_partial_derivative():
    with pytest.warns(DeprecationWarning, match="partial_derivative"):
        assert ops.partial is ops.partial_derivative
    assert "partial" not in ops.__all__  # a star import no longer shadows functools.partial
