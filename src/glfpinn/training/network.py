"""The run's network: the built-in MLP, a user's module, or a user's factory, seeded from the run
and wrapped in the problem's hard constraint."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import nn

from glfpinn import ops
from glfpinn.nn import Constrained
from glfpinn.problems.base import Problem

__all__ = ["build_network", "ModelSpec"]

#: A module, or a factory ``problem -> module``.
ModelSpec = nn.Module | Callable[[Problem], nn.Module]
#: Module types already warned about taking the generic derivative path (warned once each).
_WARNED_GENERIC: set[type] = set()


def build_network(
    problem: Problem,
    model: ModelSpec | None,
    seed: int,
    *,
    hidden: Sequence[int] | None = None,
    activation: str | None = None,
    fourier_features: int = 0,
    fourier_scale: float = 1.0,
) -> nn.Module:
    """Without ``model``, the problem's MLP (``hidden``, ``activation``, Fourier features),
    initialised from ``seed``; else ``model``, or what the factory ``model`` builds, in the
    problem's hard constraint. Warns once per type about a model off the fast derivative path."""
    if model is None:
        net = problem.build_model(
            tuple(hidden or problem.run_default("hidden")),
            activation or "tanh",
            generator=torch.Generator().manual_seed(seed),
            fourier_features=fourier_features,
            fourier_scale=fourier_scale,
        )
    else:
        mlp = {"hidden": hidden, "activation": activation, "fourier_features": fourier_features}
        given = [name for name, value in mlp.items() if value]
        if given:
            raise ValueError(
                f"{', '.join(given)} describe the built-in MLP and cannot go with model=; "
                "build them into the model"
            )
        module = model if isinstance(model, nn.Module) else _build_seeded(model, problem, seed)
        net = problem.wrap_model(module)
    _warn_if_generic(net)
    return net


def _warn_if_generic(model: nn.Module) -> None:
    net = model.net if isinstance(model, Constrained) else model
    if ops.supports_taylor(model) or type(net) in _WARNED_GENERIC:
        return
    _WARNED_GENERIC.add(type(net))
    warnings.warn(
        f"the model {type(net).__name__} is not one the fast derivative engines know (an MLP "
        "or nn.Sequential of nn.Linear and tanh/sin/silu/gelu, optionally in Constrained); "
        "its derivatives take the generic path, which can be several times slower",
        UserWarning,
        stacklevel=4,
    )


def _build_seeded(
    factory: Callable[[Problem], nn.Module], problem: Problem, seed: int
) -> nn.Module:
    """``factory(problem)`` with torch's global RNG seeded from the run for the call and restored
    after it: a factory that lets ``nn.Linear`` initialise itself is reproducible from the run's
    seed and leaves the caller's random state as it was."""
    if not callable(factory):
        raise ValueError(f"model={factory!r} must be an nn.Module or a callable problem -> module")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = factory(problem)
    if not isinstance(net, nn.Module):
        raise ValueError(
            f"the model factory {factory!r} returned {type(net).__name__}, not a Module"
        )
    return net
