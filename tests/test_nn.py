"""glfpinn.nn: the MLP's initialisation and its Fourier features."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import glfpinn.ops as ops
from glfpinn.nn import MLP, FourierFeatures

# torch.func's jvp decompositions call the deprecated torch.jit.script internally (torch 2.13)
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script`:DeprecationWarning")

F64 = torch.float64


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_shapes_and_values() -> None:
    ff = FourierFeatures(3, 5, scale=2.0, generator=gen()).to(F64)
    x = torch.rand(7, 3, generator=gen(1), dtype=F64)
    z = 2 * math.pi * x @ ff.B.T
    torch.testing.assert_close(ff(x), torch.cat([torch.sin(z), torch.cos(z)], dim=1))
    assert ff.B.shape == (5, 3) and ff(x).shape == (7, 10)
    net = MLP(3, 2, hidden=(8,), generator=gen(), fourier_features=5)
    assert net.layers[0].in_features == 10 and net.in_dim == 3
    assert net(x.float()).shape == (7, 2)


def test_frequencies_are_a_buffer_not_a_parameter() -> None:
    net = MLP(2, hidden=(4,), generator=gen(), fourier_features=3)
    assert "fourier.B" in net.state_dict()
    assert all(p is not net.fourier.B for p in net.parameters())
    assert net.to(F64).fourier.B.dtype == F64
    other = MLP(2, hidden=(4,), generator=gen(9), fourier_features=3)
    other.load_state_dict(net.state_dict())
    x = torch.rand(5, 2, dtype=F64)
    assert torch.equal(other.to(F64)(x), net(x))


def test_determinism_and_scale() -> None:
    a, b = FourierFeatures(2, 4, generator=gen(3)), FourierFeatures(2, 4, generator=gen(3))
    assert torch.equal(a.B, b.B)
    assert not torch.equal(a.B, FourierFeatures(2, 4, generator=gen(4)).B)
    assert torch.equal(FourierFeatures(2, 4, scale=3.0, generator=gen(3)).B, 3.0 * a.B)
    big = FourierFeatures(4, 5000, scale=3.0, generator=gen(3)).B
    assert abs(big.std().item() - 3.0) < 0.1
    m1 = MLP(2, hidden=(4,), generator=gen(5), fourier_features=3)
    m2 = MLP(2, hidden=(4,), generator=gen(5), fourier_features=3)
    for (k, t1), t2 in zip(m1.state_dict().items(), m2.state_dict().values(), strict=True):
        assert torch.equal(t1, t2), k


def test_global_rng_untouched() -> None:
    state = torch.random.get_rng_state()
    FourierFeatures(2, 4, generator=gen())
    FourierFeatures(2, 4)  # without a generator: a freshly seeded one, not the global RNG
    MLP(2, hidden=(4,), generator=gen(), fourier_features=3)
    assert torch.equal(state, torch.random.get_rng_state())


@pytest.mark.parametrize("fourier", [0, 4])
def test_initial_weights_are_xavier_draws_in_layer_order(fourier: int) -> None:
    """Without Fourier features the weights are what they always were (recorded results depend
    on them); with them, B is drawn after the layers."""
    net = MLP(3, hidden=(8, 6), generator=gen(5), fourier_features=fourier)
    g = gen(5)
    first = 2 * fourier if fourier else 3
    for layer, shape in zip(net.layers, [(8, first), (6, 8), (1, 6)], strict=True):
        want = nn.init.xavier_normal_(torch.empty(shape), generator=g)
        assert torch.equal(layer.weight, want)
        assert torch.equal(layer.bias, torch.zeros(shape[0]))
    if fourier:
        assert torch.equal(net.fourier.B, torch.randn(fourier, 3, generator=g))
    else:
        assert net.fourier is None
        assert sorted(net.state_dict()) == [
            f"layers.{i}.{p}" for i in range(3) for p in ("bias", "weight")
        ]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"fourier_features": -1}, "fourier_features=-1"),
        ({"fourier_features": 1.5}, "fourier_features=1.5"),
        ({"fourier_features": True}, "fourier_features=True"),
        ({"fourier_features": 2, "fourier_scale": 0.0}, "fourier_scale=0.0"),
        ({"fourier_features": 2, "fourier_scale": float("inf")}, "fourier_scale=inf"),
        ({"fourier_scale": -1.0}, "fourier_scale=-1.0"),
    ],
)
def test_mlp_errors(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        MLP(2, generator=gen(), **kwargs)


@pytest.mark.parametrize(
    ("args", "match"),
    [((0, 3), "in_dim=0"), ((2, 0), "n_features=0"), ((2, 3, -2.0), "scale=-2.0")],
)
def test_fourier_features_errors(args: tuple, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        FourierFeatures(*args, generator=gen())


@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_taylor_engine_matches_the_generic_engine(activation: str) -> None:
    net = MLP(2, hidden=(8, 8), activation=activation, generator=gen(2), fourier_features=5)
    net = net.to(F64)
    with torch.no_grad():  # nonzero biases, so that every derivative term is exercised
        for layer in net.layers:
            layer.bias.copy_(0.3 * torch.randn(layer.bias.shape, generator=gen(7), dtype=F64))
    assert ops.supports_taylor(net)
    x = torch.rand(9, 2, generator=gen(1), dtype=F64)

    def run(method: str) -> list[torch.Tensor]:
        return [
            *ops.laplacian(net, x, method=method),
            *ops.value_grad_laplacian(net, x, dims=[0], method=method),
            *ops.axis_jet(net, x, 4, method=method),
            *ops.gradient_and_axis_jet(
                net, x, 2, dims=[0], method="taylor" if method == "taylor" else "nested"
            ),
        ]

    got, want = run("taylor"), run("jvp")
    for a, b in zip(got, want, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)

    def grads(outs: list[torch.Tensor]) -> list[torch.Tensor]:
        loss = sum(t.square().mean() for t in outs)
        return list(torch.autograd.grad(loss, list(net.parameters())))

    for a, b in zip(grads(got), grads(want), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)
