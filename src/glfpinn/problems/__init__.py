"""Benchmark problems and their registry: ``get("allen-cahn")``, ``names()``."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from glfpinn._registry import Registry
from glfpinn.problems.allen_cahn import AllenCahn
from glfpinn.problems.base import (
    Model,
    Problem,
    check_problem,
    check_problem_class,
    with_reference,
)
from glfpinn.problems.burgers import SHARP_NU, Burgers
from glfpinn.problems.diffusion_reaction import DiffusionReaction
from glfpinn.problems.dispersive import Dispersive
from glfpinn.problems.heat import HeatND
from glfpinn.problems.helmholtz import Helmholtz
from glfpinn.problems.laplace import Laplace
from glfpinn.problems.pinnacle import LidDrivenCavity, PinnacleBurgers, PoissonHoles
from glfpinn.problems.poisson import Poisson
from glfpinn.problems.reaction_diffusion import AllenCahnND, ReactionDiffusion
from glfpinn.problems.reference.files import ReferenceData, load_reference
from glfpinn.problems.unknowns import Bounded, Identity, Positive, Transform, Unknown
from glfpinn.problems.wave import Wave

__all__ = [
    "AllenCahn",
    "Bounded",
    "Burgers",
    "DiffusionReaction",
    "Dispersive",
    "Helmholtz",
    "Identity",
    "Laplace",
    "LidDrivenCavity",
    "Model",
    "PinnacleBurgers",
    "Poisson",
    "PoissonHoles",
    "Positive",
    "Problem",
    "ReactionDiffusion",
    "AllenCahnND",
    "HeatND",
    "ReferenceData",
    "Transform",
    "Unknown",
    "Wave",
    "check_problem",
    "describe",
    "get",
    "load_reference",
    "names",
    "register",
    "registry",
    "with_reference",
]

_registry: Registry[Problem] = Registry("problem", group="glfpinn.problems")
#: The table behind ``get``, ``names`` and ``register`` (for tools that map classes to names).
registry = _registry
_registry.register(
    "allen-cahn", AllenCahn, "Allen-Cahn in (x, t), hard-constrained; Chebyshev reference"
)
_registry.register(
    "burgers", Burgers, "viscous Burgers in (x, t), hard-constrained; exact Cole-Hopf reference"
)
_registry.register(
    "burgers-sharp",
    partial(Burgers, viscosity=SHARP_NU),
    "Burgers at viscosity 0.001/pi (10x sharper front); Cole-Hopf reference, 600 nodes",
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
_registry.register(
    "allen-cahn-15d",
    AllenCahnND,
    "u_t = D Lap u + 5(u - u^3) + f in 15 space dims + t (ours); moving bump; soft; exact",
)
_registry.register(
    "heat-5d",
    HeatND,
    "PINNacle's Heat-ND: u_t = Lap u / d - |x|^2 u / d on the unit 5-ball x [0,1]; soft; exact",
)
# PINNacle's cases with PINNacle's own reference files, shipped in problems/data/pinnacle (#27).
_registry.register(
    "burgers1d-c",
    PinnacleBurgers,
    "PINNacle's Burgers1d-C: burgers' PDE with soft conditions; PINNacle's COMSOL reference",
)
_registry.register(
    "poisson2d-c",
    PoissonHoles,
    "PINNacle's Poisson2d-C: Laplace u = 0 on a square minus 4 disks, u = 1 / 0; soft; COMSOL ref",
)
_registry.register(
    "ns2d-c",
    LidDrivenCavity,
    "PINNacle's NS2d-C: steady lid-driven cavity, (u, v, p), nu = 1/100; soft; COMSOL reference",
)
# Problems added to test GLF away from the benchmarks it was designed on (issue #23): the first
# two chose the robust GLF's design, the last two played no part in it (docs/results.md).
_registry.register(
    "helmholtz",
    Helmholtz,
    "-Lap u - k^2 u = f on [-1,1]^2, u = sin(pi x) sin(4 pi y); soft Dirichlet; exact",
)
_registry.register(
    "diffusion-reaction",
    DiffusionReaction,
    "DeepXDE's u_t = u_xx + f in (x, t) on [-pi,pi] x [0,1], hard-constrained; exact",
)
_registry.register(
    "wave",
    Wave,
    "u_tt = u_xx in (x, t), standing waves (modes 1 and 4), hard-constrained; exact",
)
_registry.register(
    "poisson-5d",
    Poisson,
    "-Lap u = f on [0,1]^d (dim=5) with a bump in (x_1, x_2); soft Dirichlet; exact",
)

names = _registry.names
describe = _registry.describe


def get(name: str, **params: Any) -> Problem:
    """A problem by registry name or import path (``pkg.module:Class``, ``file.py:Class``) with
    its parameters, e.g. ``get("reaction-diffusion-20d", space_dim=5)``; its contract is checked
    (:func:`check_problem`) before it is returned."""
    return check_problem(_registry.get(name, **params))


def register(name: str, cls: Callable[..., Problem], description: str) -> None:
    """Make a user's problem available by ``name`` to the CLI, configs and benches."""
    check_problem_class(cls)
    _registry.register(name, cls, description)
