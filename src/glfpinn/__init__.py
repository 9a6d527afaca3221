"""glfpinn: physics-informed neural networks with adaptive collocation sampling.

The public API is this flat namespace; modules behind it are implementation detail.
"""

from __future__ import annotations

__version__ = "0.1.0"

from glfpinn import ops, problems, samplers, testing
from glfpinn.callbacks import Callback, ProgressBar
from glfpinn.domains import Box, Domain, LShape
from glfpinn.nn import MLP, Constrained
from glfpinn.problems import Problem
from glfpinn.samplers import (
    GLF,
    PACMANN,
    R3,
    RAD,
    RARD,
    RARG,
    Mix,
    Resampled,
    RSmote,
    Sampler,
    SamplingContext,
    Uniform,
    UniformResample,
)
from glfpinn.schedules import Every, Never, Schedule
from glfpinn.train import NonFiniteLossError, Trainer, TrainResult, train

__all__ = [
    "GLF",
    "MLP",
    "PACMANN",
    "R3",
    "RAD",
    "RARD",
    "RARG",
    "Mix",
    "RSmote",
    "Box",
    "Callback",
    "Constrained",
    "Domain",
    "Every",
    "LShape",
    "Never",
    "NonFiniteLossError",
    "Problem",
    "ProgressBar",
    "Resampled",
    "Sampler",
    "SamplingContext",
    "Schedule",
    "TrainResult",
    "Trainer",
    "Uniform",
    "UniformResample",
    "__version__",
    "ops",
    "problems",
    "samplers",
    "testing",
    "train",
]
