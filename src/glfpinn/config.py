"""Run configuration: YAML <-> a dataclass with strict keys, typed values and dotted overrides."""

from __future__ import annotations

import dataclasses
import functools
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import Any

import yaml

from glfpinn import samplers
from glfpinn._checks import REPR_LIMIT, check_device, short_repr, shorten
from glfpinn.plugins import absolute_import_path, is_import_path, load_object
from glfpinn.samplers import Sampler
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD as COVERAGE_THRESHOLD
from glfpinn.samplers.coverage import check_threshold
from glfpinn.training.compiling import check_compile
from glfpinn.training.evaluator import DEFAULT_N_VALIDATION
from glfpinn.training.plan import DEFAULT_LR, OptimizationPlan, Stage
from glfpinn.training.scorer import DEFAULT_CHUNK
from glfpinn.training.trainer import DEFAULT_EVAL_EVERY, DEFAULT_N_CONDITION

__all__ = [
    "RunConfig",
    "load_yaml",
    "apply_overrides",
    "yaml_load",
    "parse_assignment",
    "parse_stage",
    "YAMLLimitError",
]


#: The deepest nesting a YAML file may have (every real config stays under 10 levels): deeper
#: files are refused before PyYAML's recursive composer runs out of stack.
MAX_YAML_DEPTH = 50
#: The most values (scalars, lists and mappings) a YAML file may hold, counting every alias as a
#: full copy of what it names: a few hundred bytes of nested aliases (a "billion laughs") stand
#: for billions of values, which any later walk over them (a repr, a copy) would enumerate.
MAX_YAML_NODES = 100_000
#: The largest config file read at all.
MAX_YAML_BYTES = 8 * 1024 * 1024


class YAMLLimitError(yaml.MarkedYAMLError):
    """A YAML document past :data:`MAX_YAML_DEPTH` or :data:`MAX_YAML_NODES`; ``problem`` says
    which, ``problem_mark`` where."""


class _Loader(yaml.SafeLoader):
    """Safe loading, plus floats written without a dot (``1e-3``), which YAML 1.1 reads as
    strings: every PINN config writes alpha that way. Nesting depth, the number of values with
    aliases expanded, and recursive aliases are checked while the document is composed, before
    anything is constructed."""

    def __init__(self, stream: Any) -> None:
        super().__init__(stream)
        self._depth = 0
        #: id(node) -> the number of values under it, aliases expanded; the nodes stay alive
        #: in the document being composed, so their ids are not reused meanwhile.
        self._sizes: dict[int, int] = {}

    def compose_node(self, parent: Any, index: Any) -> Any:
        mark = self.peek_event().start_mark
        if self.check_event(yaml.AliasEvent):
            node = super().compose_node(parent, index)
            if id(node) not in self._sizes:  # the alias points into a node still being composed
                raise YAMLLimitError(problem="has a recursive alias", problem_mark=mark)
            return node
        if self._depth >= MAX_YAML_DEPTH:
            raise YAMLLimitError(
                problem=f"nests deeper than {MAX_YAML_DEPTH} levels", problem_mark=mark
            )
        self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            self._depth -= 1
        if isinstance(node, yaml.MappingNode):
            children = [child for pair in node.value for child in pair]
        else:
            children = node.value if isinstance(node, yaml.SequenceNode) else []
        size = 1 + sum(self._sizes[id(child)] for child in children)
        if size > MAX_YAML_NODES:
            raise YAMLLimitError(
                problem=f"holds more than {MAX_YAML_NODES} values with its aliases expanded",
                problem_mark=mark,
            )
        self._sizes[id(node)] = size
        return node


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(stream: Any) -> Any:
    """``yaml.safe_load`` that also reads ``1e-3`` as a float; never constructs objects.
    A document nested deeper than :data:`MAX_YAML_DEPTH`, holding more than
    :data:`MAX_YAML_NODES` values once its aliases are expanded, or with a recursive alias
    raises :class:`YAMLLimitError` (a ``yaml.YAMLError``)."""
    return yaml.load(stream, Loader=_Loader)  # noqa: S506 - _Loader derives from SafeLoader


#: Adam steps of a run whose config gives neither ``steps`` nor ``stages``.
DEFAULT_ADAM_STEPS = 20_000


@dataclass
class RunConfig:
    """Everything that defines a training run. ``None`` means the problem's default."""

    problem: str = "allen-cahn"
    problem_params: dict[str, Any] = field(default_factory=dict)
    sampler: str = "glf"
    sampler_params: dict[str, Any] = field(default_factory=dict)
    #: the default plan: ``steps`` Adam steps (DEFAULT_ADAM_STEPS if unset) at ``lr`` (DEFAULT_LR),
    #: then ``lbfgs_steps`` L-BFGS iterations (0) ...
    steps: int | None = None
    lbfgs_steps: int | None = None
    lr: float | None = None
    #: ... or a plan of optimizer stages, ``{optimizer, steps, scheduler?, <options>}`` each
    stages: list[dict[str, Any]] | None = None
    n_points: int | None = None
    resample_every: int | None = None
    eval_every: int = DEFAULT_EVAL_EVERY
    n_validation: int = DEFAULT_N_VALIDATION
    loss_weights: dict[str, float] = field(default_factory=dict)
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool | str = True
    #: the network: the built-in MLP (``hidden``, ``activation``: tanh, Fourier features) ...
    hidden: list[int] | None = None
    activation: str | None = None
    fourier_features: int = 0
    fourier_scale: float = 1.0
    #: ... or a factory ``problem -> nn.Module`` by import path (``pkg.mod:make``,
    #: ``file.py:make``), called as ``make(problem, **model_params)``
    model: str | None = None
    model_params: dict[str, Any] = field(default_factory=dict)
    n_condition: int = DEFAULT_N_CONDITION
    score_chunk: int = DEFAULT_CHUNK
    #: a resample whose coverage falls below this warns once (glfpinn.samplers.coverage)
    coverage_threshold: float = COVERAGE_THRESHOLD
    checkpoint_every: int = 1000
    snapshot_every: int = 0
    #: processes (ranks) the run trains on, data-parallel (see glfpinn.distributed)
    nproc: int = 1

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunConfig:
        """Validate keys and value types; unknown keys get a suggestion."""
        if not isinstance(data, dict):
            raise ValueError(f"a run config must be a mapping, got {type(data).__name__}")
        fields = {f.name: f for f in dataclasses.fields(cls)}
        for key in data:
            if key not in fields:
                typo = isinstance(key, str) and len(key) <= REPR_LIMIT  # difflib is slow on long
                close = get_close_matches(key, fields, n=1) if typo else []
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise ValueError(f"unknown config key {short_repr(key)}{hint}")
        cfg = cls(**data)
        cfg._check_types()
        check_threshold(cfg.coverage_threshold)
        # a run directory records where a user's class lives, wherever it is resumed from
        for key in ("problem", "sampler", "model"):
            if getattr(cfg, key) is not None:
                setattr(cfg, key, absolute_import_path(getattr(cfg, key)))
        cfg.plan()  # names, option keys and step counts: refused now, not after training
        cfg.model_factory()
        cfg.build_sampler()  # hyperparameters: refused before a run directory is made
        return cfg

    def build_sampler(self) -> Sampler:
        """The sampler ``sampler`` names, built with ``sampler_params`` (constructors only
        check and store hyperparameters, so this is cheap)."""
        return samplers.get(self.sampler, **self.sampler_params)

    def model_factory(self) -> Callable[[Any], Any] | None:
        """The ``model`` factory with ``model_params`` bound, or None for the built-in MLP."""
        if self.model is None:
            if self.model_params:
                raise ValueError("model_params given without a model")
            return None
        mlp = [k for k in ("hidden", "activation") if getattr(self, k) is not None]
        mlp += ["fourier_features"] if self.fourier_features else []
        if mlp:
            raise ValueError(
                f"{', '.join(mlp)} describe the built-in MLP; leave them out with model"
            )
        if not is_import_path(self.model):
            raise ValueError(
                f"model={short_repr(self.model)} must be an import path like package.module:make "
                "or path/to/file.py:make"
            )
        factory = load_object(self.model, "model")
        if not callable(factory):
            raise ValueError(f"model {short_repr(self.model)} is not callable")
        return functools.partial(factory, **self.model_params) if self.model_params else factory

    def plan(self) -> OptimizationPlan:
        """The optimization plan: the stages if given, else Adam (then L-BFGS)."""
        if self.stages is None:
            return OptimizationPlan.adam_then_lbfgs(
                DEFAULT_ADAM_STEPS if self.steps is None else self.steps,
                self.lbfgs_steps or 0,
                DEFAULT_LR if self.lr is None else self.lr,
            )
        given = [k for k in ("steps", "lbfgs_steps", "lr") if getattr(self, k) is not None]
        if given:
            raise ValueError(
                f"{', '.join(given)} given with stages; put them in the stages instead"
            )
        if not self.stages:
            raise ValueError("stages=[] is not allowed; give at least one stage or leave it out")
        return OptimizationPlan([Stage.from_dict(stage) for stage in self.stages])

    def _check_types(self) -> None:
        def need(name: str, kinds: tuple[type, ...], label: str, optional: bool = False) -> None:
            value = getattr(self, name)
            if optional and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, kinds):
                raise ValueError(f"{name}={short_repr(value)} must be {label}")

        for name in ("problem", "sampler", "device", "dtype"):
            need(name, (str,), "a string")
        check_device(self.device)
        need("activation", (str,), "a string", optional=True)
        need("model", (str,), "an import path like package.module:make", optional=True)
        for name in ("problem_params", "sampler_params", "loss_weights", "model_params"):
            need(name, (dict,), "a mapping")
        for name in ("eval_every", "seed", "n_condition", "score_chunk", "n_validation", "nproc"):
            need(name, (int,), "an integer")
        if self.nproc < 1:
            raise ValueError(f"nproc={short_repr(self.nproc)} must be >= 1")
        for name in ("checkpoint_every", "snapshot_every", "fourier_features"):
            need(name, (int,), "an integer")
        for name in ("steps", "lbfgs_steps", "n_points", "resample_every"):
            need(name, (int,), "an integer", optional=True)
        need("lr", (int, float), "a number", optional=True)
        need("fourier_scale", (int, float), "a number")
        need("stages", (list,), "a list of stages", optional=True)
        for name, value in self.loss_weights.items():
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(
                    f"loss_weights.{shorten(str(name))}={short_repr(value)} must be a number"
                )
        check_compile(self.compile)
        need("hidden", (list, tuple), "a list of layer widths", optional=True)
        if self.hidden is not None and not all(
            isinstance(w, int) and not isinstance(w, bool) and w > 0 for w in self.hidden
        ):
            raise ValueError(f"hidden={short_repr(self.hidden)} must list positive integer widths")
        for name in ("checkpoint_every", "snapshot_every", "fourier_features"):
            if getattr(self, name) < 0:
                raise ValueError(
                    f"{name}={short_repr(getattr(self, name))} must be >= 0 (0: never)"
                )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """A YAML mapping read with safe loading; empty, malformed, unreadable, oversized or
    overly nested files are one-line ValueErrors."""
    name = short_repr(str(path))
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ValueError(f"config file {name} does not exist") from None
    except OSError as err:  # a directory, no permission, a name too long: the user's path
        raise ValueError(f"config file {name} cannot be read ({err.strerror})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ValueError(f"config file {name} is larger than {MAX_YAML_BYTES} bytes")
    try:
        data = yaml_load(raw)  # bytes: PyYAML detects UTF-8/16 and refuses binary itself
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        if isinstance(err, YAMLLimitError):
            raise ValueError(f"config file {name} {err.problem}{where}") from None
        raise ValueError(f"config file {name} is not valid YAML{where}") from None
    except ValueError as err:  # a scalar Python cannot hold: a 5000-digit int, February 30
        raise ValueError(f"config file {name} holds a value that cannot be read ({err})") from None
    if data is None:
        raise ValueError(f"config file {name} is empty")
    if not isinstance(data, dict):
        raise ValueError(f"config file {name} must hold a mapping of keys to values")
    return data


def parse_assignment(item: str, what: str) -> tuple[str, Any]:
    """``"key=value"`` as ``(key, value)``, the value parsed as YAML (``1e-3``, ``[8, 8]``);
    errors name ``what`` the item was (``"override 'x'"``)."""
    key, sep, raw = item.partition("=")
    if not sep or not key:
        raise ValueError(f"{what}: {short_repr(item)} must look like key=value")
    try:
        return key, yaml_load(raw)
    except YAMLLimitError as err:
        raise ValueError(f"{what}: {short_repr(raw)} {err.problem}") from None
    except yaml.YAMLError:
        raise ValueError(f"{what}: {short_repr(raw)} is not a valid value") from None


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """``["sampler_params.alpha=1e-3", "steps=500"]``: values parsed as YAML scalars."""
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in data.items()}
    for item in overrides:
        key, value = parse_assignment(item, f"override {short_repr(item)} (key=value or a.b=value)")
        *parents, leaf = key.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(
                    f"override {short_repr(item)}: {short_repr(part)} is not a mapping"
                )
            node = child
        node[leaf] = value
    return out


def parse_stage(text: str) -> dict[str, Any]:
    """A stage written on the command line, ``NAME:key=value,...``, as config data.

    ``adamw:steps=2000,lr=1e-3,scheduler=cosine,scheduler.eta_min=1e-5`` becomes
    ``{optimizer: adamw, steps: 2000, lr: 0.001, scheduler: {name: cosine, eta_min: 1e-05}}``;
    values are YAML scalars, ``scheduler.*`` keys are the scheduler's options.
    """
    name, _, rest = text.partition(":")
    if not name.strip():
        raise ValueError(f"stage {short_repr(text)} must look like NAME:steps=N,key=value,...")
    stage: dict[str, Any] = {"optimizer": name.strip()}
    scheduler: dict[str, Any] = {}
    for item in filter(None, (part.strip() for part in _split_outside_brackets(rest))):
        key, value = parse_assignment(item, f"stage {short_repr(text)}")
        if key == "scheduler":
            scheduler["name"] = value
        elif key.startswith("scheduler."):
            scheduler[key.removeprefix("scheduler.")] = value
        else:
            stage[key] = value
    if scheduler:
        stage["scheduler"] = scheduler
    return stage


def _split_outside_brackets(text: str) -> list[str]:
    """Split at commas that are not inside [...] or {...} (``betas=[0.9, 0.99]`` stays whole)."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "{": 1, "]": -1, "}": -1}.get(char, 0)
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    return [*parts, text[start:]]
