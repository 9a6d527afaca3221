"""Benchmark problems and their registry: ``get("allen-cahn")``, ``names()``."""

from __future__ import annotations

from glfpinn._registry import Registry
from glfpinn.problems.allen_cahn import AllenCahn
from glfpinn.problems.base import Model, Problem
from glfpinn.problems.burgers import Burgers
from glfpinn.problems.dispersive import Dispersive
from glfpinn.problems.laplace import Laplace
from glfpinn.problems.reaction_diffusion import ReactionDiffusion

__all__ = [
    "AllenCahn",
    "Burgers",
    "Dispersive",
    "Laplace",
    "Model",
    "Problem",
    "ReactionDiffusion",
    "describe",
    "get",
    "names",
    "register",
]

_registry: Registry[Problem] = Registry("problem")
_registry.register(
    "allen-cahn", AllenCahn, "Allen-Cahn in (x, t), hard-constrained; Chebyshev reference"
)
_registry.register(
    "burgers", Burgers, "viscous Burgers in (x, t), hard-constrained; exact Cole-Hopf reference"
)
_registry.register(
    "laplace", Laplace, "Laplace on the L-shape, corner singularity r^(2/3); soft Dirichlet; exact"
)
_registry.register(
    "dispersive-10d",
    Dispersive,
    "u_t + sum_i u_xxx = f in d space dims (space_dim=10) + t; moving bump; soft; exact",
)
_registry.register(
    "reaction-diffusion-20d",
    ReactionDiffusion,
    "u_t = D Lap u + u - u^3 + f in d space dims (space_dim=20) + t; moving bump; soft; exact",
)

names = _registry.names
describe = _registry.describe
#: A problem by name with its parameters, e.g. ``get("reaction-diffusion-20d", space_dim=5)``.
get = _registry.get
#: Make a user's problem available to the CLI, configs and benches: ``register(name, cls, doc)``.
register = _registry.register
