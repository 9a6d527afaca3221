"""Training into a run directory: the trainer a config describes (``build_trainer``), a trainer
that writes its run as it trains (``record``), a run from its config (``run``, what
``glfpinn train --out`` calls) and the one-call form (``train``), and resuming each of them."""

from __future__ import annotations

import contextlib
import dataclasses
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from glfpinn._io import atomic_write_text
from glfpinn.config import RunConfig, config_of
from glfpinn.plugins import untrusted
from glfpinn.problems.base import Problem
from glfpinn.runs import fingerprint as fp
from glfpinn.runs.directory import (
    CHECKPOINT,
    CONFIG,
    METRICS,
    RunDirectory,
    RunMode,
    Snapshots,
    check_mode,
    finished_result,
    prepare,
    read_config,
    read_result,
    run_path,
)
from glfpinn.runs.lock import RunLock
from glfpinn.samplers.base import Sampler
from glfpinn.training import Trainer, TrainResult, make_trainer
from glfpinn.training.costs import own_process
from glfpinn.training.devices import resolve_device

if TYPE_CHECKING:  # a single-process run never imports glfpinn.distributed
    from glfpinn.distributed import ProcessGroup

__all__ = ["CHANGEABLE_ON_RESUME", "build_trainer", "record", "run", "train"]


def build_trainer(
    cfg: RunConfig, progress: bool = False, group: ProcessGroup | None = None
) -> Trainer:
    """The trainer a config describes (one rank's, with ``group``): the parts the config
    builds, handed to the trainer with the run's settings."""
    return make_trainer(
        cfg.build_problem(),
        cfg.build_sampler(),
        plan=cfg.plan(),
        model=cfg.build_model(),
        schedule=cfg.build_schedule(),
        evaluator=cfg.build_evaluator(),
        n_points=cfg.n_points,
        eval_every=cfg.eval_every,
        loss_weights=cfg.loss_weights,
        equation_weights=cfg.equation_weights,
        score="l2" if cfg.score is None else cfg.score,
        seed=cfg.seed,
        device=cfg.device,
        dtype=cfg.dtype,
        compile=cfg.compile,
        n_condition=cfg.n_condition,
        score_chunk=cfg.score_chunk,
        coverage_threshold=cfg.coverage_threshold,
        progress=progress,
        sampler_name=cfg.sampler,
        group=group,
    )


def _own_process(device: str | Any, group: ProcessGroup | None, retain_memory: bool = True) -> None:
    """The process-wide switches, on the device the run will train on."""
    on = group.device if group is not None and group.world_size > 1 else resolve_device(device)
    own_process(on, retain_memory=retain_memory)


def record(
    trainer: Trainer,
    out: str | os.PathLike,
    *,
    mode: RunMode = "new",
    checkpoint_every: int = 1000,
    snapshot_every: int = 0,
    config: dict[str, Any] | None = None,
    changed: dict[str, Any] | None = None,
) -> Trainer:
    """Have ``trainer`` write its run into ``out`` as it trains; returns it, so
    ``record(trainer, DIR).fit()`` trains into DIR.

    ``mode="new"`` refuses a directory that is not empty, ``"overwrite"`` replaces the run
    there, ``"resume"`` loads its checkpoint into ``trainer`` (built as the run was: a
    checkpoint of another run, or a plan ending before the checkpoint's step, is refused), or
    starts from scratch if none was written yet. config.yaml holds ``config`` (a run config's
    data), or the config :func:`~glfpinn.config.config_of` assembles from the trainer's parts,
    with what it could not record as comments. ``changed`` (a resume's accepted changes)
    rewrites config.yaml with ``config`` and goes into metrics.jsonl as a ``"resume"`` event;
    a finished run's result.json stays until the extended run writes its own.

    A trainer on K ranks: every rank calls this; rank 0 writes the directory, the other ranks
    take part in its checkpoints and load the one rank 0 reads.
    """
    path = run_path(out)
    group = trainer.group
    if group is not None and not group.is_main:
        return _follow(trainer, group, path, checkpoint_every, snapshot_every)
    check_mode(path, mode)  # a folder that cannot take the run is refused before the lock
    lock = RunLock(path).acquire()  # then: a second writer fails before writing anything
    try:
        _record(trainer, path, lock, mode, checkpoint_every, snapshot_every, config, changed)
    except BaseException:
        lock.release()  # a refusal leaves the directory free for the next attempt
        raise
    return trainer


def _record(
    trainer: Trainer,
    path: Path,
    lock: RunLock,
    mode: RunMode,
    checkpoint_every: int,
    snapshot_every: int,
    config: dict[str, Any] | None,
    changed: dict[str, Any] | None,
) -> None:
    """:func:`record` on rank 0, holding the directory's lock."""
    prepare(path, mode)
    parts, notes = config_of(
        trainer, checkpoint_every=checkpoint_every, snapshot_every=snapshot_every
    )
    directory = RunDirectory(
        path,
        checkpoint_every,
        lock,
        fingerprints=(fp.fingerprint(parts if config is None else config), fp.fingerprint(parts)),
        resuming="the resuming trainer" if config is None else f"{CONFIG} of {str(path)!r}",
    )
    if snapshot_every:
        trainer.callbacks.append(Snapshots(path, snapshot_every))
    trainer.callbacks.append(directory)  # last: its checkpoint covers what the others wrote
    resumes = mode == "resume" and (path / CHECKPOINT).exists()
    if trainer.group is not None:
        trainer.group.broadcast_object(resumes)  # the other ranks load it with rank 0 (_follow)
    if resumes:
        directory.load_checkpoint(trainer)
        step, total = trainer.state.step, trainer.total_steps
        if step > total:  # config.yaml and result.json would then disagree for good
            raise ValueError(
                f"the checkpoint of {str(path)!r} is at step {step}, past the {total} steps "
                "this resume asks for; a resume only extends a run"
            )
        if changed:
            atomic_write_text(path / CONFIG, yaml.safe_dump(config, sort_keys=False))
            directory.note({"event": "resume", "step": step, "changed": changed})
        return
    if config is None:
        config = parts
        try:
            RunConfig.from_dict(config)
        except (ValueError, TypeError) as err:
            notes.append(f"this config does not rebuild the run ({err})")
    else:
        notes = []
    header = "".join(f"# not recorded: {note}\n" for note in notes)
    atomic_write_text(path / CONFIG, header + yaml.safe_dump(config, sort_keys=False))
    (path / METRICS).unlink(missing_ok=True)


def _follow(
    trainer: Trainer, group: ProcessGroup, path: Path, checkpoint_every: int, snapshot_every: int
) -> Trainer:
    """A rank other than 0 of a data-parallel run: the same callbacks as rank 0's, writing
    nothing, so that it takes part in every checkpoint (a collective) and loads the one
    rank 0 reads."""
    if snapshot_every:
        trainer.callbacks.append(Snapshots(path, snapshot_every, writes=False))
    directory = RunDirectory(path, checkpoint_every, writes=False)
    trainer.callbacks.append(directory)
    if group.broadcast_object(None):  # whether rank 0 resumes from a checkpoint
        directory.load_checkpoint(trainer)
    return trainer


def _on_ranks(cfg: RunConfig | None, ranks: int) -> RunConfig | None:
    """``cfg`` for a run on ``ranks`` processes: its ``nproc`` must be that (or 1, the default,
    for a process torchrun started)."""
    if cfg is None or cfg.nproc == ranks:
        return cfg
    if ranks == 1:
        raise ValueError(
            f"nproc={cfg.nproc} but this is one process; start the run with "
            f"glfpinn train --nproc {cfg.nproc} or torchrun --nproc-per-node {cfg.nproc}"
        )
    if cfg.nproc != 1:
        raise ValueError(f"nproc={cfg.nproc} but the run was started on {ranks} ranks")
    return dataclasses.replace(cfg, nproc=ranks)


#: Config keys a resume may change (they extend or observe the run, not what it is).
CHANGEABLE_ON_RESUME = ("steps", "eval_every", "checkpoint_every", "snapshot_every", "nproc")


def _resumed_config(path: Path, changes: dict[str, Any]) -> tuple[RunConfig, dict[str, Any]]:
    """The stored config with ``changes`` applied, and the changes that differ from it; a
    change to anything but ``CHANGEABLE_ON_RESUME`` is refused in one line."""
    stored = read_config(path)
    before = stored.to_dict()
    differ = {k: v for k, v in changes.items() if before.get(k) != v}
    fixed = [k for k in differ if k not in CHANGEABLE_ON_RESUME]
    if fixed:
        was = ", ".join(f"{k}={before.get(k)!r}"[:60] for k in fixed)
        raise ValueError(
            f"the run in {str(path)!r} was made with {was}; resume it without changing "
            f"{', '.join(fixed)} (a resume may change {', '.join(CHANGEABLE_ON_RESUME)})"
        )
    return (RunConfig.from_dict({**before, **differ}) if differ else stored), differ


def run(
    cfg: RunConfig | None,
    out: str | os.PathLike,
    *,
    mode: RunMode = "new",
    progress: bool = False,
    changes: dict[str, Any] | None = None,
    group: ProcessGroup | None = None,
    trust: bool = False,
) -> dict[str, Any]:
    """Train the run ``cfg`` describes into ``out`` and return its result.json contents.

    ``mode="resume"`` continues the run in ``out`` with the config stored there (``cfg`` may be
    None) and returns a finished run's result without training; see :func:`record`.
    ``changes`` (config keys, resume only) may extend it, e.g. ``{"steps": 5000}``: recorded in
    config.yaml and as a ``"resume"`` event in metrics.jsonl. Other keys are refused.

    A resume imports no part the stored config names by import path (``module:Class``,
    ``file.py:make``: code) unless ``trust`` or ``changes`` names that same part: a run
    directory is data, and one from elsewhere must not run code by being resumed.

    ``group`` (every rank calls this with its own): a data-parallel run; rank 0 alone reads and
    writes the run directory, and hands what it read to the other ranks (so they need not
    see the same filesystem); its checkpoint holds every rank's state.
    """
    path = run_path(out)
    ranks = 1 if group is None else group.world_size
    gate = contextlib.nullcontext()
    if mode == "resume" and not trust:
        named = [v for k, v in (changes or {}).items() if k in ("problem", "sampler", "model")]
        gate = untrusted(f"the run directory {str(path)!r}", allowed=named)
    with gate:
        return _run(cfg, path, mode, progress, changes, group, ranks)


def _run(
    cfg: RunConfig | None,
    path: Path,
    mode: RunMode,
    progress: bool,
    changes: dict[str, Any] | None,
    group: ProcessGroup | None,
    ranks: int,
) -> dict[str, Any]:
    def prepared() -> tuple[RunConfig | None, dict[str, Any], dict[str, Any] | None]:
        check_mode(path, mode)  # before building anything: a bad directory fails at once
        if mode != "resume":
            return _on_ranks(cfg, ranks), {}, None
        # resuming on another number of ranks is a change (the checkpoint decides if it can),
        # but a finished run that nothing else extends is returned as it is, on any number
        stored, differ = _resumed_config(path, {**(changes or {}), "nproc": ranks})
        finished = finished_result(path)
        return stored, differ, (finished if not differ.keys() - {"nproc"} else None)

    config, differ, finished = prepared() if group is None else group.on_main(prepared)
    if finished is not None:
        return finished
    if config is None:
        raise ValueError("a config is needed to start a run")
    _own_process(config.device, group)
    trainer = build_trainer(config, progress=progress, group=group)
    record(
        trainer,
        path,
        mode=mode,
        checkpoint_every=config.checkpoint_every,
        snapshot_every=config.snapshot_every,
        config=config.to_dict(),
        changed=differ,
    )
    return trainer.fit().to_dict()


def train(
    problem: Problem | str,
    sampler: Sampler | str,
    *,
    out: str | os.PathLike | None = None,
    mode: RunMode = "new",
    checkpoint_every: int = 1000,
    snapshot_every: int = 0,
    retain_memory: bool = True,
    **kwargs: Any,
) -> TrainResult:
    """Train ``problem`` with ``sampler`` (parts, or registry names: ``train("burgers",
    "glf-robust", steps=2000)``); the keyword arguments are
    :func:`~glfpinn.training.make_trainer`'s: the :class:`Trainer`'s parts, or their shortcuts
    (``steps``, ``lbfgs_steps``, ``lr``, ``hidden``, ``activation``, ``fourier_features``,
    ``fourier_scale``, ``group``, ``progress``).

    With ``out``, the run goes into that directory exactly as ``glfpinn train --out`` writes it
    (``mode`` as in :func:`record`; resuming a finished run returns its stored result).
    This is an entry point that owns its process: on the CPU the allocator keeps freed memory
    for reuse (``retain_memory``), and the run's peak memory is measured from here
    (:func:`~glfpinn.training.costs.own_process`).
    """
    _own_process(kwargs.get("device", "cpu"), kwargs.get("group"), retain_memory)
    trainer = make_trainer(problem, sampler, **kwargs)
    if out is not None and mode == "resume":
        finished = read_result(out)  # of this plan, not a shorter one being extended
        steps = None if finished is None else finished["steps"]
        if isinstance(steps, int) and steps >= trainer.total_steps:
            return TrainResult.from_dict(finished)
    if out is not None:
        record(
            trainer,
            out,
            mode=mode,
            checkpoint_every=checkpoint_every,
            snapshot_every=snapshot_every,
        )
    return trainer.fit()
