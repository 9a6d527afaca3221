"""What a finished (or paused) run reports: the contents of result.json."""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import TYPE_CHECKING, Any, final

import torch

from glfpinn.training.costs import peak_memory_mb

if TYPE_CHECKING:
    from glfpinn.training.plan import OptimizationPlan
    from glfpinn.training.state import TrainState

__all__ = ["TrainResult", "glfpinn_version"]


def glfpinn_version() -> str:
    """The installed glfpinn's version (its package metadata; ``"unknown"`` when glfpinn runs
    from a source tree that was never installed)."""
    try:
        return importlib.metadata.version("glfpinn")
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


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
    #: torch's CPU threads (torch.get_num_threads()): a CPU run repeats itself to the last digit
    #: only at the same count (reductions split differently); 0 in a result.json written before
    cpu_threads: int = 0
    #: the user metrics of the last evaluation
    metrics: dict[str, float] = field(default_factory=dict)
    #: an inverse problem's learned coefficients
    unknowns: dict[str, float] = field(default_factory=dict)
    #: each soft condition's mean squared misfit on held-out condition points, last evaluation
    condition_misfit: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> TrainResult:
        """A result from result.json's contents: keys it does not know are left out, and a
        field an older file lacks is None."""
        names = [f.name for f in fields(cls)]
        return cls(**{name: data.get(name) for name in names if name in data or _required(name)})

    # Dict-style reading, as ``Run.result`` was result.json's dict: ``run.result["steps"]``.
    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_NAMES:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` if the result has no such field."""
        return getattr(self, key) if key in _FIELD_NAMES else default

    @classmethod
    def from_state(
        cls,
        s: TrainState,
        *,
        problem: str,
        sampler: str,
        sampler_repr: str,
        seed: int,
        plan: OptimizationPlan,
        metric_names: Iterable[str],
        counts: tuple[int, ...],
        device: torch.device,
        dtype: torch.dtype,
        world_size: int,
    ) -> TrainResult:
        """What a run reports from its state ``s``. ``counts``: the training points, residual
        evaluations and training residual evaluations of the whole run (summed over the
        processes); the times, the memory and the sampler's figures are this process's."""
        m: Mapping[str, Any] = s.metrics
        n_points, evals, train_evals = counts
        return cls(
            problem=problem,
            sampler=sampler,
            sampler_repr=sampler_repr,
            seed=seed,
            steps=s.step,
            stages=plan.describe(),
            n_points=n_points,
            l2_relative_error=m.get("l2_relative_error"),
            initial_l2_relative_error=s.initial_metrics.get("l2_relative_error"),
            residual_mean=m.get("residual_mean", float("nan")),
            residual_max=m.get("residual_max", float("nan")),
            metrics={k: m[k] for k in metric_names if k in m},
            unknowns=s.unknown_values(),
            condition_misfit=dict(m.get("condition_misfit", {})),
            final_loss=s.last_loss,
            wall_time_s=s.elapsed(),
            sampling_time_s=s.costs.sampling_time_s,
            scoring_time_s=s.costs.scoring_time_s,
            residual_evals=evals,
            train_residual_evals=train_evals,
            resamples=s.costs.resamples,
            lbfgs_restarts=s.costs.lbfgs_restarts,
            peak_memory_mb=peak_memory_mb(device),
            device=str(device),
            dtype=str(dtype).removeprefix("torch."),
            glfpinn_version=glfpinn_version(),
            torch_version=torch.__version__,
            world_size=world_size,
            cpu_threads=torch.get_num_threads(),
        )


_FIELD_NAMES = frozenset(f.name for f in fields(TrainResult))


def _required(name: str) -> bool:
    """Whether the field ``name`` has no default (an older result.json may lack it)."""
    spec = TrainResult.__dataclass_fields__[name]
    return spec.default is MISSING and spec.default_factory is MISSING
