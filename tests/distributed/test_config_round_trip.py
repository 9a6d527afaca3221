"""One source of truth for what a run is: config.yaml, read back, rebuilds the run it came from.

A run's config is assembled from its parts' ``get_params`` (``glfpinn.config.config_of``) and
builds the parts from them (``RunConfig.build_*``, ``build_trainer``). Here a trainer built in
Python writes config.yaml through ``record``, the config is read back and the trainer rebuilt,
and the two are compared: the config each gives, the points they start from, the network they
start with. On 2 ranks too: the config is the whole run's (``n_points`` over both ranks and
``nproc: 2``; it once recorded one rank's share and no ``nproc``), and so is the CLI's under
``--nproc 2``.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import torch
import yaml
from ranks import run_ranks

from glfpinn import GLF, Evaluator, Every, Mix, Stage, Trainer, UniformResample, problems, record
from glfpinn.config import RunConfig, config_of, yaml_load
from glfpinn.runs import build_trainer, read_config
from glfpinn.training import make_trainer


def _python_trainer(group: Any = None) -> Trainer:
    """Every kind of part a config holds, none at its default."""
    return make_trainer(
        problems.get("laplace", boundary_weight=2.0),
        Mix([(GLF(alpha=1e-3, M=2), 0.75), (UniformResample(method="sobol"), 0.25)]),
        plan=[
            Stage(
                "adamw",
                3,
                lr=1e-2,
                weight_decay=1e-4,
                scheduler="cosine",
                scheduler_options={"eta_min": 1e-5},
            ),
            Stage("lbfgs", 2),
        ],
        hidden=(8, 8),
        activation="sin",
        fourier_features=4,
        fourier_scale=2.0,
        n_points=40,
        schedule=Every(2),
        eval_every=5,
        evaluator=Evaluator(n_validation=30),
        loss_weights={"conditions": 10.0},
        seed=3,
        dtype="float64",
        compile=False,
        n_condition=50,
        score_chunk=100,
        group=group,
    )


def _start(trainer: Trainer) -> dict[str, Any]:
    """Where a run starts: its points, condition points and initial network."""
    s = trainer.state
    return {
        "points": s.points,
        "conditions": s.condition_points,
        "model": {k: v.clone() for k, v in trainer.model.state_dict().items()},
    }


def _same_start(a: dict[str, Any], b: dict[str, Any]) -> bool:
    flat = [
        (a["points"], b["points"]),
        *((a["conditions"][k], b["conditions"][k]) for k in a["conditions"]),
        *((a["model"][k], b["model"][k]) for k in a["model"]),
    ]
    same_keys = (
        a["conditions"].keys() == b["conditions"].keys() and a["model"].keys() == b["model"].keys()
    )
    return same_keys and all(torch.equal(x, y) for x, y in flat)


def _stored(path: Path) -> dict[str, Any]:
    return yaml_load((path / "config.yaml").read_text())


def test_a_python_runs_config_rebuilds_the_same_run(tmp_path):
    trainer = _python_trainer()
    record(trainer, tmp_path / "run", checkpoint_every=7, snapshot_every=3)
    stored = _stored(tmp_path / "run")
    assert "not recorded" not in (tmp_path / "run/config.yaml").read_text()
    assert stored["n_points"] == 40 and stored["nproc"] == 1
    assert stored["sampler"] == "mix" and stored["problem_params"]["boundary_weight"] == 2.0
    assert stored["stages"][0] == {
        "optimizer": "adamw",
        "steps": 3,
        "lr": 1e-2,
        "weight_decay": 1e-4,
        "scheduler": {"name": "cosine", "eta_min": 1e-5},
    }

    rebuilt = build_trainer(read_config(tmp_path / "run"))
    again, notes = config_of(rebuilt, checkpoint_every=7, snapshot_every=3)
    assert notes == [] and again == stored
    for part in ("sampler", "schedule"):
        assert repr(getattr(rebuilt, part)) == repr(getattr(trainer, part))
    assert rebuilt.problem.get_params() == trainer.problem.get_params()
    assert [s.get_params() for s in rebuilt.plan.stages] == [
        s.get_params() for s in trainer.plan.stages
    ]
    assert rebuilt.evaluator.get_params() == trainer.evaluator.get_params()
    assert _same_start(_start(rebuilt), _start(trainer))


def _record_and_rebuild(group: Any, out: str) -> dict[str, Any]:
    """On each rank: record the Python-built trainer (rank 0 writes config.yaml), then rebuild
    it from the config read back."""
    trainer = _python_trainer(group)
    record(trainer, out)
    group.barrier()  # config.yaml is written
    rebuilt = build_trainer(read_config(out), group=group)
    return {
        "config": config_of(trainer)[0],
        "rebuilt": config_of(rebuilt)[0],
        "start": _start(trainer),
        "rebuilt_start": _start(rebuilt),
    }


def test_a_python_run_on_2_ranks_records_the_whole_run(tmp_path):
    out = tmp_path / "run"
    ranks = run_ranks(_record_and_rebuild, tmp_path, str(out))
    stored = _stored(out)
    assert stored["n_points"] == 40 and stored["nproc"] == 2  # not one rank's 20, nor nproc 1
    for rank in ranks:
        assert rank["config"] == rank["rebuilt"] == stored
        assert _same_start(rank["start"], rank["rebuilt_start"])
    assert not torch.equal(ranks[0]["start"]["points"], ranks[1]["start"]["points"])
    # one process rebuilds the whole run's config from it, but for the number of ranks
    one = config_of(build_trainer(RunConfig.from_dict({**stored, "nproc": 1})))[0]
    assert one == {**stored, "nproc": 1}


def _parts(cfg: RunConfig) -> dict[str, Any]:
    """What a config builds, as comparable data."""
    data = cfg.to_dict()
    for key in ("problem_params", "sampler_params", "steps", "lbfgs_steps", "lr", "stages"):
        data.pop(key)
    for key in ("hidden", "activation", "fourier_features", "fourier_scale"):
        data.pop(key)
    return {
        **data,
        "problem_params": cfg.build_problem().get_params(),
        "sampler": repr(cfg.build_sampler()),
        "plan": cfg.plan().describe(),
        "model": cfg.build_model().get_params(),
        "evaluator": cfg.build_evaluator().get_params(),
    }


def _rebuild(group: Any, out: str) -> dict[str, Any]:
    return config_of(build_trainer(read_config(out), group=group))[0]


def test_the_cli_config_under_nproc_2_rebuilds_the_run(tmp_path):
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    env.pop("WORLD_SIZE", None)
    args = ["--problem", "allen-cahn", "--sampler", "rad", "--steps", "2", "--n-points", "16"]
    args += ["--set", "sampler_params.n_candidates=64", "--hidden", "8", "--resample-every", "1"]
    args += ["--n-validation", "16", "--seed", "1", "--no-compile", "--quiet", "--nproc", "2"]
    done = subprocess.run(
        [sys.executable, "-m", "glfpinn", "train", *args, "--out", str(out)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    stored = read_config(out)
    assert (stored.n_points, stored.nproc) == (16, 2)
    assert yaml.safe_load((out / "config.yaml").read_text())["sampler_params"] == {
        "n_candidates": 64
    }
    for assembled in run_ranks(_rebuild, tmp_path, str(out)):
        assert _parts(RunConfig.from_dict(assembled)) == _parts(stored)
