"""Training: the loop and the parts it is assembled from.

:class:`Trainer` takes orthogonal parts (sampler, :class:`Schedule`, :class:`OptimizationPlan`
of :class:`Stage`, :class:`Evaluator`, callbacks, a distribution :class:`Strategy`) and keeps
everything that evolves in one :class:`TrainState`; :func:`make_trainer` builds one from the
shortcuts (``steps``, ``hidden``, ``group``, ...); :class:`Scorer` counts residual evaluations
for the samplers and for users' own loops.
"""

from __future__ import annotations

from glfpinn.strategy import SingleProcess, Strategy
from glfpinn.training.builder import make_trainer
from glfpinn.training.callbacks import Callback, ProgressBar
from glfpinn.training.costs import Costs, peak_memory_mb, reset_peak_memory
from glfpinn.training.evaluator import EvaluationSet, Evaluator, predict
from glfpinn.training.interrupts import Interrupted
from glfpinn.training.loss import NonFiniteLossError, TrainingLoss
from glfpinn.training.network import MLPSpec
from glfpinn.training.plan import OptimizationPlan, Stage
from glfpinn.training.result import TrainResult
from glfpinn.training.schedules import Every, Never, Schedule
from glfpinn.training.scorer import Scorer
from glfpinn.training.state import TrainState
from glfpinn.training.trainer import Trainer

__all__ = [
    "MLPSpec",
    "Callback",
    "Costs",
    "EvaluationSet",
    "Evaluator",
    "Every",
    "Interrupted",
    "Never",
    "NonFiniteLossError",
    "OptimizationPlan",
    "ProgressBar",
    "SingleProcess",
    "Schedule",
    "Scorer",
    "Stage",
    "Strategy",
    "TrainResult",
    "TrainState",
    "Trainer",
    "TrainingLoss",
    "make_trainer",
    "peak_memory_mb",
    "predict",
    "reset_peak_memory",
]
