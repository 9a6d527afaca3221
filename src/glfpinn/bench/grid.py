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

Published figures to set beside the bench's own (the report's "Published figures beside ours")
go under ``published``, by problem label: a positive L2 error, or ``{value, sampler}`` to compare
it with that sampler's median rather than the best sampler's::

    published:
      source: PINNacle (Hao et al., NeurIPS 2024), Table 3, mean L2RE
      figures:
        ns2d-c: {vanilla PINN: {value: 4.70e-2, sampler: uniform}, best (LAAF): 3.60e-2}
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from glfpinn import problems
from glfpinn._checks import check_int, check_keys, check_positive, short_repr, shorten
from glfpinn.config import RunConfig, load_yaml
from glfpinn.nn import MLP
from glfpinn.training.loss import LOSS_TERMS
from glfpinn.training.trainer import DTYPES

__all__ = ["Bench", "Cell", "load_bench"]

#: A label is one directory name of a cell's path: short, and the same on every filesystem.
_LABEL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]{0,99}$")
_TOP_KEYS = {"profile", "note", "base", "experiments", "workers", "published"}
_EXPERIMENT_KEYS = {"problems", "samplers", "seeds", "base", "note"}
#: Seeds end up in result.json and results.csv, which tools read as int64.
_MAX_SEED = 2**63 - 1
#: The longest error text of another part (a run config, a constructor) a bench error quotes.
_QUOTED_ERROR_LIMIT = 300


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
    #: ``{"source": str, "figures": {problem label: {figure label: {"value", "sampler"}}}}``
    published: dict[str, Any] | None = None


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
    unknown = sorted(set(data) - allowed, key=str)
    if unknown:
        raise ValueError(
            f"{where}: unknown key {short_repr(unknown[0])}; allowed: {', '.join(sorted(allowed))}"
        )
    return data


def _settings(where: str, data: Any) -> dict[str, Any]:
    """A ``base`` mapping of run settings (``base:`` left empty: none)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError(f"{where} must be a mapping of run settings, got {type(data).__name__}")
    return data


def _labelled(where: str, data: Any) -> dict[str, dict[str, Any]]:
    if not isinstance(data, dict) or not data:
        raise ValueError(f"{where} must be a non-empty mapping of labels to run settings")
    for label, entry in data.items():
        if not isinstance(label, str) or not _LABEL.match(label):
            raise ValueError(
                f"{where}: label {short_repr(label)} must be 1 to 100 letters, digits, '.', '_', "
                "'+', '-', starting with a letter or digit"
            )
        if not isinstance(entry, dict):
            raise ValueError(f"{where}.{label} must be a mapping of run settings")
    return data


def _seeds(name: str, seeds: Any) -> list[int]:
    if not isinstance(seeds, list) or not seeds:
        raise ValueError(f"experiment {name!r}: seeds must be a non-empty list of integers")
    seen: set[int] = set()
    for seed in seeds:
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed <= _MAX_SEED:
            raise ValueError(
                f"experiment {name!r}: seed {short_repr(seed)} is not allowed; "
                "seeds must be integers from 0 to 2**63 - 1"
            )
        if seed in seen:
            raise ValueError(
                f"experiment {name!r}: seed {seed} is listed twice; "
                "each seed's cells have one directory, so seeds must be distinct"
            )
        seen.add(seed)
    return seeds


def _build_problem(cfg: RunConfig, built: set[str]) -> None:
    """Build the cell's problem as its worker will, each distinct one once: that checks its name,
    import path and parameters in milliseconds (a reference solution is computed only when first
    asked for) instead of in a worker, after other cells have started. RunConfig builds the
    sampler itself."""
    key = repr((cfg.problem, cfg.problem_params))
    if key not in built:
        problems.get(cfg.problem, **cfg.problem_params)
        built.add(key)


def _check_values(cfg: RunConfig) -> None:
    """The ranges RunConfig leaves to the trainer, which would refuse them only in a worker."""
    if cfg.nproc != 1:
        raise ValueError(
            f"nproc={cfg.nproc}: a bench trains each run in one worker process; "
            "train a run on several ranks with glfpinn train --nproc K"
        )
    for name in ("eval_every", "n_validation", "n_condition", "score_chunk"):
        check_int(name, getattr(cfg, name), minimum=1)
    for name in ("n_points", "resample_every", "resample_until"):
        if getattr(cfg, name) is not None:
            check_int(name, getattr(cfg, name), minimum=1)
    if cfg.lr is not None:
        check_positive("lr", cfg.lr)
    check_keys("loss term", cfg.loss_weights, LOSS_TERMS)
    for term, weight in cfg.loss_weights.items():
        check_positive(f"loss_weights.{term}", weight, allow_zero=True)
    if cfg.dtype not in DTYPES:
        raise ValueError(f"dtype={short_repr(cfg.dtype)} is unknown; allowed: {', '.join(DTYPES)}")
    if cfg.model is None:
        # the network's own checks (activation, Fourier scale), on a one-weight network
        MLP(1, hidden=(), activation=cfg.activation or "tanh", fourier_scale=cfg.fourier_scale)


def _distinct_paths(cells: list[Cell]) -> None:
    """Two cells in one directory would overwrite each other's files; on a case-insensitive
    filesystem (macOS, Windows) labels differing only in case are one directory."""
    seen: dict[str, Cell] = {}
    for cell in cells:
        other = seen.setdefault(str(cell.path).casefold(), cell)
        if other is not cell:
            raise ValueError(
                f"cells {other.path} and {cell.path} would share a directory on a "
                "case-insensitive filesystem; rename one of the labels"
            )


def _published(file: str, data: Any, cells: list[Cell]) -> dict[str, Any] | None:
    """The ``published`` figures, checked against the bench's own problem and sampler labels."""
    if data is None:
        return None
    data = _check_keys(f"{file}: published", data, {"source", "figures"})
    source = data.get("source")
    if not isinstance(source, str) or not source.strip():
        raise ValueError(
            f"{file}: published.source={short_repr(source)} must say where the figures come from"
        )
    figures = data.get("figures")
    if not isinstance(figures, dict) or not figures:
        raise ValueError(f"{file}: published.figures must be a non-empty mapping of problem labels")
    problem_labels = {c.problem for c in cells}
    sampler_labels = {c.sampler for c in cells}
    checked: dict[str, dict[str, dict[str, Any]]] = {}
    for problem, entries in figures.items():
        if problem not in problem_labels:
            raise ValueError(
                f"{file}: published figures for problem {short_repr(problem)}, which no "
                f"experiment has; problems: {', '.join(sorted(problem_labels))}"
            )
        if not isinstance(entries, dict) or not entries:
            raise ValueError(f"{file}: published.figures.{problem} must map labels to L2 errors")
        checked[problem] = {}
        for label, entry in entries.items():
            where = f"{file}: published.figures.{problem}.{label}"
            if isinstance(entry, dict):
                entry = _check_keys(where, entry, {"value", "sampler"})
                value, sampler = entry.get("value"), entry.get("sampler")
            else:
                value, sampler = entry, None
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if not (numeric and math.isfinite(value) and value > 0):
                raise ValueError(f"{where}={short_repr(value)} must be a positive L2 error")
            if sampler is not None and sampler not in sampler_labels:
                raise ValueError(
                    f"{where}: sampler {short_repr(sampler)} is not one of the bench's: "
                    f"{', '.join(sorted(sampler_labels))}"
                )
            checked[problem][str(label)] = {"value": float(value), "sampler": sampler}
    return {"source": source.strip(), "figures": checked}


def load_bench(path: str | os.PathLike) -> Bench:
    """Parse and validate a whole bench file: every cell's run config, problem and sampler are
    checked before any worker starts, so a bad cell never stops a grid halfway."""
    file = shorten(str(path))
    data = _check_keys(file, load_yaml(path, what="bench file", unique_keys=True), _TOP_KEYS)
    base = _settings(f"{file}: base", data.get("base"))
    workers = data.get("workers")
    if workers is not None and (
        isinstance(workers, bool) or not isinstance(workers, int) or workers < 1
    ):
        raise ValueError(f"workers={short_repr(workers)} must be a positive integer")
    experiments = data.get("experiments")
    if not isinstance(experiments, dict) or not experiments:
        raise ValueError(f"{file}: 'experiments' must be a non-empty mapping")
    cells: list[Cell] = []
    built: set[str] = set()
    for name, exp in experiments.items():
        if not isinstance(name, str) or not _LABEL.match(name):
            raise ValueError(f"{file}: experiment name {short_repr(name)} is not a valid label")
        exp = _check_keys(f"experiment {name!r}", exp, _EXPERIMENT_KEYS)
        exp_base = _settings(f"experiment {name!r} base", exp.get("base"))
        seeds = _seeds(name, exp.get("seeds", [0]))
        problem_entries = _labelled(f"experiment {name!r} problems", exp.get("problems"))
        sampler_entries = _labelled(f"experiment {name!r} samplers", exp.get("samplers"))
        for p_label, p_entry in problem_entries.items():
            for s_label, s_entry in sampler_entries.items():
                for seed in seeds:
                    merged = _merge(base, exp_base, p_entry, s_entry, {"seed": seed})
                    try:
                        cfg = RunConfig.from_dict(merged)
                        _check_values(cfg)
                        _build_problem(cfg, built)
                    except (ValueError, TypeError) as err:
                        why = shorten(str(err), _QUOTED_ERROR_LIMIT)
                        raise ValueError(
                            f"experiment {name!r}, {p_label}/{s_label}: {why}"
                        ) from None
                    cells.append(Cell(name, p_label, s_label, seed, cfg))
    _distinct_paths(cells)
    return Bench(
        str(data.get("profile", "custom")),
        str(data.get("note", "")),
        tuple(cells),
        workers,
        _published(file, data.get("published"), cells),
    )
