"""Bench configs: experiments as problem x sampler x seed grids of run configs.

A bench file lists experiments; each names its problems and samplers as labelled partial run
configs, merged in the order base <- problem entry <- sampler entry <- seed::

    profile: quick
    note: fewer steps, lower dimensions and fewer seeds than the paper
    base: {steps: 2000, eval_every: 50}
    experiments:
      main:
        problems: {allen-cahn: {problem: allen-cahn}}
        samplers: {glf: {sampler: glf}, rad: {sampler: rad, sampler_params: {n_candidates: 20000}}}
        seeds: [0, 1, 2]

Every cell runs into ``<out>/<experiment>/<problem label>/<sampler label>/seed<k>``.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glfpinn.config import RunConfig, load_yaml

__all__ = ["Bench", "Cell", "load_bench"]

_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")
_TOP_KEYS = {"profile", "note", "base", "experiments", "workers"}
_EXPERIMENT_KEYS = {"problems", "samplers", "seeds", "base", "note"}


@dataclass(frozen=True)
class Cell:
    experiment: str
    problem: str
    sampler: str
    seed: int
    config: RunConfig

    @property
    def path(self) -> Path:
        return Path(self.experiment, self.problem, self.sampler, f"seed{self.seed}")


@dataclass(frozen=True)
class Bench:
    profile: str
    note: str
    cells: tuple[Cell, ...]
    workers: int | None


def _merge(*parts: dict[str, Any]) -> dict[str, Any]:
    """Later parts win; the two params mappings merge key by key instead of being replaced."""
    out: dict[str, Any] = {}
    for part in parts:
        for key, value in part.items():
            if key in ("problem_params", "sampler_params") and isinstance(value, dict):
                out[key] = {**out.get(key, {}), **value}
            else:
                out[key] = value
    return out


def _check_keys(where: str, data: Any, allowed: set[str]) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping, got {type(data).__name__}")
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise ValueError(
            f"{where}: unknown key {unknown[0]!r}; allowed: {', '.join(sorted(allowed))}"
        )
    return data


def _labelled(where: str, data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where} must be a non-empty mapping of labels to run settings")
    for label, entry in data.items():
        if not isinstance(label, str) or not _LABEL.match(label):
            raise ValueError(
                f"{where}: label {label!r} must be letters, digits, '.', '_', '+', '-'"
            )
        if not isinstance(entry, dict):
            raise ValueError(f"{where}.{label} must be a mapping of run settings")
    return data


def load_bench(path: str | os.PathLike) -> Bench:
    """Parse and validate a bench file; every cell's run config is checked up front."""
    data = _check_keys(str(path), load_yaml(path), _TOP_KEYS)
    base = data.get("base", {}) or {}
    experiments = data.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise ValueError(f"{path}: 'experiments' must be a non-empty mapping")
    cells = []
    for name, exp in experiments.items():
        if not isinstance(name, str) or not _LABEL.match(name):
            raise ValueError(f"{path}: experiment name {name!r} is not a valid label")
        exp = _check_keys(f"experiment {name!r}", exp, _EXPERIMENT_KEYS)
        seeds = exp.get("seeds", [0])
        if not isinstance(seeds, list) or not seeds or not all(isinstance(s, int) for s in seeds):
            raise ValueError(f"experiment {name!r}: seeds must be a non-empty list of integers")
        problems = _labelled(f"experiment {name!r} problems", exp.get("problems"))
        samplers = _labelled(f"experiment {name!r} samplers", exp.get("samplers"))
        for p_label, p_entry in problems.items():
            for s_label, s_entry in samplers.items():
                for seed in seeds:
                    merged = _merge(
                        base, exp.get("base", {}) or {}, p_entry, s_entry, {"seed": seed}
                    )
                    try:
                        cfg = RunConfig.from_dict(merged)
                    except (ValueError, TypeError) as err:
                        raise ValueError(
                            f"experiment {name!r}, {p_label}/{s_label}: {err}"
                        ) from None
                    cells.append(Cell(name, p_label, s_label, seed, cfg))
    workers = data.get("workers")
    if workers is not None and (not isinstance(workers, int) or workers < 1):
        raise ValueError(f"workers={workers!r} must be a positive integer")
    return Bench(
        str(data.get("profile", "custom")), str(data.get("note", "")), tuple(cells), workers
    )
