"""Run configuration: YAML <-> a dataclass with strict keys, typed values and dotted overrides."""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

import yaml

__all__ = ["RunConfig", "load_yaml", "apply_overrides", "yaml_load"]


class _Loader(yaml.SafeLoader):
    """Safe loading, plus floats written without a dot (``1e-3``), which YAML 1.1 reads as
    strings: every PINN config writes alpha that way."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(stream: Any) -> Any:
    """``yaml.safe_load`` that also reads ``1e-3`` as a float; never constructs objects."""
    return yaml.load(stream, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader


@dataclass
class RunConfig:
    """Everything that defines a training run. ``None`` means the problem's default."""

    problem: str = "allen-cahn"
    problem_params: dict[str, Any] = field(default_factory=dict)
    sampler: str = "glf"
    sampler_params: dict[str, Any] = field(default_factory=dict)
    steps: int = 20_000
    lbfgs_steps: int = 0
    n_points: int | None = None
    resample_every: int | None = None
    lr: float = 1e-3
    eval_every: int = 100
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool = False
    hidden: list[int] | None = None
    n_condition: int = 1000
    score_chunk: int = 20_000
    checkpoint_every: int = 1000
    snapshot_every: int = 0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Validate keys and value types; unknown keys get a suggestion."""
        if not isinstance(data, dict):
            raise ValueError(f"a run config must be a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in fields:
                close = get_close_matches(str(key), fields, n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown config key {key!r}{hint}")
        cfg = cls(**data)
        cfg._check_types()
        return cfg

    def _check_types(self) -> None:
        def need(name: str, kinds: tuple[type, ...], label: str, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"{name}={value!r} must be {label}")

        for name in ("problem", "sampler", "device", "dtype"):
            need(name, (str,), "a string")
        for name in ("problem_params", "sampler_params"):
            need(name, (dict,), "a mapping")
        for name in ("steps", "lbfgs_steps", "eval_every", "seed", "n_condition", "score_chunk"):
            need(name, (int,), "an integer")
        need("checkpoint_every", (int,), "an integer")
        need("snapshot_every", (int,), "an integer")
        for name in ("n_points", "resample_every"):
            need(name, (int,), "an integer", optional=True)
        need("lr", (int, float), "a number")
        if not isinstance(self.compile, bool):
            raise ValueError(f"compile={self.compile!r} must be true or false")
        need("hidden", (list, tuple), "a list of layer widths", optional=True)
        if self.hidden is not None and not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in self.hidden
        ):
            raise ValueError(f"hidden={self.hidden!r} must list positive integer widths")
        for name in ("checkpoint_every", "snapshot_every"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name}={getattr(self, name)} must be >= 0 (0: never)")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping read with safe loading; empty or malformed files are clear errors."""
    try:
        with open(path, encoding="utf-8") as fh:
            data = yaml_load(fh)
    except FileNotFoundError:
        raise ValueError(f"config file {str(path)!r} does not exist") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ValueError(f"config file {str(path)!r} is not valid YAML{where}") from None
    if data is None:
        raise ValueError(f"config file {str(path)!r} is empty")
    if not isinstance(data, dict):
        raise ValueError(f"config file {str(path)!r} must hold a mapping of keys to values")
    return data


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["sampler_params.alpha=1e-3", "steps=500"]``: values parsed as YAML scalars."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"override {item!r} must look like key=value or a.b=value")
        try:
            value = yaml_load(raw)
        except yaml.YAMLError:
            raise ValueError(f"override {item!r}: {raw!r} is not a valid value") from None
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {item!r}: {part!r} is not a mapping")
            node = child
        node[leaf] = value
    return out
