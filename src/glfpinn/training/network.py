"""The run's network: the built-in MLP, a user's module, or a user's factory, seeded from the run
and wrapped in the problem's hard constraint.

The two that a config can name are parts with ``get_params`` (constructor = hyperparameters):
:class:`MLPSpec`, the problem's MLP, and :class:`ModelFactory`, a factory by import path with
its keyword arguments.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, final

import torch
from torch import nn

from glfpinn import ops
from glfpinn._checks import short_repr
from glfpinn._params import Params
from glfpinn.nn import Constrained
from glfpinn.plugins import is_import_path, load_object
from glfpinn.problems.base import Problem

__all__ = ["build_network", "network_spec", "ModelSpec", "MLPSpec", "ModelFactory"]


@final
class MLPSpec(Params):
    """The problem's built-in MLP (:meth:`Problem.build_model`), initialised from the run's seed.

    Args:
        hidden: widths of the hidden layers (None: the problem's run default).
        activation: tanh (None), sin, silu or gelu.
        fourier_features: random Fourier features in front of the first layer (0: none).
        fourier_scale: standard deviation of their frequencies.
    """

    def __init__(
        self,
        hidden: Sequence[int] | None = None,
        activation: str | None = None,
        fourier_features: int = 0,
        fourier_scale: float = 1.0,
    ) -> None:
        self.hidden = hidden
        self.activation = activation
        self.fourier_features = fourier_features
        self.fourier_scale = fourier_scale

    def build(self, problem: Problem, seed: int) -> nn.Module:
        """The network, its initialisation drawn from a generator seeded with ``seed``."""
        return problem.build_model(
            tuple(self.hidden or problem.run_default("hidden")),
            self.activation or "tanh",
            generator=torch.Generator().manual_seed(seed),
            fourier_features=self.fourier_features,
            fourier_scale=self.fourier_scale,
        )

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"MLPSpec({args})"


@final
class ModelFactory(Params):
    """A factory ``problem -> nn.Module`` named by import path (``package.module:make``,
    ``path/to/file.py:make``), called as ``make(problem, **model_params)``; or an
    ``nn.Module`` class (``package.module:ResMLP``), built as ``ResMLP(**model_params)``, or
    as ``ResMLP(problem, **model_params)`` where its first argument is named ``problem``."""

    def __init__(self, model: str, model_params: Mapping[str, Any] | None = None) -> None:
        if not isinstance(model, str) or not is_import_path(model):
            raise ValueError(
                f"model={short_repr(model)} must be an import path like package.module:make "
                "or path/to/file.py:make"
            )
        factory = load_object(model, "model")
        if not callable(factory):
            raise ValueError(f"model {short_repr(model)} is not callable")
        self.model = model
        self.model_params = dict(model_params or {})
        self._factory = factory

    def __call__(self, problem: Problem) -> nn.Module:
        if _is_module_class(self._factory) and not _takes_problem(self._factory):
            try:
                return self._factory(**self.model_params)
            except TypeError as err:
                raise ValueError(
                    f"model {short_repr(self.model)} is an nn.Module class, built as "
                    f"{self._factory.__name__}(**model_params): {err}; give its arguments "
                    "with model_params (--set model_params.NAME=VALUE)"
                ) from None
        return self._factory(problem, **self.model_params)

    def __repr__(self) -> str:
        return f"ModelFactory({self.model!r}, model_params={self.model_params!r})"


#: A module, a factory ``problem -> module`` (:class:`ModelFactory` among them), or the
#: built-in MLP's :class:`MLPSpec`.
ModelSpec = nn.Module | Callable[[Problem], nn.Module] | MLPSpec
#: (module type, a system?) pairs already warned about taking the generic derivative path.
_WARNED_GENERIC: set[tuple[type, bool]] = set()


def network_spec(
    model: ModelSpec | None,
    *,
    hidden: Sequence[int] | None = None,
    activation: str | None = None,
    fourier_features: int = 0,
    fourier_scale: float = 1.0,
) -> ModelSpec:
    """``model``, or without it the built-in MLP's :class:`MLPSpec` with these options (which
    describe the built-in MLP and are refused together with ``model``)."""
    if model is None:
        return MLPSpec(hidden, activation, fourier_features, fourier_scale)
    mlp = {"hidden": hidden, "activation": activation, "fourier_features": fourier_features}
    given = [name for name, value in mlp.items() if value]
    if given:
        raise ValueError(
            f"{', '.join(given)} describe the built-in MLP and cannot go with model=; "
            "build them into the model"
        )
    return model


def build_network(problem: Problem, model: ModelSpec | None, seed: int) -> nn.Module:
    """Without ``model`` (or with an :class:`MLPSpec`), the problem's MLP initialised from
    ``seed``; else ``model``, or what the factory ``model`` builds, in the problem's hard
    constraint. Warns once per type about a model off the fast derivative path."""
    if model is None:
        model = MLPSpec()
    if isinstance(model, MLPSpec):
        net = model.build(problem, seed)
    else:
        module = model if isinstance(model, nn.Module) else _build_seeded(model, problem, seed)
        net = problem.wrap_model(module)
        _check_takes_points(net, problem, model)
    _warn_if_generic(net, len(problem.outputs))
    return net


def _check_takes_points(net: nn.Module, problem: Problem, spec: ModelSpec) -> None:
    """A user's network on two points of the problem's domain, before any run directory is
    made: one of another input width (or output shape) is refused in one line naming it,
    not met as a shape error inside the first training step."""
    name = spec.model if isinstance(spec, ModelFactory) else type(net).__name__
    like = next(iter(net.parameters()), None)
    dtype = like.dtype if like is not None and like.is_floating_point() else torch.float32
    x = problem.domain.sample(2, torch.Generator().manual_seed(0), dtype=dtype)
    if like is not None:
        x = x.to(like.device)
    try:
        with torch.no_grad():
            u = net(x)
    except Exception as err:  # noqa: BLE001 - any failure of the user's forward, in one line
        raise ValueError(
            f"model {short_repr(name)} does not take this problem's points, a tensor of shape "
            f"(n, {problem.dim}) ({type(err).__name__}: {err})"
        ) from None
    k = len(problem.outputs)
    if not isinstance(u, torch.Tensor) or u.ndim == 0 or u.shape[0] != 2 or u.numel() != 2 * k:
        shape = tuple(u.shape) if isinstance(u, torch.Tensor) else type(u).__name__
        want = "one value per point, shape (n, 1)" if k == 1 else f"shape (n, {k}): one column"
        raise ValueError(
            f"model {short_repr(name)} returns {shape} for 2 points; it must return {want}"
            + ("" if k == 1 else f" per output ({', '.join(problem.outputs)})")
        )


def _warn_if_generic(model: nn.Module, n_outputs: int) -> None:
    """Warn once per type about a model the Taylor engine cannot follow. A system's network
    (several outputs) counts as followed when the ``ops.outputs_*`` operators, which take every
    output at once, can follow it; whether its residual uses them is the residual's affair."""
    net = model.net if isinstance(model, Constrained) else model
    system = n_outputs > 1
    if ops.supports_taylor(model, outputs=system) or (type(net), system) in _WARNED_GENERIC:
        return
    _WARNED_GENERIC.add((type(net), system))
    if system and isinstance(model, Constrained) and ops.supports_taylor(net, outputs=True):
        why = (  # the network is fine: the ops.outputs_* operators take no hard constraint
            f"this system's hard constraint (Constrained) makes the ops.outputs_* operators "
            f"differentiate its {n_outputs} outputs one by one: they"
        )
    else:
        why = (
            f"the model {type(net).__name__} is not one the fast derivative engines follow "
            "(torch.fx must trace it into Linear layers, tanh/sin/silu/gelu activations, sums, "
            "products and concatenations, as glfpinn.nn's MLP, ResidualMLP and ModifiedMLP "
            "are); its derivatives"
        )
    warnings.warn(
        f"{why} take the generic path, which can be several times slower",
        UserWarning,
        stacklevel=4,
    )


def _is_module_class(obj: object) -> bool:
    return isinstance(obj, type) and issubclass(obj, nn.Module)


def _takes_problem(cls: type) -> bool:
    """Whether ``cls``'s constructor takes the problem first (an argument named ``problem``)."""
    try:
        first = next(iter(inspect.signature(cls).parameters), None)
    except (TypeError, ValueError):  # no signature to read: built without the problem
        return False
    return first == "problem"


def _build_seeded(
    factory: Callable[[Problem], nn.Module], problem: Problem, seed: int
) -> nn.Module:
    """``factory(problem)`` with torch's global RNG seeded from the run for the call and restored
    after it: a factory that lets ``nn.Linear`` initialise itself is reproducible from the run's
    seed and leaves the caller's random state as it was."""
    if not callable(factory):
        raise ValueError(f"model={factory!r} must be an nn.Module or a callable problem -> module")
    if _is_module_class(factory):
        raise ValueError(
            f"model={factory.__name__} is an nn.Module class; pass an instance "
            f"({factory.__name__}(...)) or a factory problem -> module"
        )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = factory(problem)
    if not isinstance(net, nn.Module):
        raise ValueError(
            f"the model factory {factory!r} returned {type(net).__name__}, not a Module"
        )
    return net
