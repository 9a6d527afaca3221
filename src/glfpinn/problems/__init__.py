"""Benchmark problems and their registry: ``get("allen-cahn")``, ``names()``."""

from __future__ import annotations

from glfpinn._registry import Registry
from glfpinn.problems.allen_cahn import AllenCahn
from glfpinn.problems.base import Model, Problem

__all__ = ["AllenCahn", "Model", "Problem", "describe", "get", "names", "register"]

_registry: Registry[Problem] = Registry("problem")
_registry.register(
    "allen-cahn", AllenCahn, "Allen-Cahn in (x, t), hard-constrained; Chebyshev reference"
)

names = _registry.names
describe = _registry.describe
#: A problem by name with its parameters, e.g. ``get("reaction-diffusion-20d", space_dim=5)``.
get = _registry.get
#: Make a user's problem available to the CLI, configs and benches: ``register(name, cls, doc)``.
register = _registry.register
