"""Run directories: config.yaml, metrics.jsonl, result.json and checkpoint.pt, written atomically.

A run killed at any moment leaves only whole files behind; ``run(..., mode="resume")`` continues
it from its last checkpoint and, on the CPU, ends with the same result as an uninterrupted run.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml

from glfpinn import problems, samplers
from glfpinn._io import atomic_write_bytes, atomic_write_json, atomic_write_text, json_line
from glfpinn.config import RunConfig, yaml_load
from glfpinn.training import Callback, Evaluator, Every, Trainer, TrainResult, predict

__all__ = ["RunDirectory", "build_trainer", "run", "read_result", "RunMode"]

CONFIG, METRICS, RESULT, CHECKPOINT = "config.yaml", "metrics.jsonl", "result.json", "checkpoint.pt"
PREDICTION, SNAPSHOTS = "prediction.npz", "snapshots"
RunMode = Literal["new", "resume", "overwrite"]


class RunDirectory(Callback):
    """Writes a run's files as it trains. Metrics lines carry ``"event": "eval"`` (the contract's
    step, loss, l2_relative_error, elapsed_s) or ``"event": "resample"`` (sampler diagnostics)."""

    def __init__(self, path: str | os.PathLike, checkpoint_every: int = 1000) -> None:
        self.path = Path(path)
        self.checkpoint_every = checkpoint_every

    def _append(self, record: dict[str, Any]) -> None:
        with open(self.path / METRICS, "a", encoding="utf-8") as fh:
            fh.write(json_line(record) + "\n")

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self._append({"event": "eval", **metrics})

    def on_resample(self, trainer: Trainer, info: dict[str, Any]) -> None:
        self._append({"event": "resample", **info})

    def on_train_batch_end(self, trainer: Trainer, step: int, loss: float) -> None:
        if self.checkpoint_every and (step + 1) % self.checkpoint_every == 0:
            self.save_checkpoint(trainer)

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.save_checkpoint(trainer)
        prediction = _prediction(trainer)
        if prediction:
            _save_npz(self.path / PREDICTION, **prediction)
        atomic_write_json(self.path / RESULT, result.to_dict())

    def save_checkpoint(self, trainer: Trainer) -> None:
        buf = io.BytesIO()
        torch.save(trainer.state_dict(), buf)
        atomic_write_bytes(self.path / CHECKPOINT, buf.getvalue())

    def load_checkpoint(self, trainer: Trainer) -> None:
        path = self.path / CHECKPOINT
        if not path.exists():
            raise ValueError(f"cannot resume {str(self.path)!r}: it has no {CHECKPOINT} yet")
        try:
            state = torch.load(path, map_location=trainer.device, weights_only=True)
            trainer.load_state_dict(state)
        except Exception as err:  # any unpickling or shape failure means the file is unusable
            raise ValueError(
                f"checkpoint {str(path)!r} is corrupted or does not match the run's config "
                f"({type(err).__name__}); delete it and rerun with --overwrite"
            ) from None
        self._truncate_metrics(trainer.state.step)

    def _truncate_metrics(self, step: int) -> None:
        """Drop metrics written after the checkpoint (and a torn last line), atomically."""
        path = self.path / METRICS
        if not path.exists():
            return
        kept = []
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            limit = step if rec.get("event") == "eval" else step - 1
            if rec.get("step", 0) <= limit:
                kept.append(line)
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class Snapshots(Callback):
    """Every ``every`` steps (at an evaluation), the training points and their residuals from
    the last step, to plot where a sampler puts its points over time."""

    def __init__(self, path: str | os.PathLike, every: int) -> None:
        self.path = Path(path) / SNAPSHOTS
        self.every = every

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        state = trainer.state
        if state.step % self.every or state.last_residuals is None:
            return
        _save_npz(
            self.path / f"step{state.step:08d}.npz",
            points=state.points.detach().cpu().double().numpy(),
            residuals=state.last_residuals.detach().cpu().double().numpy(),
        )


def _save_npz(path: Path, **arrays: np.ndarray) -> None:
    buf = io.BytesIO()
    np.savez_compressed(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())


def _prediction(trainer: Trainer) -> dict[str, np.ndarray]:
    """The network (and the reference, where there is one) on a 2-D view of the problem: the
    test grid in 2-D, the problem's ``slice_2d`` in higher dimension, for error maps."""
    problem = trainer.problem
    if problem.dim == 2 and problem.has_reference:
        x, u_ref = problem.test_set()
    elif hasattr(problem, "slice_2d") and problem.has_reference:
        x = problem.slice_2d()
        u_ref = problem.solution(x)
    else:
        return {}
    xt = torch.as_tensor(x, dtype=trainer.dtype, device=trainer.device)
    u = predict(trainer.model, xt)
    return {"x": np.asarray(x), "u": u.double().cpu().numpy(), "u_ref": np.asarray(u_ref)}


def build_trainer(
    cfg: RunConfig, callbacks: list[Callback] | None = None, progress: bool = False
) -> Trainer:
    """The trainer a config describes."""
    problem = problems.get(cfg.problem, **cfg.problem_params)
    sampler = samplers.get(cfg.sampler, **cfg.sampler_params)
    return Trainer(
        problem,
        sampler,
        plan=cfg.plan(),
        n_points=cfg.n_points,
        schedule=None if cfg.resample_every is None else Every(cfg.resample_every),
        eval_every=cfg.eval_every,
        evaluator=Evaluator(n_validation=cfg.n_validation),
        loss_weights=cfg.loss_weights,
        seed=cfg.seed,
        device=cfg.device,
        dtype=cfg.dtype,
        compile=cfg.compile,
        model=cfg.model_factory(),
        hidden=cfg.hidden,
        activation=cfg.activation,
        fourier_features=cfg.fourier_features,
        fourier_scale=cfg.fourier_scale,
        n_condition=cfg.n_condition,
        score_chunk=cfg.score_chunk,
        callbacks=callbacks or [],
        progress=progress,
        sampler_name=cfg.sampler,
    )


def _check_writable(path: Path) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".glfpinn-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as err:
        raise ValueError(
            f"output directory {str(path)!r} is not writable ({err.strerror})"
        ) from None


def read_result(path: str | os.PathLike) -> dict[str, Any] | None:
    """A finished run's result.json, or None if the run has not finished."""
    file = Path(path) / RESULT
    if not file.exists():
        return None
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None


def run(
    cfg: RunConfig | None,
    out: str | os.PathLike,
    *,
    mode: RunMode = "new",
    progress: bool = False,
) -> dict[str, Any]:
    """Train the run ``cfg`` describes into ``out`` and return its result.json contents.

    ``mode="new"`` refuses a directory that already holds a run; ``"overwrite"`` replaces it;
    ``"resume"`` continues it from its checkpoint with the config stored there (``cfg`` may be
    None), returns a finished run's result without training, and starts a run whose checkpoint
    was never written from scratch.
    """
    path = Path(out)
    has_run = (path / CONFIG).exists()
    if mode == "new" and path.exists() and any(path.iterdir()):
        raise ValueError(
            f"output directory {str(path)!r} already exists and is not empty; "
            "pass --resume to continue it or --overwrite to replace it"
        )
    if mode == "resume":
        if not has_run:
            raise ValueError(f"cannot resume {str(path)!r}: it holds no run ({CONFIG} missing)")
        stored = yaml_load((path / CONFIG).read_text(encoding="utf-8"))
        cfg = RunConfig.from_dict(stored)
        finished = read_result(path)
        if finished is not None:
            return finished
    if cfg is None:
        raise ValueError("a config is needed to start a run")
    _check_writable(path)
    if mode == "overwrite":
        for name in (CONFIG, METRICS, RESULT, CHECKPOINT, PREDICTION):
            (path / name).unlink(missing_ok=True)

    directory = RunDirectory(path, cfg.checkpoint_every)
    callbacks: list[Callback] = [directory]
    if cfg.snapshot_every:
        callbacks.append(Snapshots(path, cfg.snapshot_every))
    trainer = build_trainer(cfg, callbacks, progress=progress)
    if mode == "resume" and (path / CHECKPOINT).exists():
        directory.load_checkpoint(trainer)
    else:
        atomic_write_text(path / CONFIG, yaml.safe_dump(cfg.to_dict(), sort_keys=False))
        (path / METRICS).unlink(missing_ok=True)
    return trainer.fit().to_dict()
