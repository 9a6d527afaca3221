"""Every documented operator compiles inside a residual, for the networks a user builds.

torch.compile traces each residual loss and its backward whole (``fullgraph=True``: a graph
break or a fallback fails the test) with the ``aot_eager`` backend, which runs the same
tracing (dynamo, then AOTAutograd's joint forward-backward graph) as inductor without
generating kernels, so a case takes about a second instead of a C++ build. The compiled loss and
its parameter gradients must equal the eager ones. One case runs inductor itself: the generic
engine's forward mode, which only inductor mishandled ("ZeroTensors are immutable").
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
import torch
from torch import Tensor, nn

from glfpinn import ops
from glfpinn.nn import MLP, Constrained, ResidualMLP
from glfpinn.training.compiling import materialize_zero_tensors


def _transform(x: Tensor, y: Tensor) -> Tensor:
    """Burgers' hard constraint: u = -sin(pi x) + (1 - x^2) t NN."""
    return -torch.sin(torch.pi * x[:, :1]) + (1.0 - x[:, :1] ** 2) * x[:, 1:2] * y


class Softplus(nn.Module):
    """A network the Taylor engine cannot follow: it takes the generic engines."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Linear(2, 8)
        self.b = nn.Linear(8, 8)  # a hidden layer: one layer alone did not meet the ZeroTensor
        self.c = nn.Linear(8, 1)

    def forward(self, x: Tensor) -> Tensor:
        softplus = nn.functional.softplus
        return self.c(softplus(self.b(softplus(self.a(x)))))


def _gen() -> torch.Generator:
    return torch.Generator().manual_seed(0)


NETWORKS: dict[str, Callable[[], nn.Module]] = {
    "constrained mlp": lambda: Constrained(MLP(2, 1, (8, 8), generator=_gen()), _transform),
    "constrained residual mlp": lambda: Constrained(
        ResidualMLP(2, width=8, depth=1, generator=_gen()), _transform
    ),
    "generic": Softplus,
}
#: Burgers-like residuals, one per documented operator (docs/problems.md).
RESIDUALS: dict[str, Callable[[nn.Module, Tensor], Tensor]] = {
    "axis_jet": lambda m, x: (lambda u, d: d[0, :, 1] + u * d[0, :, 0] - 0.01 * d[1, :, 0])(
        *ops.axis_jet(m, x, 2)
    ),
    "gradient_and_axis_jet": lambda m, x: (lambda u, g, d: g[:, 1] + u * g[:, 0] - d[0, :, 0])(
        *ops.gradient_and_axis_jet(m, x, 2, dims=[0])
    ),
    "laplacian": lambda m, x: ops.laplacian(m, x)[1] + 1.0,
    "value_grad_laplacian": lambda m, x: (lambda u, g, lap: g[:, 1] - lap + u)(
        *ops.value_grad_laplacian(m, x, dims=slice(0, -1))
    ),
    "value_and_gradient": lambda m, x: ops.value_and_gradient(m, x)[1].sum(1),
    "axis_derivatives": lambda m, x: ops.axis_derivatives(m, x, 3).sum(1),
    "partial_derivative": lambda m, x: ops.partial_derivative(m, x, 0, 2),
}
#: The cases: every operator on a hard-constrained residual MLP (the traced program and the
#: constraint's jet arithmetic), the hard-constrained MLP's that broke (a chain and the jets),
#: and the generic engines' second derivatives.
CASES = [(op, "constrained residual mlp") for op in RESIDUALS] + [
    ("axis_jet", "constrained mlp"),
    ("laplacian", "constrained mlp"),
    ("gradient_and_axis_jet", "generic"),
    ("laplacian", "generic"),
]


def _compiled_loss_and_grads(
    loss: Callable[[], Tensor], model: nn.Module, **options: object
) -> tuple[Tensor, list[Tensor]]:
    """The compiled loss and its gradients, checking that torch compiled a graph (with
    compiling switched off it would run eagerly and prove nothing)."""
    from torch._dynamo.utils import counters

    torch._dynamo.reset()
    graphs = counters["stats"]["unique_graphs"]
    out = _loss_and_grads(torch.compile(loss, **options), model)
    assert counters["stats"]["unique_graphs"] > graphs, "nothing was compiled"
    return out


def _loss_and_grads(loss: Callable[[], Tensor], model: nn.Module) -> tuple[Tensor, list[Tensor]]:
    value = loss()
    grads = torch.autograd.grad(value, list(model.parameters()), materialize_grads=True)
    return value.detach(), list(grads)


@pytest.mark.parametrize(("op", "net"), CASES)
def test_each_documented_op_compiles_inside_a_residual(real_compile, op: str, net: str) -> None:
    torch.manual_seed(0)  # the generic network's layers
    model = NETWORKS[net]()
    ops.supports_taylor(model)  # as the trainer does when it builds the network: traced once
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(1)) * 2.0 - 1.0
    residual = RESIDUALS[op]

    def loss() -> Tensor:
        return residual(model, x).square().mean()

    got, got_grads = _compiled_loss_and_grads(loss, model, backend="aot_eager", fullgraph=True)
    want, want_grads = _loss_and_grads(loss, model)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


#: Navier-Stokes-like residuals of a network with outputs (u, v, p), one per outputs_* operator.
OUTPUTS_RESIDUALS: dict[str, Callable[[nn.Module, Tensor], Tensor]] = {
    "outputs_value_grad_laplacian": lambda m, x: (
        lambda w, g, lap: w[:, 0] * g[:, 0, 0] + w[:, 1] * g[:, 1, 0] + g[:, 0, 2] - lap[:, 0]
    )(*ops.outputs_value_grad_laplacian(m, x)),
    "outputs_laplacian": lambda m, x: (lambda w, lap: lap[:, 1] + w[:, 0] * lap[:, 2])(
        *ops.outputs_laplacian(m, x, dims=[0])
    ),
    "outputs_value_and_gradient": lambda m, x: (lambda w, g: g[:, 0, 0] + g[:, 1, 1] + w[:, 2])(
        *ops.outputs_value_and_gradient(m, x)
    ),
}
#: Three-output networks: a chain and a traced program on the Taylor engine, and a
#: hard-constrained one, whose outputs go one by one through the generic engine.
SYSTEMS: dict[str, Callable[[], nn.Module]] = {
    "mlp": lambda: MLP(2, 3, (8, 8), generator=_gen()),
    "residual mlp": lambda: ResidualMLP(2, 3, width=8, depth=1, generator=_gen()),
    "constrained mlp": lambda: Constrained(
        MLP(2, 3, (8,), generator=_gen()), lambda x, y: x[:, :1] * y
    ),
}


@pytest.mark.parametrize(
    ("op", "net"),
    [(op, "mlp") for op in OUTPUTS_RESIDUALS]
    + [("outputs_value_grad_laplacian", "residual mlp")]
    + [("outputs_value_grad_laplacian", "constrained mlp")],
)
def test_each_outputs_op_compiles_inside_a_residual(real_compile, op: str, net: str) -> None:
    model = SYSTEMS[net]()
    ops.supports_taylor(model, outputs=True)  # as the trainer does: traced once
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(1)) * 2.0 - 1.0
    residual = OUTPUTS_RESIDUALS[op]

    def loss() -> Tensor:
        return residual(model, x).square().mean()

    got, got_grads = _compiled_loss_and_grads(loss, model, backend="aot_eager", fullgraph=True)
    want, want_grads = _loss_and_grads(loss, model)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)


def test_the_generic_engine_compiles_with_inductor(real_compile) -> None:
    """Forward mode's zero tangents of the weights are built as ordinary zeros for inductor,
    whose compiled backward otherwise writes into a ZeroTensor."""
    materialize_zero_tensors()  # as a compiled run does
    torch.manual_seed(0)
    model = Softplus()
    x = torch.rand(16, 2, generator=torch.Generator().manual_seed(1))

    def loss() -> Tensor:
        return ops.laplacian(model, x)[1].square().mean()

    got, got_grads = _compiled_loss_and_grads(loss, model)
    want, want_grads = _loss_and_grads(loss, model)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    for g, w in zip(got_grads, want_grads, strict=True):
        torch.testing.assert_close(g, w, rtol=1e-4, atol=1e-5)
