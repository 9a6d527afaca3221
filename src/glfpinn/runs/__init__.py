"""Run directories: training into one, resuming one, loading one back.

``glfpinn train --out DIR`` (``run``), ``glfpinn.train(..., out=DIR)`` and
``record(trainer, DIR).fit()`` all write the same files (``directory``): config.yaml,
metrics.jsonl, result.json, checkpoint.pt and, for a problem with a reference and a 2-D view,
prediction.npz. A run killed at any moment resumes from its last checkpoint (``mode="resume"``)
and, on the CPU, ends with the same result as an uninterrupted run. ``load_run(DIR)`` gives back
the problem, the trained network and the result, and predicts at new points.

This module only names the package's API; ``recording`` trains into a directory,
``directory`` writes its files, ``load`` reads a run back, ``plots`` draws it.
"""

from __future__ import annotations

from glfpinn.runs.directory import CHECKPOINT as CHECKPOINT
from glfpinn.runs.directory import CONFIG as CONFIG
from glfpinn.runs.directory import METRICS as METRICS
from glfpinn.runs.directory import RESULT as RESULT
from glfpinn.runs.directory import RunDirectory as RunDirectory
from glfpinn.runs.directory import RunMode as RunMode
from glfpinn.runs.directory import Snapshots as Snapshots
from glfpinn.runs.directory import read_config as read_config
from glfpinn.runs.directory import read_result as read_result
from glfpinn.runs.load import Run as Run
from glfpinn.runs.load import load_run as load_run
from glfpinn.runs.plots import plot_run as plot_run
from glfpinn.runs.recording import CHANGEABLE_ON_RESUME as CHANGEABLE_ON_RESUME
from glfpinn.runs.recording import build_trainer as build_trainer
from glfpinn.runs.recording import record as record
from glfpinn.runs.recording import run as run
from glfpinn.runs.recording import train as train

__all__ = [
    "CHANGEABLE_ON_RESUME",
    "CHECKPOINT",
    "CONFIG",
    "METRICS",
    "RESULT",
    "Run",
    "RunDirectory",
    "RunMode",
    "Snapshots",
    "build_trainer",
    "load_run",
    "plot_run",
    "read_config",
    "read_result",
    "record",
    "run",
    "train",
]
