"""Collocation samplers behind one protocol, and the registry the CLI and configs use."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any

from glfpinn._checks import check_keys, short_repr
from glfpinn._registry import Registry
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.samplers.follow import Follow
from glfpinn.samplers.glf import GLF
from glfpinn.samplers.glf_robust import RobustGLF
from glfpinn.samplers.mix import Mix
from glfpinn.samplers.pacmann import PACMANN
from glfpinn.samplers.r3 import R3
from glfpinn.samplers.rad import RAD
from glfpinn.samplers.rar_d import RARD
from glfpinn.samplers.rar_g import RARG
from glfpinn.samplers.rsmote import RSmote
from glfpinn.samplers.settle import Settle
from glfpinn.samplers.uniform import Uniform, UniformResample

__all__ = [
    "Follow",
    "GLF",
    "Mix",
    "PACMANN",
    "R3",
    "RAD",
    "RARD",
    "RARG",
    "RSmote",
    "Resampled",
    "RobustGLF",
    "Sampler",
    "SamplerState",
    "SamplingContext",
    "Settle",
    "Uniform",
    "UniformResample",
    "describe",
    "get",
    "names",
    "register",
    "registry",
]

_registry: Registry[Sampler] = Registry("sampler", group="glfpinn.samplers")
#: The table behind ``get``, ``names`` and ``register`` (for tools that map classes to names).
registry = _registry
for _name, _factory, _doc in [
    ("uniform", Uniform, "fixed uniform points, never resampled"),
    ("uniform-resample", UniformResample, "fresh uniform points at every resample"),
    ("sobol", partial(UniformResample, method="sobol"), "fresh scrambled Sobol' points"),
    ("halton", partial(UniformResample, method="halton"), "fresh scrambled Halton points"),
    ("lhs", partial(UniformResample, method="lhs"), "fresh Latin-hypercube points"),
    ("rad", RAD, "RAD: redraw N points from a dense candidate set scored by exact residuals"),
    (
        "glf-robust",
        RobustGLF,
        "robust GLF (ours, recommended): scale-free step, floor on h, 10% fresh uniform points",
    ),
    ("glf", GLF, "the paper's GLF: h = alpha / (r + eps) Gaussian candidates, inherited residuals"),
    ("glf-d", partial(GLF, surrogate="exact"), "GLF-D: GLF with exact residuals at candidates"),
    (
        "glf-scaled",
        partial(GLF, alpha_scale="relative"),
        "GLF with h relative to the residuals' median and the domain's diameter (ours)",
    ),
    (
        "glf-adaptive-m",
        partial(GLF, adaptive_M=True),
        "GLF with the N*M candidates shared out by the anchors' weights (ours)",
    ),
    ("rar-d", RARD, "RAR-D: add points drawn from scored uniform candidates (the set grows)"),
    ("rar-g", RARG, "RAR-G: add the top-residual scored uniform candidates (the set grows)"),
    ("r3", R3, "R3: keep the points with above-mean residual, redraw the rest uniformly"),
    ("rsmote", RSmote, "RSmote (our SMOTE reading): interpolate between high-residual neighbours"),
    ("pacmann", PACMANN, "PACMANN: move every point up the gradient of the squared residual"),
]:
    _registry.register(_name, _factory, _doc)


def _mix_from_config(parts: Sequence[Any]) -> Mix:
    """``Mix`` from config data: parts given as ``{sampler: name, fraction: f, params: {...}}``
    (or as ``(sampler, fraction)`` pairs from Python); parts may be mixes themselves."""
    if not isinstance(parts, Sequence) or isinstance(parts, str):
        raise ValueError(
            f"parts={short_repr(parts)} must be a list of {{sampler, fraction, params}}"
        )
    built = []
    for part in parts:
        if isinstance(part, Mapping):
            check_keys("mix part key", part, ("sampler", "fraction", "params"))
            if "sampler" not in part or "fraction" not in part:
                raise ValueError(
                    f"mix part {short_repr(dict(part))} needs a sampler and a fraction"
                )
            params = part.get("params") or {}
            if not isinstance(params, Mapping):
                raise ValueError(f"mix part params={short_repr(params)} must be a mapping")
            built.append((get(part["sampler"], **params), part["fraction"]))
        else:
            built.append(part)
    return Mix(built)


_registry.register(
    "mix",
    _mix_from_config,
    "Mix: samplers sharing the points in fixed fractions (sampler_params.parts)",
)


def _inner_from_config(inner: str | Sampler, inner_params: Mapping[str, Any] | None) -> Sampler:
    """A combinator's inner sampler from config data: by registry name, with its own params."""
    if not isinstance(inner, Sampler):
        if inner_params is not None and not isinstance(inner_params, Mapping):
            raise ValueError(f"inner_params={short_repr(inner_params)} must be a mapping")
        return get(inner, **(inner_params or {}))
    if inner_params:
        raise ValueError("inner_params go with an inner sampler given by name")
    return inner


def _settle_from_config(
    inner: str | Sampler = "glf-robust",
    inner_params: Mapping[str, Any] | None = None,
    **settle: Any,
) -> Settle:
    """``Settle`` from config data: the inner sampler by registry name, with its own params."""
    return Settle(_inner_from_config(inner, inner_params), **settle)


def _follow_from_config(
    inner: str | Sampler = "glf-robust",
    inner_params: Mapping[str, Any] | None = None,
    **follow: Any,
) -> Follow:
    """``Follow`` from config data: the inner sampler by registry name, with its own params."""
    return Follow(_inner_from_config(inner, inner_params), **follow)


_registry.register(
    "settle",
    _settle_from_config,
    "robust GLF (or sampler_params.inner) until the residual's ranking stops persisting, "
    "then the initial set, fixed, or fresh uniform draws (sampler_params.then; ours)",
)
_registry.register(
    "follow",
    _follow_from_config,
    "robust GLF (or sampler_params.inner) for a share of the points that grows with the "
    "residual's persistence, the rest fresh uniform points (ours)",
)

names = _registry.names
describe = _registry.describe
#: A sampler by registry name or import path (``pkg.module:Class``, ``file.py:Class``) with
#: hyperparameters, e.g. ``get("glf", alpha=1e-3)``.
get = _registry.get
#: Make a user's sampler available to the CLI, configs and benches: ``register(name, cls, doc)``.
register = _registry.register
