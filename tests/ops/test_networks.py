"""Which networks the Taylor engine recognises: MLPs, plain nn.Sequential stacks (one activation
kind per layer), Fourier features first, each alone or in Constrained; anything else falls back."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

import glfpinn.ops as ops
from glfpinn.nn import MLP, Constrained, FourierFeatures, Sin

# torch.func's jvp decompositions call the deprecated torch.jit.script internally (torch 2.13)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script`:DeprecationWarning")

F64 = torch.float64
TOL = 1e-10


def randomise(net: nn.Module, seed: int) -> nn.Module:
    """Random weights *and biases* (a zero bias would leave some derivative terms untested)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            fan_in = p.shape[-1] if p.dim() == 2 else 4
            p.copy_(torch.randn(p.shape, generator=gen, dtype=p.dtype) * (1.3 / fan_in**0.5))
    return net


def make_mlp(d: int, activation: str = "tanh", out_dim: int = 1, fourier: int = 0) -> MLP:
    gen = torch.Generator().manual_seed(11)
    net = MLP(
        d, out_dim, hidden=(9, 7), activation=activation, generator=gen, fourier_features=fourier
    )
    return randomise(net.to(F64), 12)  # type: ignore[return-value]


def as_sequential(mlp: MLP) -> nn.Sequential:
    """The same network as a plain nn.Sequential, weight for weight."""
    modules: list[nn.Module] = []
    if mlp.fourier is not None:
        n_features, in_dim = mlp.fourier.B.shape
        fourier = FourierFeatures(in_dim, n_features, generator=torch.Generator()).to(F64)
        fourier.B.copy_(mlp.fourier.B)
        modules.append(fourier)
    for i, layer in enumerate(mlp.layers):
        if i:
            modules.append(type(mlp.activation)())
        linear = nn.Linear(layer.in_features, layer.out_features, dtype=F64)
        with torch.no_grad():
            linear.weight.copy_(layer.weight)
            linear.bias.copy_(layer.bias)
        modules.append(linear)
    return nn.Sequential(*modules)


def transform(x: Tensor, v: Tensor) -> Tensor:
    """Nonlinear in both x and the network output, and using two network outputs."""
    return (
        x[:, :1] * torch.sin(x.sum(1, keepdim=True))
        + (1 - x[:, :1] ** 2) * v[:, :1]
        + 0.3 * v[:, 1:] ** 2 * torch.exp(-(x[:, -1:] ** 2))
    )


def points(n: int, d: int, seed: int = 1) -> Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=F64)


def assert_close(a: Tensor, b: Tensor, tol: float = TOL) -> None:
    assert a.shape == b.shape, (a.shape, b.shape)
    if not b.numel():
        return
    scale = 1.0 + b.detach().abs().max().item()
    err = (a - b).detach().abs().max().item()
    assert err <= tol * scale, f"max error {err:.3e} (scale {scale:.3e})"


def operators(fn: nn.Module, x: Tensor, method: str) -> list[Tensor]:
    """Every operator the engines serve; ``method`` picks the engine ("taylor" or the generic
    one: "jvp", and nested reverse mode for gradient_and_axis_jet)."""
    jet_method = "taylor" if method == "taylor" else "nested"
    return [
        *ops.laplacian(fn, x, method=method),
        *ops.value_grad_laplacian(fn, x, dims=slice(0, -1), method=method),
        *ops.axis_jet(fn, x, 3, method=method),
        *ops.gradient_and_axis_jet(fn, x, 2, dims=[0], method=jet_method),
    ]


def loss_grads(outs: list[Tensor], fn: nn.Module) -> list[Tensor]:
    loss = sum((t.square() * (1 + i)).mean() for i, t in enumerate(outs))
    return list(torch.autograd.grad(loss, list(fn.parameters()), retain_graph=True))


def assert_all_close(got: list[Tensor], want: list[Tensor]) -> None:
    assert len(got) == len(want)
    for a, b in zip(got, want, strict=True):
        assert_close(a, b)


@pytest.mark.parametrize("fourier", [0, 3])
@pytest.mark.parametrize("kind", ["tanh", "sin", "silu", "gelu", "constrained"])
def test_sequential_matches_the_mlp_it_copies(kind: str, fourier: int) -> None:
    d = 3
    if kind == "constrained":
        mlp = make_mlp(d, out_dim=2, fourier=fourier)
        net, seq = Constrained(mlp, transform), Constrained(as_sequential(mlp), transform)
    else:
        net = make_mlp(d, kind, fourier=fourier)
        seq = as_sequential(net)
    assert ops.supports_taylor(net) and ops.supports_taylor(seq)
    x = points(6, d)
    assert_close(seq(x), net(x))
    want, got = operators(net, x, "taylor"), operators(seq, x, "taylor")
    assert_all_close(got, want)
    assert_all_close(loss_grads(got, seq), loss_grads(want, net))
    # and the Sequential's Taylor numbers are right, not merely the MLP's
    generic = operators(seq, x, "jvp")
    assert_all_close(got, generic)
    assert_all_close(loss_grads(got, seq), loss_grads(generic, seq))


def mixed(d: int, out_dim: int = 1, fourier: bool = False) -> nn.Sequential:
    modules: list[nn.Module] = (
        [FourierFeatures(d, 4, generator=torch.Generator())] if fourier else []
    )
    width = 8 if fourier else d
    modules += [nn.Linear(width, 7), nn.Tanh(), nn.Linear(7, 6), Sin(), nn.Linear(6, 6)]
    modules += [nn.SiLU(), nn.Linear(6, 5), nn.GELU(), nn.Linear(5, out_dim)]
    return randomise(nn.Sequential(*modules).to(F64), 3)  # type: ignore[return-value]


@pytest.mark.parametrize("fourier", [False, True])
@pytest.mark.parametrize("constrained", [False, True])
def test_mixed_activations_match_the_generic_engine(constrained: bool, fourier: bool) -> None:
    d = 2
    net = mixed(d, 2 if constrained else 1, fourier)
    fn: nn.Module = Constrained(net, transform) if constrained else net
    assert ops.supports_taylor(fn)
    x = points(7, d)
    got, want = operators(fn, x, "taylor"), operators(fn, x, "jvp")
    assert_all_close(got, want)
    assert_all_close(loss_grads(got, fn), loss_grads(want, fn))
    _, jet = ops.axis_jet(fn, x, 4, method="taylor")
    assert_close(jet, ops.axis_jet(fn, x, 4, method="jvp")[1])


class _Doubled(nn.Sequential):
    def forward(self, x: Tensor) -> Tensor:
        return 2.0 * super().forward(x)


class _LeakyTanh(nn.Tanh):
    def forward(self, x: Tensor) -> Tensor:
        return torch.tanh(x) + 0.01 * x


class _Plain(nn.Sequential):
    """A subclass that keeps the stock forward computes the same thing."""


class _Shifted(MLP):
    def forward(self, x: Tensor) -> Tensor:
        return super().forward(x) + 1.0


def _hooked() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
    net[0].register_forward_hook(lambda m, i, o: 2 * o)
    return net


def _mlp_with(activation: nn.Module) -> MLP:
    net = MLP(2, hidden=(4,), generator=torch.Generator())
    net.activation = activation
    return net


SUPPORTED = {
    "mlp": lambda: MLP(2, hidden=(4,), generator=torch.Generator()),
    "mlp with fourier": lambda: MLP(
        2, hidden=(4,), generator=torch.Generator(), fourier_features=3
    ),
    "sequential": lambda: nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)),
    "single linear": lambda: nn.Sequential(nn.Linear(2, 1)),
    "mixed": lambda: mixed(2),
    "fourier first": lambda: mixed(2, fourier=True),
    "subclass keeping forward": lambda: _Plain(nn.Linear(2, 4), nn.SiLU(), nn.Linear(4, 1)),
    "constrained mlp": lambda: Constrained(MLP(2, 2, (4,), generator=torch.Generator()), transform),
    "constrained sequential": lambda: Constrained(mixed(2, out_dim=2), transform),
}
#: Networks that are not a chain but torch.fx traces into the Taylor engine's program.
TRACED = {
    "other module": lambda: nn.Linear(2, 1),
    "activation overriding forward": lambda: nn.Sequential(
        nn.Linear(2, 4), _LeakyTanh(), nn.Linear(4, 1)
    ),
    "mlp activation overriding forward": lambda: _mlp_with(_LeakyTanh()),
    "sequential overriding forward": lambda: _Doubled(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1)),
    "mlp overriding forward": lambda: _Shifted(2, hidden=(4,), generator=torch.Generator()),
    "ends with an activation": lambda: nn.Sequential(nn.Linear(2, 1), nn.Tanh()),
    "starts with an activation": lambda: nn.Sequential(nn.Tanh(), nn.Linear(2, 1)),
    "two linears in a row": lambda: nn.Sequential(nn.Linear(2, 3), nn.Linear(3, 1)),
    "fourier not first": lambda: nn.Sequential(
        nn.Linear(2, 2),
        nn.Tanh(),
        FourierFeatures(2, 2, generator=torch.Generator()),
        nn.Linear(4, 1),
    ),
    "nested": lambda: nn.Sequential(nn.Sequential(nn.Linear(2, 4)), nn.Tanh(), nn.Linear(4, 1)),
}
UNSUPPORTED = {
    "callable": lambda: lambda x: x.sum(1),
    "object": lambda: object(),
    "vector output": lambda: nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 2)),
    "mlp vector output": lambda: MLP(2, 2, (4,), generator=torch.Generator()),
    "relu": lambda: nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1)),
    "mlp relu": lambda: _mlp_with(nn.ReLU()),
    "tanh-approximate gelu": lambda: nn.Sequential(
        nn.Linear(2, 4), nn.GELU(approximate="tanh"), nn.Linear(4, 1)
    ),
    "empty": lambda: nn.Sequential(),
    "dropout": lambda: nn.Sequential(nn.Linear(2, 4), nn.Dropout(0.0), nn.Linear(4, 1)),
    "forward hook": _hooked,
    "constrained other": lambda: Constrained(nn.Sequential(nn.Linear(2, 2), nn.ReLU()), transform),
}


@pytest.mark.parametrize("name", {**SUPPORTED, **TRACED})
def test_supports_taylor_true(name: str) -> None:
    model = {**SUPPORTED, **TRACED}[name]()
    assert ops.supports_taylor(model)
    if isinstance(model, nn.Module):
        model = model.to(F64)
    ops.laplacian(model, points(3, 2), method="taylor")  # accepted


@pytest.mark.parametrize("name", UNSUPPORTED)
def test_supports_taylor_false_and_taylor_refused(name: str) -> None:
    model = UNSUPPORTED[name]()
    assert not ops.supports_taylor(model)
    with pytest.raises(ValueError, match="method='taylor' needs"):
        ops.laplacian(model, points(3, 2), method="taylor")
    with pytest.raises(ValueError, match="method='taylor' needs order 2"):
        ops.gradient_and_axis_jet(model, points(3, 2), 2, method="taylor")


@pytest.mark.parametrize("name", ["forward hook", "tanh-approximate gelu"])
def test_unsupported_networks_take_the_generic_engine(name: str) -> None:
    """``"auto"`` falls back rather than computing something other than the forward."""
    net = UNSUPPORTED[name]().to(F64)
    x = points(5, 2)
    x_ref = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(net(x_ref).sum(), x_ref, create_graph=True)
    lap_ref = sum(
        torch.autograd.grad(g[:, i].sum(), x_ref, retain_graph=True)[0][:, i] for i in range(2)
    )
    assert_close(ops.laplacian(net, x)[1], lap_ref)
