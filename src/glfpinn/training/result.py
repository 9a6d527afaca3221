"""What a finished (or paused) run reports: the contents of result.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, final

__all__ = ["TrainResult"]


@final
@dataclass
class TrainResult:
    problem: str
    sampler: str
    sampler_repr: str
    seed: int
    steps: int
    #: the optimization plan: per stage its optimizer, step count, options and scheduler
    stages: list[dict[str, Any]]
    n_points: int
    #: None when the problem has no reference solution
    l2_relative_error: float | None
    initial_l2_relative_error: float | None
    #: mean and max |residual| on the run's held-out interior points
    residual_mean: float
    residual_max: float
    final_loss: float
    wall_time_s: float
    sampling_time_s: float
    scoring_time_s: float
    residual_evals: int
    train_residual_evals: int
    resamples: int
    #: the run's own peak (see glfpinn.training.costs), not the process's
    peak_memory_mb: float
    device: str
    dtype: str
    glfpinn_version: str
    torch_version: str
    lbfgs_restarts: int = 0
    #: the processes (ranks) the run trained on
    world_size: int = 1
    #: the user metrics of the last evaluation
    metrics: dict[str, float] = field(default_factory=dict)
    #: an inverse problem's learned coefficients
    unknowns: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
