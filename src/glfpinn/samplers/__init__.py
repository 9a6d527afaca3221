"""Collocation samplers behind one protocol, and the registry the CLI and configs use."""

from __future__ import annotations

from functools import partial

from glfpinn._registry import Registry
from glfpinn.samplers.base import Resampled, Sampler, SamplerState, SamplingContext
from glfpinn.samplers.glf import GLF
from glfpinn.samplers.rad import RAD
from glfpinn.samplers.uniform import Uniform, UniformResample

__all__ = [
    "GLF",
    "RAD",
    "Resampled",
    "Sampler",
    "SamplerState",
    "SamplingContext",
    "Uniform",
    "UniformResample",
    "describe",
    "get",
    "names",
    "register",
]

_registry: Registry[Sampler] = Registry("sampler")
for _name, _factory, _doc in [
    ("uniform", Uniform, "fixed uniform points, never resampled"),
    ("uniform-resample", UniformResample, "fresh uniform points at every resample"),
    ("sobol", partial(UniformResample, method="sobol"), "fresh scrambled Sobol' points"),
    ("halton", partial(UniformResample, method="halton"), "fresh scrambled Halton points"),
    ("lhs", partial(UniformResample, method="lhs"), "fresh Latin-hypercube points"),
    ("rad", RAD, "RAD: redraw N points from a dense candidate set scored by exact residuals"),
    ("glf", GLF, "GLF: residual-scaled Gaussian candidates inheriting their anchor's residual"),
    ("glf-d", partial(GLF, surrogate="exact"), "GLF-D: GLF with exact residuals at candidates"),
]:
    _registry.register(_name, _factory, _doc)

names = _registry.names
describe = _registry.describe
#: A sampler by name with hyperparameters, e.g. ``get("glf", alpha=1e-3)``.
get = _registry.get
#: Make a user's sampler available to the CLI, configs and benches: ``register(name, cls, doc)``.
register = _registry.register
