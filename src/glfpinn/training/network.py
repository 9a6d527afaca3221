"""The run's network: the built-in MLP, a user's module, or a user's factory, seeded from the run
and wrapped in the problem's hard constraint."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import final

import torch
from torch import nn

from glfpinn import ops
from glfpinn.nn import Constrained
from glfpinn.problems.base import Problem

__all__ = ["build_network", "BuiltinMLP", "ModelSpec", "network_spec"]


@final
@dataclass(frozen=True)
class BuiltinMLP:
    """The problem's own MLP (:meth:`Problem.build_model`): widths ``hidden`` (None: the
    problem's), ``activation`` (None: tanh) and ``fourier_features`` random Fourier features
    of scale ``fourier_scale``; its initialisation is drawn from the run's seed."""

    hidden: tuple[int, ...] | None = None
    activation: str | None = None
    fourier_features: int = 0
    fourier_scale: float = 1.0


#: A module, a factory ``problem -> module``, or the problem's MLP with options.
ModelSpec = nn.Module | Callable[[Problem], nn.Module] | BuiltinMLP


def network_spec(
    model: ModelSpec | None,
    *,
    hidden: Sequence[int] | None = None,
    activation: str | None = None,
    fourier_features: int = 0,
    fourier_scale: float = 1.0,
) -> ModelSpec:
    """``model``, or without it the built-in MLP with these options (which describe the
    built-in MLP and are refused together with ``model``)."""
    if model is None:
        widths = None if hidden is None else tuple(hidden)
        return BuiltinMLP(widths, activation, fourier_features, fourier_scale)
    mlp = {"hidden": hidden, "activation": activation, "fourier_features": fourier_features}
    given = [name for name, value in mlp.items() if value]
    if given:
        raise ValueError(
            f"{', '.join(given)} describe the built-in MLP and cannot go with model=; "
            "build them into the model"
        )
    return model


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
    """Without ``model`` (or with a :class:`BuiltinMLP`), the problem's MLP (``hidden``,
    ``activation``, Fourier features), initialised from ``seed``; else ``model``, or what the
    factory ``model`` builds, in the problem's hard constraint. Warns once per type about a
    model off the fast derivative path."""
    spec = network_spec(
        model,
        hidden=hidden,
        activation=activation,
        fourier_features=fourier_features,
        fourier_scale=fourier_scale,
    )
    if isinstance(spec, BuiltinMLP):
        net = problem.build_model(
            tuple(spec.hidden or problem.run_default("hidden")),
            spec.activation or "tanh",
            generator=torch.Generator().manual_seed(seed),
            fourier_features=spec.fourier_features,
            fourier_scale=spec.fourier_scale,
        )
    else:
        module = spec if isinstance(spec, nn.Module) else _build_seeded(spec, problem, seed)
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
