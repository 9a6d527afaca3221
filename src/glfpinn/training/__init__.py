"""Training: the loop and the parts it is assembled from.

:class:`Trainer` takes orthogonal parts (sampler, :class:`Schedule`, :class:`OptimizationPlan`
of :class:`Stage`, :class:`Evaluator`, callbacks) and keeps everything that evolves in one
:class:`TrainState`; :class:`Scorer` counts residual evaluations for the samplers and for users'
own loops.
"""

from __future__ import annotations

from glfpinn.training.callbacks import Callback, ProgressBar
from glfpinn.training.costs import Costs, peak_memory_mb, reset_peak_memory
from glfpinn.training.evaluator import EvaluationSet, Evaluator, predict
from glfpinn.training.interrupts import Interrupted
from glfpinn.training.loss import NonFiniteLossError, TrainingLoss
from glfpinn.training.plan import OptimizationPlan, Stage
from glfpinn.training.result import TrainResult
from glfpinn.training.schedules import Every, Never, Schedule
from glfpinn.training.scorer import Scorer
from glfpinn.training.state import TrainState
from glfpinn.training.trainer import Trainer

__all__ = [
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
    "Schedule",
    "Scorer",
    "Stage",
    "TrainResult",
    "TrainState",
    "Trainer",
    "TrainingLoss",
    "peak_memory_mb",
    "predict",
    "reset_peak_memory",
]
