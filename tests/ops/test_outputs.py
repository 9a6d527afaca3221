"""The ``outputs_*`` operators (every output of a vector field at once) against the scalar
operators on each output column and against nested reverse-mode autograd: values, parameter
gradients, the engine they take, scoring without a graph, and their fallbacks."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

import glfpinn.ops as ops
from glfpinn.nn import MLP, Constrained, FourierFeatures, ModifiedMLP, ResidualMLP
from glfpinn.ops import _dispatch, _taylor

pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script`:DeprecationWarning")

F64 = torch.float64
TOL = 1e-10
O = 3  # outputs


def _randomise(net: nn.Module, seed: int) -> nn.Module:
    """float64, random weights and biases (a zero bias would leave terms untested)."""
    gen = torch.Generator().manual_seed(seed)
    net = net.to(F64)
    with torch.no_grad():
        for p in net.parameters():
            fan_in = p.shape[1] if p.dim() == 2 else 4
            p.copy_(torch.randn(p.shape, generator=gen, dtype=F64) * (1.2 / fan_in**0.5))
    return net


class _Softplus(nn.Module):
    """A network the Taylor engine cannot follow (softplus): the columns go generic."""

    def __init__(self, d: int) -> None:
        super().__init__()
        self.a, self.b = nn.Linear(d, 8), nn.Linear(8, O)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(nn.functional.softplus(self.a(x)))


def _transform(x: Tensor, v: Tensor) -> Tensor:
    """A hard constraint keeping all three outputs, nonlinear in x and in the network."""
    return x[:, :1] * torch.sin(x.sum(1, keepdim=True)) + (1 - x[:, :1] ** 2) * v + 0.3 * v**2


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


def _fields(d: int) -> dict[str, Callable[[], Callable[[Tensor], Tensor]]]:
    return {
        "mlp": lambda: _randomise(MLP(d, O, (16, 12, 10), generator=_gen()), 1),
        "mlp silu fourier": lambda: _randomise(
            MLP(d, O, (12, 10), activation="silu", fourier_features=4, generator=_gen()), 2
        ),
        "sequential": lambda: _randomise(
            nn.Sequential(
                FourierFeatures(d, 3, generator=_gen()),
                nn.Linear(6, 10),
                nn.Tanh(),
                nn.Linear(10, 10),
                nn.GELU(),
                nn.Linear(10, O),
            ),
            3,
        ),
        "one hidden layer": lambda: _randomise(
            nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, O)), 4
        ),
        "residual mlp": lambda: _randomise(
            ResidualMLP(d, O, width=10, depth=2, generator=_gen()), 5
        ),
        "modified mlp": lambda: _randomise(
            ModifiedMLP(d, O, width=10, depth=2, generator=_gen()), 6
        ),
        "constrained": lambda: Constrained(
            _randomise(MLP(d, O, (12, 10), generator=_gen()), 7), _transform
        ),
        "unsupported": lambda: _randomise(_Softplus(d), 8),
        "callable": lambda: (lambda net: lambda y: torch.tanh(net(y)) * torch.cos(y[:, :1]))(
            _randomise(MLP(d, O, (10,), generator=_gen()), 9)
        ),
    }


FAST = ["mlp", "mlp silu fourier", "sequential", "one hidden layer", "residual mlp", "modified mlp"]
SLOW = ["constrained", "unsupported", "callable"]


def _points(n: int, d: int, seed: int = 1) -> Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def _column(fn: Callable[[Tensor], Tensor], i: int) -> Callable[[Tensor], Tensor]:
    return lambda y: fn(y)[:, i]


def _params(fn: object) -> list[Tensor]:
    if isinstance(fn, nn.Module):
        return list(fn.parameters())
    return [p for c in fn.__closure__ or () for p in getattr(c.cell_contents, "parameters", list)()]


def _close(a: Tensor, b: Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    scale = 1.0 + b.detach().abs().max().item()
    err = (a - b).detach().abs().max().item()
    assert err <= tol * scale, f"max error {err:.3e} (scale {scale:.3e})"


def _by_columns(fn, x, dims) -> tuple[Tensor, Tensor, Tensor]:
    """The scalar operators on each column (``lambda y: fn(y)[:, i]``), stacked."""
    cols = [ops.value_grad_laplacian(_column(fn, i), x, dims=dims) for i in range(O)]
    return tuple(torch.stack(ts, dim=-1) for ts in zip(*cols, strict=True))  # type: ignore[return-value]


def _nested(fn, x, dims) -> tuple[Tensor, Tensor, Tensor]:
    """u, the gradient and the Laplacian of each output by nested reverse mode."""
    axes = range(x.shape[1]) if dims is None else ops._axes(dims, x.shape[1])
    x = x.detach().requires_grad_(True)
    w = fn(x)
    grads, laps = [], []
    for i in range(O):
        (g,) = torch.autograd.grad(w[:, i].sum(), x, create_graph=True)
        lap = sum(torch.autograd.grad(g[:, j].sum(), x, create_graph=True)[0][:, j] for j in axes)
        grads.append(g)
        laps.append(lap)
    return w, torch.stack(grads, -1), torch.stack(laps, -1)


@pytest.mark.parametrize("dims", [None, slice(0, -1), [2, 0]])
@pytest.mark.parametrize("kind", FAST + SLOW)
def test_outputs_match_the_scalar_operators_per_column_and_nested_autograd(kind, dims) -> None:
    d = 3
    fn, x = _fields(d)[kind](), _points(6, d)
    u, g, lap = ops.outputs_value_grad_laplacian(fn, x, dims=dims)
    assert u.shape == (6, O) and g.shape == (6, d, O) and lap.shape == (6, O)
    for got, cols, nested in zip((u, g, lap), _by_columns(fn, x, dims), _nested(fn, x, dims)):
        _close(got, cols)
        _close(got, nested)
    u2, g2 = ops.outputs_value_and_gradient(fn, x)
    _close(u2, u)
    _close(g2, g)
    u3, lap3 = ops.outputs_laplacian(fn, x, dims=dims)
    _close(u3, u)
    _close(lap3, lap)
    for method in ("jvp", "auto" if kind in SLOW else "taylor"):
        for a, b in zip(
            ops.outputs_value_grad_laplacian(fn, x, dims=dims, method=method), (u, g, lap)
        ):
            _close(a, b)


@pytest.mark.parametrize(
    "kind", ["mlp", "sequential", "residual mlp", "constrained", "unsupported"]
)
def test_parameter_gradients_match_the_scalar_operators_per_column(kind) -> None:
    fn, x = _fields(2)[kind](), _points(9, 2)

    def loss(u: Tensor, g: Tensor, lap: Tensor) -> Tensor:
        # Navier-Stokes-like: products of values and derivatives of different outputs
        r1 = u[:, 0] * g[:, 0, 0] + u[:, 1] * g[:, 1, 0] + g[:, 0, 2] - 0.1 * lap[:, 0]
        r2 = u[:, 0] * g[:, 0, 1] + u[:, 1] * g[:, 1, 1] + g[:, 1, 2] - 0.1 * lap[:, 1]
        return (r1**2 + r2**2 + (g[:, 0, 0] + g[:, 1, 1]) ** 2).mean()

    ps = _params(fn)

    def grads(value: Tensor) -> tuple[Tensor, ...]:
        return torch.autograd.grad(value, ps, allow_unused=True, materialize_grads=True)

    got = grads(loss(*ops.outputs_value_grad_laplacian(fn, x)))
    want = grads(loss(*_by_columns(fn, x, None)))
    for a, b in zip(got, want, strict=True):
        _close(a, b)
    _, grad = ops.outputs_value_and_gradient(fn, x)
    got = grads((grad**2).sum())
    cols = [ops.value_and_gradient(_column(fn, i), x)[1] for i in range(O)]
    want = grads(sum((c**2).sum() for c in cols))
    for a, b in zip(got, want, strict=True):
        _close(a, b)


def _forbid_generic(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the generic path was taken")

    for name in ("_generic_lap", "_generic_derivatives"):
        monkeypatch.setattr(_dispatch, name, refuse)
    monkeypatch.setattr(ops, "_by_output", refuse)
    monkeypatch.setattr(ops, "vjp", refuse)  # value_and_gradient's reverse pass


@pytest.mark.parametrize("kind", FAST)
def test_a_multi_output_network_takes_the_taylor_engine_once(kind, monkeypatch) -> None:
    fn, x = _fields(2)[kind](), _points(5, 2)
    assert ops.supports_taylor(fn, outputs=True)
    assert not ops.supports_taylor(fn)  # the scalar operators still need one output
    calls = []
    real = _taylor._mlp_laplacian
    monkeypatch.setattr(_dispatch, "_mlp_laplacian", lambda *a: calls.append(1) or real(*a))
    _forbid_generic(monkeypatch)
    ops.outputs_value_grad_laplacian(fn, x)
    ops.outputs_laplacian(fn, x, dims=[1])
    ops.outputs_value_and_gradient(fn, x)
    with torch.no_grad():
        ops.outputs_value_grad_laplacian(fn, x, method="taylor")
    assert len(calls) == 3  # one propagation per call, whatever the number of outputs


@pytest.mark.parametrize("kind", SLOW)
def test_other_fields_go_output_by_output(kind) -> None:
    fn = _fields(2)[kind]()
    assert not ops.supports_taylor(fn, outputs=True)
    if kind == "constrained":  # its network alone is followed
        assert ops.supports_taylor(fn.net, outputs=True)
    else:
        with pytest.raises(ValueError, match="method='taylor' needs"):
            ops.outputs_value_grad_laplacian(fn, _points(3, 2), method="taylor")


def test_a_single_output_is_the_scalar_operator_with_a_last_axis() -> None:
    """One output, including a Constrained one (which keeps its transform's jets): (n, 1)."""
    x = _points(7, 2)

    def scalar_transform(y: Tensor, v: Tensor) -> Tensor:
        return y[:, :1] * (1 - y[:, :1]) * v[:, :1] + torch.sin(y[:, 1:])

    for fn in (
        _randomise(MLP(2, 1, (8, 8), generator=_gen()), 1),
        Constrained(_randomise(MLP(2, 2, (8,), generator=_gen()), 2), scalar_transform),
        lambda y: y[:, 0] ** 2 * y[:, 1],  # (n,)
    ):
        u, g, lap = ops.outputs_value_grad_laplacian(fn, x, dims=[0])
        u0, g0, lap0 = ops.value_grad_laplacian(fn, x, dims=[0])
        _close(u, u0[:, None])
        _close(g, g0[:, :, None])
        _close(lap, lap0[:, None])


@pytest.mark.parametrize("kind", ["mlp", "one hidden layer", "residual mlp", "constrained"])
def test_scoring_without_a_graph_matches_training(kind, monkeypatch) -> None:
    """Without a graph the rows go in pieces and buffers are reused: same values, no graph."""
    monkeypatch.setattr(_dispatch, "NO_GRAD_PIECE", 40)
    monkeypatch.setattr(_taylor, "CPU_BLOCK_ROWS", 12)
    fn, x = _fields(4)[kind](), _points(37, 4)
    want = [*ops.outputs_value_grad_laplacian(fn, x, dims=slice(0, -1))]
    want += [*ops.outputs_value_and_gradient(fn, x), *ops.outputs_laplacian(fn, x)]
    with torch.no_grad():
        got = [*ops.outputs_value_grad_laplacian(fn, x, dims=slice(0, -1))]
        got += [*ops.outputs_value_and_gradient(fn, x), *ops.outputs_laplacian(fn, x)]
    for a, b in zip(got, want, strict=True):
        assert a.grad_fn is None
        _close(a, b, 1e-13)


def test_float32_and_errors() -> None:
    fn, x = _fields(2)["mlp"](), _points(8, 2)
    u, g, lap = ops.outputs_value_grad_laplacian(fn.float(), x.float())
    assert u.dtype == g.dtype == lap.dtype == torch.float32
    _close(lap.double(), _nested(fn.double(), x, None)[2], 1e-4)
    with pytest.raises(ValueError, match="x must have shape"):
        ops.outputs_value_and_gradient(fn, x[0])
    with pytest.raises(ValueError, match="method="):
        ops.outputs_laplacian(fn, x, method="nested")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"\(n, o\)"):
        ops.outputs_laplacian(lambda y: y[:, :, None], x)
