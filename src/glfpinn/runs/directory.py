"""The files of a run directory and the callbacks that write them as a run trains:
config.yaml, metrics.jsonl, result.json, checkpoint.pt, prediction.npz and snapshots/, each
written atomically (a run killed at any moment leaves only whole files behind).

Nothing outside the run is touched: a file is written to a fresh temporary file in its folder
and renamed over its name (which replaces a symbolic link there, never writes through it),
metrics.jsonl is appended to only if it is no link, ``--overwrite`` empties only a folder that
holds a run and nothing else, and a resume refuses a run directory holding links.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import tempfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
import yaml
from torch import Tensor

from glfpinn._checks import short_repr
from glfpinn._io import (
    MAX_JSONL_BYTES,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    json_line,
    make_folders,
    read_limited,
)
from glfpinn.config import MAX_YAML_BYTES, RunConfig, yaml_load
from glfpinn.plugins import untrusted
from glfpinn.runs import fingerprint as fp
from glfpinn.runs.lock import LOCK, RunLock
from glfpinn.training import Callback, Interrupted, Trainer, TrainResult, predict

__all__ = [
    "RunDirectory",
    "Snapshots",
    "read_config",
    "read_result",
    "finished_result",
    "prepare",
    "check_mode",
    "run_path",
    "RunMode",
    "CONFIG",
    "METRICS",
    "RESULT",
    "CHECKPOINT",
    "PREDICTION",
    "SNAPSHOTS",
]

CONFIG, METRICS, RESULT, CHECKPOINT = "config.yaml", "metrics.jsonl", "result.json", "checkpoint.pt"
PREDICTION, SNAPSHOTS, PLOTS = "prediction.npz", "snapshots", "plots"
RunMode = Literal["new", "resume", "overwrite"]
#: What a run directory holds: a run's files, its lock, ``glfpinn plot``'s default folder and a
#: bench cell's failure note. ``--overwrite`` empties only a folder holding nothing else.
RUN_NAMES = frozenset(
    {CONFIG, METRICS, RESULT, CHECKPOINT, PREDICTION, SNAPSHOTS, PLOTS, LOCK, "error.txt"}
)
#: What shows a folder was written by a run, beside its config.yaml (a run takes its lock
#: before it writes anything).
_RUN_MARKERS = (LOCK, CHECKPOINT, METRICS, RESULT)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)  # not on Windows


class RunDirectory(Callback):
    """Writes a run's files as it trains. Metrics lines carry ``"event": "eval"`` (the contract's
    step, loss, l2_relative_error, elapsed_s) or ``"event": "resample"`` (sampler diagnostics).

    On K ranks every rank has one, and rank 0's alone writes (``writes``): a checkpoint joins
    every rank's state, which every rank takes part in (see :meth:`Trainer.state_dict`).

    ``fingerprints`` (config.yaml's and the trainer's parts', :mod:`.fingerprint`) go into every
    checkpoint, sealed with a checksum; a resume refuses a checkpoint whose parts' fingerprint
    is not these, naming the key (``resuming`` says what describes the resuming run)."""

    def __init__(
        self,
        path: str | os.PathLike,
        checkpoint_every: int = 1000,
        lock: RunLock | None = None,
        writes: bool = True,
        fingerprints: tuple[fp.Fingerprint, fp.Fingerprint] | None = None,
        resuming: str = "the resuming trainer",
    ) -> None:
        self.path = Path(path)
        self.checkpoint_every = checkpoint_every
        #: held from record() to the end of the run, so no second process writes here
        self.lock = lock
        self.writes = writes
        self.fingerprints = fingerprints
        self.resuming = resuming

    def note(self, record: dict[str, Any]) -> None:
        """Append one record to metrics.jsonl (never through a symbolic link)."""
        if not self.writes:
            return
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | _NOFOLLOW
        with os.fdopen(os.open(self.path / METRICS, flags, 0o666), "a", encoding="utf-8") as fh:
            fh.write(json_line(record) + "\n")

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        self.note({"event": "eval", **metrics})
        if self._due(trainer.state.step):  # after the step's record, which it then covers
            self.save_checkpoint(trainer)

    def on_resample(self, trainer: Trainer, info: dict[str, Any]) -> None:
        self.note({"event": "resample", **info})

    def on_train_batch_end(self, trainer: Trainer, step: int, loss: Tensor) -> None:
        # a step that is evaluated is checkpointed after its evaluation is written: a kill
        # between the two would otherwise lose that record for good (a resume goes on from
        # the checkpoint's step and never evaluates it again)
        if self._due(step + 1) and not trainer.evaluates_after(step + 1):
            self.save_checkpoint(trainer)

    def _due(self, step: int) -> bool:
        return bool(self.checkpoint_every) and step % self.checkpoint_every == 0

    def on_train_end(self, trainer: Trainer, result: TrainResult) -> None:
        self.save_checkpoint(trainer)
        if not self.writes:
            return
        prediction = _prediction(trainer)
        if prediction:
            _save_npz(self.path / PREDICTION, **prediction)
        atomic_write_json(self.path / RESULT, result.to_dict())
        if self.lock is not None:
            self.lock.release()

    def on_exception(self, trainer: Trainer, exception: BaseException) -> None:
        """An interrupt stops at a step boundary: keep that step. Any other failure may have
        happened mid-step, so the last periodic checkpoint stays."""
        if isinstance(exception, Interrupted):
            self.save_checkpoint(trainer)
        if self.lock is not None:
            self.lock.release()

    def save_checkpoint(self, trainer: Trainer) -> None:
        """Write the trainer's state, unless a parameter or an optimizer moment has become
        non-finite: a diverging step must not replace the last finite checkpoint, which is what
        a resume (with a smaller learning rate, say) starts from."""
        if not trainer.state.finite():
            warnings.warn(
                f"step {trainer.state.step}: non-finite parameters or optimizer state; "
                f"{CHECKPOINT} keeps the last finite state",
                RuntimeWarning,
                stacklevel=2,
            )
            return
        state = trainer.state_dict()  # on K ranks a collective: every rank takes part
        if not self.writes:
            return
        if self.fingerprints is not None:
            state = fp.seal(state, *self.fingerprints)
        buf = io.BytesIO()
        torch.save(state, buf)
        atomic_write_bytes(self.path / CHECKPOINT, buf.getvalue())

    def load_checkpoint(self, trainer: Trainer) -> None:
        """Load the checkpoint into ``trainer``. On K ranks every rank calls this: rank 0
        reads the file and hands it to the others, and a refusal is raised on every rank."""
        path = self.path / CHECKPOINT
        state = (
            self._read(path)
            if trainer.group is None
            else trainer.group.on_main(lambda: self._read(path))
        )
        try:
            trainer.load_state_dict(state)
        except ValueError:  # a one-line refusal (another number of ranks, ...)
            raise
        except Exception as err:  # a missing entry or a wrong shape: the file is unusable
            raise ValueError(
                f"checkpoint {str(path)!r} is corrupted or does not match the run's config "
                f"({type(err).__name__}); delete it and rerun with --overwrite"
            ) from None
        if self.writes:
            self._truncate_metrics(trainer.state.step)

    def _read(self, path: Path) -> dict[str, Any]:
        if not path.exists():
            raise ValueError(f"cannot resume {str(self.path)!r}: it has no {CHECKPOINT} yet")
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # any unpickling failure means the file is unusable
            raise ValueError(
                f"checkpoint {str(path)!r} is corrupted ({type(err).__name__}); "
                "delete it and rerun with --overwrite"
            ) from None
        if not isinstance(state, dict) or "points" not in state:
            raise ValueError(
                f"checkpoint {str(path)!r} is corrupted (not a run's state); "
                "delete it and rerun with --overwrite"
            )
        state, record = fp.unseal(state, repr(str(path)))
        if record is not None and self.fingerprints is not None:
            fp.check(
                record.get("parts"),
                self.fingerprints[1],
                self.resuming,
                repr(str(path)),
                "resume it as it was made, or start it over with --overwrite",
            )
        return state

    def _truncate_metrics(self, step: int) -> None:
        """Drop metrics written after the checkpoint (and a torn last line), atomically."""
        path = self.path / METRICS
        if not path.exists():
            return
        kept = []
        text = read_limited(path, MAX_JSONL_BYTES).decode("utf-8", errors="replace")
        for line in text.splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if not isinstance(rec, dict) or not isinstance(rec.get("step", 0), int):
                continue  # a damaged line: not a record this run wrote
            limit = step if rec.get("event") == "eval" else step - 1
            if rec.get("step", 0) <= limit:
                kept.append(line)
        atomic_write_text(path, "".join(f"{line}\n" for line in kept))


class Snapshots(Callback):
    """Every ``every`` steps (at an evaluation), the training points and their residuals from
    the last step, to plot where a sampler puts its points over time. On K ranks every rank
    has one (the points are joined over the ranks) and rank 0's alone ``writes``."""

    def __init__(self, path: str | os.PathLike, every: int, writes: bool = True) -> None:
        self.path = Path(path) / SNAPSHOTS
        self.every = every
        self.writes = writes

    def on_validation_end(self, trainer: Trainer, metrics: dict[str, Any]) -> None:
        if trainer.state.step % self.every:
            return
        points, residuals = trainer.training_set()
        if residuals is None or not self.writes:
            return
        _save_npz(
            self.path / f"step{trainer.state.step:08d}.npz",
            points=points.detach().cpu().double().numpy(),
            residuals=residuals.detach().cpu().double().numpy(),
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
        x, u_ref = problem.reference_set()
    elif hasattr(problem, "slice_2d") and problem.has_solution:
        x = problem.slice_2d()
        u_ref = problem.solution(x)
    else:
        return {}
    xt = torch.as_tensor(x, dtype=trainer.dtype, device=trainer.device)
    u = predict(trainer.model, xt)
    return {"x": np.asarray(x), "u": u.double().cpu().numpy(), "u_ref": np.asarray(u_ref)}


def _check_writable(path: Path) -> None:
    """Whether a run can be written in ``path``, leaving no folder made for the check: the run
    makes its directory once everything it is built from has been checked."""
    made = [p for p in (path, *path.parents) if not p.exists()]  # deepest first
    try:
        make_folders(path)
        with tempfile.TemporaryFile(dir=path):  # a fresh file: never one already there
            pass
    except OSError as err:
        raise ValueError(
            f"output directory {str(path)!r} is not writable ({err.strerror})"
        ) from None
    finally:
        for folder in made:
            with contextlib.suppress(OSError):  # one another process has filled meanwhile
                folder.rmdir()


def run_path(out: str | os.PathLike) -> Path:
    """``out`` as a run directory: ``''`` (an unset shell variable, say) is refused, not taken
    for the working folder."""
    if not os.fspath(out).strip():
        raise ValueError(
            f"the run directory {os.fspath(out)!r} is empty (an unset variable?); name a directory"
        )
    return Path(out)


def _temporary(name: str) -> bool:
    """An atomic write's temporary file (``.result.json.k3j_.tmp``), left by a killed run."""
    return name.startswith(".") and name.endswith(".tmp")


def _check_replaceable(path: Path) -> None:
    """That ``--overwrite`` of ``path`` deletes a glfpinn run and nothing else: a folder that
    does not exist, is empty, or holds a run's config.yaml, a run's marker and nothing a run
    does not write; never the working folder or a folder above it."""
    if not path.is_dir():
        return  # nothing to delete (a file there is refused when the folder is made)
    here = Path.cwd().resolve()
    if path.resolve() in (here, *here.parents):
        raise ValueError(
            f"--overwrite of {str(path)!r} would delete the working folder; "
            "name the run directory itself"
        )
    names = [entry.name for entry in path.iterdir()]
    foreign = sorted(n for n in names if n not in RUN_NAMES and not _temporary(n))
    if foreign:
        more = f" and {len(foreign) - 1} more" if len(foreign) > 1 else ""
        raise ValueError(
            f"--overwrite refused: {str(path)!r} holds {short_repr(foreign[0])}{more}, which no "
            "glfpinn run writes, so it is not a run directory; choose another --out"
        )
    written = [n for n in names if n not in (LOCK, "error.txt") and not _temporary(n)]
    if written and not (CONFIG in names and any(m in names for m in _RUN_MARKERS)):
        raise ValueError(
            f"--overwrite refused: {str(path)!r} is not a glfpinn run (a run holds {CONFIG} and "
            f"one of {', '.join(_RUN_MARKERS)}); choose another --out"
        )


def _refuse_links(path: Path) -> None:
    """A run directory someone sent may hold links to files outside it: a resume, which
    writes into it, refuses them (the lock refuses its own, :mod:`.lock`)."""
    for name in sorted(RUN_NAMES - {LOCK}):
        if (path / name).is_symlink():
            raise ValueError(
                f"{str(path / name)!r} is a symbolic link; a run directory holds none, and "
                "writing through it would change a file outside the run: remove it"
            )


def check_mode(path: Path, mode: RunMode) -> None:
    """Whether ``path`` can take a run in ``mode`` (``"new"``: empty; ``"resume"``: a run is
    there; ``"overwrite"``: nothing or a run is there), without changing anything in it."""
    if mode not in ("new", "resume", "overwrite"):
        raise ValueError(f"mode={mode!r} is not allowed; allowed: new, resume, overwrite")
    if mode == "new" and path.exists() and any(p.name != LOCK for p in path.iterdir()):
        raise ValueError(
            f"output directory {str(path)!r} already exists and is not empty; "
            "pass --resume to continue it or --overwrite to replace it"
        )
    if mode == "resume":
        if not (path / CONFIG).exists():
            raise ValueError(f"cannot resume {str(path)!r}: it holds no run ({CONFIG} missing)")
        _refuse_links(path)
    if mode == "overwrite":
        _check_replaceable(path)
    _check_writable(path)


def prepare(path: Path, mode: RunMode) -> None:
    """Make ``path`` ready for a run in ``mode`` (see :func:`check_mode`); ``"overwrite"``
    removes the whole previous run (snapshots and plots included) but the lock. Call it only
    while holding the directory's lock."""
    check_mode(path, mode)
    if mode == "overwrite":
        for entry in path.iterdir():
            if entry.name == LOCK:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:  # a file, or a link (removed, never followed)
                entry.unlink()


def read_config(path: str | os.PathLike) -> RunConfig:
    """The run config stored in ``path``; a damaged config.yaml is a one-line ValueError.

    Reading is data only: a part the config names by import path is neither imported nor
    checked here (:func:`~glfpinn.plugins.untrusted`), only when a caller that trusts the
    run directory builds it."""
    file = Path(path) / CONFIG
    try:
        text = read_limited(file, MAX_YAML_BYTES).decode("utf-8")
        with untrusted(f"the run directory {str(path)!r}"):
            return RunConfig.from_dict(yaml_load(text))
    except (yaml.YAMLError, UnicodeDecodeError, ValueError, TypeError) as err:
        reason = str(err).splitlines()[0][:200] if str(err) else type(err).__name__
        raise ValueError(f"{CONFIG} of the run in {str(path)!r} is damaged ({reason})") from None


def read_result(path: str | os.PathLike) -> dict[str, Any] | None:
    """A finished run's result.json, or None if the run has not finished (or the file is
    damaged: empty, torn or not an object, which a resume then rewrites)."""
    file = Path(path) / RESULT
    if not file.exists():
        return None
    try:
        data = json.loads(read_limited(file, MAX_YAML_BYTES))
    except ValueError:  # torn, binary, not a regular file (/dev/zero) or oversized
        return None
    return data if isinstance(data, dict) and "steps" in data else None


def finished_result(path: str | os.PathLike) -> dict[str, Any] | None:
    """result.json if the run has finished the plan its config.yaml holds now, else None. A
    resume that extends a finished run keeps its result.json until the longer run writes its
    own, so a result short of the plan is that of a run being extended."""
    result = read_result(path)
    if result is None or not isinstance(result["steps"], int):
        return None
    return result if result["steps"] >= read_config(path).plan().total_steps else None
