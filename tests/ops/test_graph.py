"""The Taylor engine on networks that are not a chain: what torch.fx traces (residual blocks,
the gated modified MLP, any module of the accepted operations) gives autograd's derivatives,
and what it cannot trace falls back to the generic engines."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import Tensor, nn

from glfpinn import ops
from glfpinn.nn import Constrained, ModifiedMLP, ResidualMLP

F64 = torch.float64
#: float64 derivatives of the same function by two exact methods agree to rounding
TOL = dict(rtol=1e-10, atol=1e-12)


class Custom(nn.Module):
    """Every operation the program accepts beyond Linear and activations: a learned scalar,
    ``@`` with a parameter matrix, F.linear, concatenation, sums, differences, products of two
    input-dependent factors, division by a constant and negation."""

    def __init__(self, d: int = 3, w: int = 4) -> None:
        super().__init__()
        self.a = nn.Linear(d, w)
        self.b = nn.Linear(d, w)
        self.m = nn.Parameter(torch.randn(2 * w, w, generator=torch.Generator().manual_seed(1)))
        self.scale = nn.Parameter(torch.tensor(0.7))
        self.head = nn.Linear(w, 1)

    def forward(self, x: Tensor) -> Tensor:
        u = torch.tanh(self.a(x))
        v = nn.functional.silu(self.b(x)) * u  # a product of two jets
        h = torch.cat([u, -v / 3.0], dim=-1) @ self.m
        h = torch.sin(h) - self.scale * u + 1.0
        return nn.functional.linear(nn.functional.gelu(h), self.head.weight, self.head.bias)


class DataDependent(nn.Module):
    """fx cannot trace Python control flow on a tensor's value."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        h = torch.tanh(self.a(x))
        if h.sum() > 0:
            h = h * 2.0
        return self.b(h)


class Softplus(nn.Module):
    """Traceable, but with an activation the engine has no closed form for."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(3, 4)
        self.b = nn.Linear(4, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.b(nn.functional.softplus(self.a(x)))


def _transform(x: Tensor, y: Tensor) -> Tensor:
    return torch.sin(x[:, :1]) + x[:, 1:2] * (1.0 - x[:, 0:1] ** 2) * y[:, :1]


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


NETWORKS = {
    "residual mlp": lambda: ResidualMLP(3, width=6, depth=2, generator=_gen()),
    "residual mlp, sin": lambda: ResidualMLP(3, width=6, depth=1, activation="sin"),
    "modified mlp": lambda: ModifiedMLP(3, width=6, depth=2, generator=_gen()),
    "modified mlp, silu": lambda: ModifiedMLP(3, width=6, depth=1, activation="silu"),
    "custom module": Custom,
    "residual mlp in Constrained": lambda: Constrained(ResidualMLP(3, width=6), _transform),
    "modified mlp in Constrained": lambda: Constrained(ModifiedMLP(3, width=6), _transform),
}


def _autograd_jet(net: nn.Module, x: Tensor, order: int) -> tuple[Tensor, Tensor, list[Tensor]]:
    """u, the gradient and the pure derivatives of orders 2..order along each axis, by nested
    reverse mode: the reference."""
    xr = x.clone().requires_grad_(True)
    u = net(xr).reshape(-1)
    (grad,) = torch.autograd.grad(u.sum(), xr, create_graph=True)
    current, pure = [grad[:, i] for i in range(x.shape[1])], []
    for _ in range(2, order + 1):
        current = [
            torch.autograd.grad(c.sum(), xr, create_graph=True)[0][:, i]
            for i, c in enumerate(current)
        ]
        pure.append(torch.stack(current, dim=1))
    return u, grad, pure


def _param_grads(loss: Tensor, net: nn.Module) -> list[Tensor]:
    return list(torch.autograd.grad(loss, list(net.parameters()), materialize_grads=True))


@pytest.mark.parametrize("name", NETWORKS)
def test_traced_networks_take_the_taylor_engine_with_autogradss_derivatives(name: str) -> None:
    torch.manual_seed(0)  # Custom's and the unseeded networks' layers
    net = NETWORKS[name]().to(F64)
    assert ops.supports_taylor(net)
    x = torch.rand(9, 3, dtype=F64, generator=torch.Generator().manual_seed(2))
    u, grad, (second, third) = _autograd_jet(net, x, 3)

    u_l, lap = ops.laplacian(net, x, method="taylor")
    torch.testing.assert_close(u_l, u, **TOL)
    torch.testing.assert_close(lap, second.sum(1), **TOL)
    u_s, grad_s, d = ops.gradient_and_axis_jet(net, x, 2, dims=[0, 2], method="taylor")
    torch.testing.assert_close(grad_s, grad, **TOL)
    torch.testing.assert_close(d[0], second[:, [0, 2]], **TOL)
    _, jet = ops.axis_jet(net, x, 3, method="taylor")
    for k, want in enumerate((grad, second, third)):
        torch.testing.assert_close(jet[k], want, **TOL)
    _, vg, lap_t = ops.value_grad_laplacian(net, x, dims=slice(0, -1), method="taylor")
    torch.testing.assert_close(vg, grad, **TOL)
    torch.testing.assert_close(lap_t, second[:, :2].sum(1), **TOL)

    # the parameters' gradients of a residual loss: what training differentiates
    for got, want in zip(
        _param_grads(lap.square().sum() + d.square().sum(), net),
        _param_grads(second.sum(1).square().sum() + second[:, [0, 2]].square().sum(), net),
        strict=True,
    ):
        torch.testing.assert_close(got, want, **TOL)


def test_the_program_reads_the_live_parameters() -> None:
    """Traced once, it follows later changes of the weights, of the dtype and of a copy."""
    net = ResidualMLP(3, width=6, generator=_gen())
    x32 = torch.rand(5, 3)
    ops.laplacian(net, x32, method="taylor")  # traced here, in float32
    net = net.to(F64)
    with torch.no_grad():
        net.out.weight.mul_(3.0)
    other = copy.deepcopy(net)
    with torch.no_grad():
        other.inp.bias.add_(0.5)
    x = x32.to(F64)
    for model in (net, other):
        _, _, (second,) = _autograd_jet(model, x, 2)
        torch.testing.assert_close(ops.laplacian(model, x, method="taylor")[1], second.sum(1))


@pytest.mark.parametrize("module", [DataDependent, Softplus])
def test_what_fx_cannot_trace_or_the_engine_cannot_follow_falls_back(module: type) -> None:
    torch.manual_seed(0)
    net = module().to(F64)
    assert not ops.supports_taylor(net)
    with pytest.raises(ValueError, match="method='taylor' needs"):
        ops.laplacian(net, torch.rand(3, 3, dtype=F64), method="taylor")
    x = torch.rand(6, 3, dtype=F64, generator=torch.Generator().manual_seed(3))
    _, grad, (second,) = _autograd_jet(net, x, 2)
    torch.testing.assert_close(ops.laplacian(net, x)[1], second.sum(1), **TOL)
    _, g, d = ops.gradient_and_axis_jet(net, x, 2, dims=[1])
    torch.testing.assert_close(g, grad, **TOL)
    torch.testing.assert_close(d[0, :, 0], second[:, 1], **TOL)


def test_a_vector_output_is_refused_unless_constrained() -> None:
    net = ResidualMLP(3, out_dim=2, width=4)
    assert not ops.supports_taylor(net)
    assert ops.supports_taylor(Constrained(net, _transform))


@pytest.mark.parametrize("cls", [ResidualMLP, ModifiedMLP])
def test_the_new_networks_check_their_arguments_in_one_line(cls: type) -> None:
    with pytest.raises(ValueError, match="activation='relu' is unknown; allowed: gelu"):
        cls(2, activation="relu")
    with pytest.raises(ValueError, match="width=0: must be an integer >= 1"):
        cls(2, width=0)
    with pytest.raises(ValueError, match="depth=0: must be an integer >= 1"):
        cls(2, depth=0)
