"""The Taylor arithmetic of glfpinn.ops._jet against nested reverse mode, op by op."""

import math

import pytest
import torch

import glfpinn.ops as ops
from glfpinn import problems
from glfpinn.nn import MLP, Constrained
from glfpinn.ops._jet import UnsupportedJetOp, transform_jet

F64 = torch.float64


def _reference(transform, x, y_fn, axes):
    """u, grad u and pure second derivatives along axes of u = transform(x, y_fn(x))."""
    x = x.detach().requires_grad_(True)
    u = transform(x, y_fn(x)).reshape(-1)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    second = [torch.autograd.grad(g[:, i].sum(), x, create_graph=True)[0][:, i] for i in axes]
    return u, g, torch.stack(second, dim=1)


def _y_jet(y_fn, x, axes):
    """y's value (n, o), gradient (d, n, o) and pure second derivatives (k, n, o)."""
    x = x.detach().requires_grad_(True)
    y = y_fn(x)
    grads, seconds = [], []
    for c in range(y.shape[1]):
        (g,) = torch.autograd.grad(y[:, c].sum(), x, create_graph=True)
        grads.append(g.T)
        seconds.append(
            torch.stack(
                [torch.autograd.grad(g[:, i].sum(), x, retain_graph=True)[0][:, i] for i in axes]
            )
        )
    return y.detach(), torch.stack(grads, -1).detach(), torch.stack(seconds, -1)


def _y(x):
    return torch.stack([torch.sin(x[:, 0] * x[:, 1]) + 0.5, torch.cos(x.sum(1)) + 2.0], dim=1)


TRANSFORMS = {
    "sin cos pow": lambda x, y: (
        x[:, :1] ** 2 * torch.cos(math.pi * x[:, :1]) + x[:, 1:2] * (1 - x[:, :1] ** 2) * y[:, :1]
    ),
    "exp sum": lambda x, y: torch.exp(-x.sum(1, keepdim=True)) * y[:, 1:] - torch.sin(y[:, :1]),
    "tanh sigmoid": lambda x, y: (
        torch.tanh(y[:, :1] * x[:, 1:]) + torch.sigmoid(x[:, :1] - y[:, 1:])
    ),
    "log sqrt": lambda x, y: torch.log(y[:, 1:]) + torch.sqrt(y[:, 1:] + x[:, :1] ** 2),
    "division": lambda x, y: (
        (1.0 + x[:, :1]) / y[:, 1:] + y[:, :1] / 3.0 + 2.0 / (1 + x[:, 1:] ** 2)
    ),
    "powers": lambda x, y: (
        y[:, 1:] ** 1.5 + 2.0 ** x[:, :1] - torch.square(y[:, :1]) * y[:, 1:] ** 3
    ),
    "tensor on the left": lambda x, y: (
        torch.ones_like(x[:, :1]) * y[:, :1] - x[:, 1:].detach() / y[:, 1:]
    ),
    "1-D output": lambda x, y: x[:, 0] * y[:, 0] + y[:, 1],
    # a jet plus a wider constant keeps narrow derivatives; reducing and indexing must broadcast
    "widened then summed": lambda x, y: (y[:, :1] + torch.zeros(1, 3, dtype=F64)).sum(1, True),
    "widened then indexed": lambda x, y: (
        (x[:, :1] + torch.arange(3.0, dtype=F64))[:, 2:] * y[:, 1:]
    ),
    "powers 0 and 1 at zero": lambda x, y: (x[:, :1] - x[:, :1]) ** 1 * y[:, :1] + x[:, :1] ** 0,
}


@pytest.mark.parametrize("name", TRANSFORMS)
@pytest.mark.parametrize("axes", [[0], [1], [0, 1], []])
def test_transform_jet_matches_nested_reverse_mode(name, axes):
    transform = TRANSFORMS[name]
    x = torch.rand(11, 2, generator=torch.Generator().manual_seed(0), dtype=F64) + 0.2
    v, d1, d2 = _y_jet(_y, x, axes or [0])
    u, grad, second = transform_jet(transform, x, v, d1, d2[: len(axes)], axes)
    u_ref, g_ref, s_ref = _reference(transform, x, _y, axes or [0])
    torch.testing.assert_close(u, u_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad, g_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second, s_ref[:, : len(axes)].detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", ["allen-cahn", "burgers"])
def test_the_problems_transforms_run_on_jets(name):
    problem = problems.get(name)
    x = torch.rand(7, 2, generator=torch.Generator().manual_seed(1), dtype=F64)
    v, d1, d2 = _y_jet(lambda z: _y(z)[:, :1], x, [0])
    u, grad, second = transform_jet(problem.output_transform, x, v, d1, d2, [0])
    u_ref, g_ref, s_ref = _reference(problem.output_transform, x, lambda z: _y(z)[:, :1], [0])
    torch.testing.assert_close(grad, g_ref.detach(), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(second, s_ref.detach(), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(
    "transform",
    [
        lambda x, y: torch.atan(x[:, :1]) * y,  # a torch function the jets lack
        lambda x, y: x[:, :1].sin() * y,  # a tensor method
        lambda x, y: y * x.shape[1] / 5.0,  # a tensor attribute (row-wise: fields must be)
    ],
    ids=["function", "method", "attribute"],
)
def test_unsupported_operations_are_refused_and_the_engine_falls_back(transform):
    x = torch.rand(5, 2, generator=torch.Generator().manual_seed(2), dtype=F64)
    v, d1, d2 = _y_jet(lambda z: _y(z)[:, :1], x, [0])
    with pytest.raises(UnsupportedJetOp, match="does not implement"):
        transform_jet(transform, x, v, d1, d2, [0])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = Constrained(MLP(2, hidden=(8, 8)).to(F64), transform)
    u, grad, higher = ops.gradient_and_axis_jet(model, x, 2, dims=[0], method="taylor")
    u_ref, g_ref, h_ref = ops.gradient_and_axis_jet(model, x, 2, dims=[0], method="nested")
    torch.testing.assert_close(grad, g_ref, rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(higher, h_ref, rtol=1e-10, atol=1e-12)
