"""glfpinn: physics-informed neural networks with adaptive collocation sampling.

The public API is this flat namespace; modules behind it are implementation detail.
"""

from __future__ import annotations

__version__ = "0.1.0"

from glfpinn import ops, problems, samplers, testing, training
from glfpinn.domains import Box, Domain, LShape
from glfpinn.nn import MLP, Constrained, FourierFeatures, Sin
from glfpinn.problems import Problem
from glfpinn.runs import Run, load_run, plot_run, record, train
from glfpinn.samplers import (
    GLF,
    PACMANN,
    R3,
    RAD,
    RARD,
    RARG,
    Mix,
    Resampled,
    RobustGLF,
    RSmote,
    Sampler,
    SamplingContext,
    Uniform,
    UniformResample,
)
from glfpinn.training import (
    Callback,
    Evaluator,
    Every,
    Never,
    NonFiniteLossError,
    OptimizationPlan,
    ProgressBar,
    Schedule,
    Scorer,
    Stage,
    Trainer,
    TrainResult,
    TrainState,
)

__all__ = [
    "GLF",
    "MLP",
    "PACMANN",
    "R3",
    "RAD",
    "RARD",
    "RARG",
    "Mix",
    "RobustGLF",
    "RSmote",
    "Box",
    "Callback",
    "Constrained",
    "Domain",
    "Evaluator",
    "Every",
    "FourierFeatures",
    "LShape",
    "Never",
    "NonFiniteLossError",
    "OptimizationPlan",
    "Problem",
    "ProgressBar",
    "Run",
    "Resampled",
    "Sampler",
    "SamplingContext",
    "Schedule",
    "Scorer",
    "Sin",
    "Stage",
    "TrainResult",
    "TrainState",
    "Trainer",
    "Uniform",
    "UniformResample",
    "__version__",
    "load_run",
    "plot_run",
    "ops",
    "problems",
    "record",
    "samplers",
    "testing",
    "train",
    "training",
]
