"""The run config of a trainer built in Python, so its run directory holds the same config.yaml
a command-line run writes, and ``load_run`` or ``glfpinn train --resume`` can rebuild it.

Everything plain is recorded: the problem and the sampler (registry name or import path, with
their parameters), the optimizer stages, the built-in MLP or a model factory's import path, the
schedule's period and the run's settings. What no config can hold (an ``nn.Module`` instance, a
lambda, user metrics) is listed in the returned notes, which go into config.yaml as comments.
"""

from __future__ import annotations

import functools
from typing import Any

from glfpinn import problems, samplers
from glfpinn._io import is_plain_data
from glfpinn.nn import MLP, Constrained
from glfpinn.plugins import import_path_of
from glfpinn.samplers import Mix
from glfpinn.training import Every, Trainer
from glfpinn.training.plan import Stage

__all__ = ["describe_trainer"]


def _spec(obj: Any, registry: Any, kind: str, notes: list[str]) -> str | None:
    """A registry name whose factory is ``obj``'s class, else the class's import path."""
    cls = type(obj)
    name = registry.name_of(cls)
    if name is not None:
        return name
    path = import_path_of(cls)
    if path is None:
        notes.append(f"{kind}: {cls.__qualname__} has no import path (defined inside a function)")
    return path


def _sampler(sampler: Any, notes: list[str]) -> tuple[str | None, dict[str, Any]]:
    if isinstance(sampler, Mix):
        parts = []
        for part, fraction in sampler.parts:
            name, params = _sampler(part, notes)
            parts.append({"sampler": name, "fraction": fraction, "params": params})
        return "mix", {"parts": parts}
    params = sampler.get_params() if hasattr(sampler, "get_params") else {}
    if not is_plain_data(params):
        notes.append(f"sampler_params: {params!r} are not plain data")
        params = {}
    return _spec(sampler, samplers.registry, "sampler", notes), params


def _stage(stage: Stage, notes: list[str]) -> dict[str, Any] | None:
    if not isinstance(stage.optimizer, str | type) or not isinstance(
        stage.scheduler, str | type(None)
    ):
        notes.append(f"stages: {stage!r} holds objects a config cannot name")
        return None
    out: dict[str, Any] = {"optimizer": stage.describe()["optimizer"].lower(), "steps": stage.steps}
    out.update(stage.options)
    if stage.scheduler is not None:
        out["scheduler"] = {"name": stage.scheduler, **stage.scheduler_options}
    if not is_plain_data(out):
        notes.append(f"stages: {stage!r} has options that are not plain data")
        return None
    return out


def _network(trainer: Trainer, notes: list[str]) -> dict[str, Any]:
    spec = trainer.model_spec
    if spec is not None and not isinstance(spec, type(trainer.model)):
        factory, params = spec, {}
        if isinstance(spec, functools.partial):
            factory, params = spec.func, dict(spec.keywords)
        path = import_path_of(factory) if callable(factory) else None
        if path is not None and is_plain_data(params):
            return {"model": path, "model_params": params}
    net = trainer.model.net if isinstance(trainer.model, Constrained) else trainer.model
    if spec is None and isinstance(net, MLP):
        fourier = net.fourier
        return {
            "hidden": [layer.out_features for layer in net.layers[:-1]],
            "activation": net.activation_name,
            "fourier_features": 0 if fourier is None else int(fourier.B.shape[0]),
            "fourier_scale": 1.0 if fourier is None else fourier.scale,
        }
    notes.append(
        f"model: a {type(net).__name__} instance; pass model= to load_run to rebuild the run"
    )
    return {}


def describe_trainer(
    trainer: Trainer, checkpoint_every: int, snapshot_every: int
) -> tuple[dict[str, Any], list[str]]:
    """The config data that rebuilds ``trainer``, and notes on what it could not record."""
    notes: list[str] = []
    problem = trainer.problem
    try:
        problem_params = problem.get_params()
    except (ValueError, AttributeError) as err:
        notes.append(f"problem_params: {err}")
        problem_params = {}
    sampler, sampler_params = _sampler(trainer.sampler, notes)
    stages = [_stage(stage, notes) for stage in trainer.plan.stages]
    data: dict[str, Any] = {
        "problem": _spec(problem, problems.registry, "problem", notes),
        "problem_params": problem_params if is_plain_data(problem_params) else {},
        "sampler": sampler,
        "sampler_params": sampler_params,
        "stages": stages if all(s is not None for s in stages) else None,
        "n_points": int(trainer.state.points.shape[0]),
        "eval_every": trainer.eval_every,
        "n_validation": trainer.evaluator.n_validation,
        "loss_weights": trainer.training_loss.weights(),
        "seed": trainer.seed,
        "device": str(trainer.device),
        "dtype": str(trainer.dtype).removeprefix("torch."),
        "compile": trainer.compile,
        **_network(trainer, notes),
        "n_condition": trainer.n_condition,
        "score_chunk": trainer.scorer.chunk_size,
        "coverage_threshold": trainer.collapse.threshold,
        "checkpoint_every": checkpoint_every,
        "snapshot_every": snapshot_every,
    }
    if isinstance(trainer.schedule, Every):
        data["resample_every"] = trainer.schedule.period
    else:
        notes.append(f"schedule: {trainer.schedule!r} is not a resampling period")
    if trainer.evaluator.metrics:
        notes.append(f"metrics: {sorted(trainer.evaluator.metrics)} are Python callables")
    return {k: v for k, v in data.items() if v is not None}, notes
