"""Run configuration: YAML <-> a dataclass with strict keys, typed values and dotted overrides.

One source of truth for what a run is: a :class:`RunConfig` builds every part of the run from
its fields (``build_problem``, ``build_sampler``, ``plan``, ``build_model``, ``build_evaluator``,
``build_schedule``), and :func:`config_of` assembles a config back from those parts'
own ``get_params`` (:class:`glfpinn._params.Params`), so a trainer built in Python records the
same config.yaml as a command-line run.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
import re
from dataclasses import dataclass, field
from difflib import get_close_matches
from typing import TYPE_CHECKING, Any

import yaml
from torch import nn

from glfpinn import problems, samplers
from glfpinn._checks import REPR_LIMIT, check_device, check_keys, short_repr, shorten
from glfpinn._io import is_plain_data
from glfpinn.plugins import (
    UntrustedCodeError,
    absolute_import_path,
    import_path_of,
    is_import_path,
    load_object,
)
from glfpinn.problems.base import Problem
from glfpinn.problems.reference.files import reference_spec
from glfpinn.samplers import Mix, Sampler
from glfpinn.samplers.coverage import DEFAULT_THRESHOLD as COVERAGE_THRESHOLD
from glfpinn.samplers.coverage import check_threshold
from glfpinn.training.compiling import check_compile
from glfpinn.training.evaluator import DEFAULT_N_VALIDATION, Evaluator
from glfpinn.training.network import MLPSpec, ModelFactory
from glfpinn.training.plan import OptimizationPlan, Rounds, Stage
from glfpinn.training.schedules import Every, Schedule
from glfpinn.training.scorer import DEFAULT_CHUNK
from glfpinn.training.scores import check_score
from glfpinn.training.shortcuts import DEFAULT_ADAM_STEPS, resolve_plan
from glfpinn.training.trainer import DEFAULT_EVAL_EVERY, DEFAULT_N_CONDITION

if TYPE_CHECKING:
    from glfpinn.training.trainer import Trainer

__all__ = [
    "RunConfig",
    "config_of",
    "load_yaml",
    "apply_overrides",
    "yaml_load",
    "parse_assignment",
    "YAMLLimitError",
    "DEFAULT_ADAM_STEPS",
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


class _RepeatedKey(ValueError):
    """A key given twice in one YAML mapping (the message lacks the file, added by the caller)."""


class _UniqueKeyLoader(_Loader):
    """The loader, refusing a key given twice in one mapping: YAML silently keeps the last one,
    so a bench listing a label twice would run only one of the two entries."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue  # ``<<: *defaults`` and then overriding one default is meant
            key = self.construct_object(key_node, deep=True)
            line = key_node.start_mark.line + 1
            try:
                first = seen.get(key)
            except TypeError:
                continue  # an unhashable key: the base loader refuses it, saying so
            seen[key] = line
            if first is not None:
                raise _RepeatedKey(
                    f"line {line}: key {short_repr(key)} is given twice in one mapping "
                    f"(first on line {first}); labels and keys must be unique"
                )
        return super().construct_mapping(node, deep=deep)


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def yaml_load(stream: Any, *, unique_keys: bool = False) -> Any:
    """``yaml.safe_load`` that also reads ``1e-3`` as a float; never constructs objects.
    A document nested deeper than :data:`MAX_YAML_DEPTH`, holding more than
    :data:`MAX_YAML_NODES` values once its aliases are expanded, or with a recursive alias
    raises :class:`YAMLLimitError` (a ``yaml.YAMLError``); with ``unique_keys``, a key given
    twice in one mapping is a ValueError naming its lines."""
    loader = _UniqueKeyLoader if unique_keys else _Loader
    return yaml.load(stream, Loader=loader)  # noqa: S506 - both derive from SafeLoader


@dataclass
class RunConfig:
    """Everything that defines a training run. ``None`` means the problem's default."""

    problem: str = "allen-cahn"
    problem_params: dict[str, Any] = field(default_factory=dict)
    #: a reference solution from a file, measured against instead of the problem's own: a path
    #: (.npz, .npy, .csv, .mat, COMSOL .dat/.txt) or ``{path, columns?, time_dependent?}``
    #: (glfpinn.problems.load_reference); recorded as an absolute path, so a run directory
    #: finds the file again from any working folder while it stays where it is
    reference: str | dict[str, Any] | None = None
    sampler: str = "glf"
    sampler_params: dict[str, Any] = field(default_factory=dict)
    #: the default plan: ``steps`` Adam steps (DEFAULT_ADAM_STEPS if unset) at ``lr`` (DEFAULT_LR),
    #: then ``lbfgs_steps`` L-BFGS iterations (0) ...
    steps: int | None = None
    lbfgs_steps: int | None = None
    lr: float | None = None
    #: ... or a plan of optimizer stages, ``{optimizer, steps, scheduler?, dtype?, curvature?,
    #: <options>}`` each
    stages: list[dict[str, Any]] | None = None
    #: stages repeated after those, a resample at each round's start:
    #: ``{repeat: K, stages: [...]}`` (glfpinn.training.plan.Rounds)
    rounds: dict[str, Any] | None = None
    n_points: int | None = None
    resample_every: int | None = None
    #: no resample from this step on (the set stays fixed: e.g. through a final L-BFGS stage)
    resample_until: int | None = None
    eval_every: int = DEFAULT_EVAL_EVERY
    n_validation: int = DEFAULT_N_VALIDATION
    #: user metrics by import path (``pkg.mod:fn``, ``file.py:fn``), each ``fn(model) -> float``,
    #: reported under the function's name at every evaluation
    metrics: list[str] = field(default_factory=list)
    loss_weights: dict[str, float] = field(default_factory=dict)
    #: a system of PDEs: its equations' weights in the loss, ``{equation: w}`` ...
    equation_weights: dict[str, float] = field(default_factory=dict)
    #: ... and how its residual columns reduce to one score per point: ``l2`` (None: the
    #: default), ``max`` or ``{weights: {equation: w}}`` (glfpinn.training.scores)
    score: str | dict[str, Any] | None = None
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    compile: bool | str = "auto"
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
    def defaults(cls) -> dict[str, Any]:
        """Every setting with its default: what a run whose config.yaml was written before a
        setting existed ran with (a new setting's default keeps the old behaviour)."""
        return cls().to_dict()

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
        cfg.metrics = [absolute_import_path(path) for path in cfg.metrics]
        if cfg.reference is not None:
            path, options = reference_spec(cfg.reference)
            cfg.reference = {"path": path, **options} if options else path
        # the plan, the network's spec and the sampler are built now (cheap: constructors only
        # check and store): names, option keys and values are refused before a run directory
        # is made. A config read from a run directory is read inside plugins.untrusted: a part
        # it names by import path is left unbuilt, for a caller who trusts it to build.
        for build in (cfg.plan, cfg.build_model, cfg.build_sampler, cfg.build_evaluator):
            with contextlib.suppress(UntrustedCodeError):
                build()
        return cfg

    # ------------------------------------------------------------------- the parts
    def build_problem(self) -> Problem:
        """The problem ``problem`` names, built with ``problem_params``, measured against the
        ``reference`` file if one is given (read now: a bad file is a one-line ValueError)."""
        problem = problems.get(self.problem, **self.problem_params)
        if self.reference is not None:
            path, options = reference_spec(self.reference)
            problems.with_reference(problem, path, **options)
        return problem

    def build_sampler(self) -> Sampler:
        """The sampler ``sampler`` names, built with ``sampler_params`` (constructors only
        check and store hyperparameters, so this is cheap)."""
        return samplers.get(self.sampler, **self.sampler_params)

    def plan(self) -> OptimizationPlan:
        """The optimization plan: the stages if given, else the default plan of ``steps``,
        ``lbfgs_steps`` and ``lr`` (one rule: :func:`~glfpinn.training.shortcuts.resolve_plan`),
        then the ``rounds`` if given (with rounds alone, no warm-up: the default plan's
        20,000 Adam steps would be a surprise)."""
        stages = None if self.stages is None else [Stage.from_dict(s) for s in self.stages]
        shortcuts = (self.steps, self.lbfgs_steps, self.lr)
        if self.rounds is None:
            return resolve_plan(stages, *shortcuts)
        warm_up = []
        if stages is not None or shortcuts != (None, None, None):
            warm_up = resolve_plan(stages, *shortcuts).stages
        check_keys("rounds key", self.rounds, ("repeat", "stages"))
        if "repeat" not in self.rounds or not isinstance(self.rounds.get("stages"), list):
            raise ValueError(
                f"rounds={short_repr(self.rounds)} needs repeat: K and stages: [a list of stages]"
            )
        rounds = Rounds([Stage.from_dict(s) for s in self.rounds["stages"]], self.rounds["repeat"])
        return OptimizationPlan(warm_up, rounds=rounds)

    def build_model(self) -> MLPSpec | ModelFactory:
        """The network's spec: the ``model`` factory with ``model_params``, or else the
        built-in MLP of ``hidden``, ``activation`` and the Fourier features."""
        if self.model is None:
            if self.model_params:
                raise ValueError("model_params given without a model")
            return MLPSpec(self.hidden, self.activation, self.fourier_features, self.fourier_scale)
        mlp = [k for k in ("hidden", "activation") if getattr(self, k) is not None]
        mlp += ["fourier_features"] if self.fourier_features else []
        if mlp:
            raise ValueError(
                f"{', '.join(mlp)} describe the built-in MLP; leave them out with model"
            )
        return ModelFactory(self.model, self.model_params)

    def build_evaluator(self) -> Evaluator:
        """The evaluator: ``n_validation`` held-out points and the ``metrics`` by import path."""
        return Evaluator(n_validation=self.n_validation, metrics=metrics_by_name(self.metrics))

    def build_schedule(self) -> Schedule | None:
        """Resampling every ``resample_every`` steps up to ``resample_until``, or None: the
        problem's default."""
        if self.resample_every is None:
            if self.resample_until is not None:
                raise ValueError(
                    f"resample_until={self.resample_until} needs resample_every (the period)"
                )
            return None
        return Every(self.resample_every, stop=self.resample_until)

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
        for name in (
            "problem_params",
            "sampler_params",
            "loss_weights",
            "model_params",
            "equation_weights",
        ):
            need(name, (dict,), "a mapping")
        if self.score is not None:
            check_score(self.score, None)
        for name in ("eval_every", "seed", "n_condition", "score_chunk", "n_validation", "nproc"):
            need(name, (int,), "an integer")
        if self.nproc < 1:
            raise ValueError(f"nproc={short_repr(self.nproc)} must be >= 1")
        if self.resample_until is not None and self.resample_until < 1:
            raise ValueError(f"resample_until={self.resample_until} must be >= 1")
        for name in ("checkpoint_every", "snapshot_every", "fourier_features"):
            need(name, (int,), "an integer")
        for name in ("steps", "lbfgs_steps", "n_points", "resample_every", "resample_until"):
            need(name, (int,), "an integer", optional=True)
        need("lr", (int, float), "a number", optional=True)
        need("fourier_scale", (int, float), "a number")
        need("stages", (list,), "a list of stages", optional=True)
        need("rounds", (dict,), "a mapping {repeat: K, stages: [...]}", optional=True)
        need("metrics", (list,), "a list of import paths like package.module:fn")
        for path in self.metrics:
            if not isinstance(path, str) or not is_import_path(path):
                raise ValueError(
                    f"metrics: {short_repr(path)} must be an import path like package.module:fn "
                    "or path/to/file.py:fn"
                )
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


def load_yaml(
    path: str | os.PathLike, *, what: str = "config file", unique_keys: bool = False
) -> dict[str, Any]:
    """A YAML mapping read with safe loading, the one loader of run configs and bench files;
    empty, malformed, unreadable, oversized or overly nested files, and with ``unique_keys`` a
    key given twice in one mapping, are one-line ValueErrors naming ``what`` the file is."""
    name = f"{what} {short_repr(str(path))}"
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_YAML_BYTES + 1)
    except FileNotFoundError:
        raise ValueError(f"{name} does not exist") from None
    except OSError as err:  # a directory, no permission, a name too long: the user's path
        raise ValueError(f"{name} cannot be read ({err.strerror})") from None
    if len(raw) > MAX_YAML_BYTES:
        raise ValueError(f"{name} is larger than {MAX_YAML_BYTES} bytes")
    try:
        # bytes: PyYAML detects UTF-8/16 and refuses binary itself
        data = yaml_load(raw, unique_keys=unique_keys)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        if isinstance(err, YAMLLimitError):
            raise ValueError(f"{name} {err.problem}{where}") from None
        raise ValueError(f"{name} is not valid YAML{where}") from None
    except _RepeatedKey as err:
        raise ValueError(f"{name} {err}") from None
    except ValueError as err:  # a scalar Python cannot hold: a 5000-digit int, February 30
        raise ValueError(f"{name} holds a value that cannot be read ({err})") from None
    if data is None:
        raise ValueError(f"{name} is empty")
    if not isinstance(data, dict):
        raise ValueError(f"{name} must hold a mapping of keys to values")
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


# ---------------------------------------------------------------------- a trainer's config
def config_of(
    trainer: Trainer, *, checkpoint_every: int = 1000, snapshot_every: int = 0
) -> tuple[dict[str, Any], list[str]]:
    """The config data of ``trainer``, assembled from its parts' ``get_params``, and notes on
    what no config can hold (an ``nn.Module`` instance, a lambda, user metrics): the same
    config.yaml a command-line run of it writes, so ``load_run`` and ``--resume`` rebuild it.

    On K ranks (any rank may call it) the config is the whole run's: ``n_points`` over every
    rank, and ``nproc`` K.
    """
    notes: list[str] = []
    problem_params = _params_of(trainer.problem, "problem_params", notes)
    sampler, sampler_params = _sampler_data(trainer.sampler, notes)
    plan = trainer.plan
    stages = [_stage_data(stage, notes) for stage in plan.stages]
    rounds = None
    if plan.rounds is not None:
        round_stages = [_stage_data(stage, notes) for stage in plan.rounds.stages]
        if all(s is not None for s in round_stages):
            rounds = {"repeat": plan.rounds.repeat, "stages": round_stages}
    evaluator = trainer.evaluator.get_params()
    metrics = _metrics_data(evaluator["metrics"], notes)
    if evaluator["chunk_size"] != DEFAULT_CHUNK:
        notes.append(f"evaluator: chunk_size={evaluator['chunk_size']} has no config key")
    data: dict[str, Any] = {
        "problem": _name_of(trainer.problem, problems.registry, "problem", notes),
        "problem_params": problem_params,
        "reference": _reference_data(trainer.problem),
        "sampler": sampler,
        "sampler_params": sampler_params,
        "stages": stages if stages and all(s is not None for s in stages) else None,
        "rounds": rounds,
        # the whole run's points, on any number of ranks (a rank holds its share)
        "n_points": trainer.strategy.total_points(trainer.state.points),
        "resample_every": _period(trainer.schedule, plan, notes),
        "resample_until": _until(trainer.schedule, plan),
        "eval_every": trainer.eval_every,
        "n_validation": evaluator["n_validation"],
        "metrics": metrics,
        "loss_weights": trainer.training_loss.weights(),
        "equation_weights": trainer.training_loss.equation_weights or None,
        "score": None if trainer.score in (None, "l2") else trainer.score,
        "seed": trainer.seed,
        "device": str(trainer.device),
        "dtype": str(trainer.base_dtype).removeprefix("torch."),
        "compile": trainer.compile,
        **_model_data(trainer.model_spec, notes),
        "n_condition": trainer.n_condition,
        "score_chunk": trainer.scorer.chunk_size,
        "coverage_threshold": trainer.collapse.threshold,
        "checkpoint_every": checkpoint_every,
        "snapshot_every": snapshot_every,
        "nproc": trainer.strategy.world_size,
    }
    return {k: v for k, v in data.items() if v is not None}, notes


def _reference_data(problem: Any) -> str | dict[str, Any] | None:
    """The ``reference`` key of a problem measured against a file, else None."""
    reference = getattr(problem, "reference_file", None)
    return None if reference is None else reference.spec()


def _name_of(part: Any, registry: Any, kind: str, notes: list[str]) -> str | None:
    """A registry name whose factory is ``part``'s class, else the class's import path."""
    cls = type(part)
    name = registry.name_of(cls)
    if name is not None:
        return name
    path = import_path_of(cls)
    if path is None:
        notes.append(f"{kind}: {cls.__qualname__} has no import path (defined inside a function)")
    return path


def _params_of(part: Any, key: str, notes: list[str]) -> dict[str, Any]:
    """``part.get_params()`` if a config can hold it, else ``{}`` and a note."""
    try:
        params = part.get_params()
    except AttributeError as err:
        notes.append(f"{key}: {err}")
        return {}
    if not is_plain_data(params):
        notes.append(f"{key}: {short_repr(params)} are not plain data")
        return {}
    return params


def _sampler_data(sampler: Sampler, notes: list[str]) -> tuple[str | None, dict[str, Any]]:
    if isinstance(sampler, Mix):  # its parts are samplers: each as the mix factory takes it
        parts = []
        for part, fraction in sampler.get_params()["parts"]:
            name, params = _sampler_data(part, notes)
            parts.append({"sampler": name, "fraction": fraction, "params": params})
        return "mix", {"parts": parts}
    params = _params_of(sampler, "sampler_params", notes)
    return _name_of(sampler, samplers.registry, "sampler", notes), params


def _stage_data(stage: Stage, notes: list[str]) -> dict[str, Any] | None:
    """A stage as config data (what :meth:`Stage.from_dict` reads), or None and a note."""
    params = stage.get_params()
    # the defaults stay out: a plain stage's config reads as before
    if params["dtype"] is None:
        del params["dtype"]
    if params["curvature"] == "keep":
        del params["curvature"]
    optimizer, steps = params.pop("optimizer"), params.pop("steps")
    scheduler, scheduler_options = params.pop("scheduler"), params.pop("scheduler_options")
    if not isinstance(optimizer, str | type) or not isinstance(scheduler, str | type(None)):
        notes.append(f"stages: {stage!r} holds objects a config cannot name")
        return None
    out: dict[str, Any] = {"optimizer": stage.name.lower(), "steps": steps, **params}
    if scheduler is not None:
        out["scheduler"] = {"name": scheduler, **scheduler_options}
    if not is_plain_data(out):
        notes.append(f"stages: {stage!r} has options that are not plain data")
        return None
    return out


def metrics_by_name(paths: list[str]) -> dict[str, Any]:
    """User metrics by import path, each under its function's name (``pkg.mod:max_u`` ->
    ``max_u``); two paths ending in the same name are refused."""
    out: dict[str, Any] = {}
    for path in paths:
        name = path.rpartition(":")[2].rpartition(".")[2]
        if name in out:
            raise ValueError(f"metrics: two metrics are named {name!r}; rename one function")
        out[name] = load_object(path, "metric")
    return out


def _metrics_data(metrics: dict[str, Any], notes: list[str]) -> list[str]:
    """The evaluator's metrics as import paths; a metric that no path names again (a lambda,
    a closure, a name other than its function's) is a note."""
    paths = []
    for name, fn in metrics.items():
        path = import_path_of(fn)
        if path is None or path.rpartition(":")[2].rpartition(".")[2] != name:
            notes.append(f"metrics: {name!r} is a Python callable no import path names")
        else:
            paths.append(path)
    return paths


def _period(schedule: Schedule, plan: OptimizationPlan, notes: list[str]) -> int | None:
    """``resample_every``: None when the schedule is the plan's rounds' own."""
    rounds = plan.round_schedule()
    if repr(schedule) == repr(rounds):
        return None
    if isinstance(schedule, Every) and schedule.get_params()["start"] == 0:
        return int(schedule.get_params()["period"])
    notes.append(f"schedule: {schedule!r} is not a resampling period")
    return None


def _until(schedule: Schedule, plan: OptimizationPlan) -> int | None:
    """``resample_until``: the step from which a period schedule stops resampling."""
    if repr(schedule) == repr(plan.round_schedule()) or not isinstance(schedule, Every):
        return None
    return schedule.get_params()["stop"]


def _model_data(spec: Any, notes: list[str]) -> dict[str, Any]:
    """The network's config keys: the built-in MLP's, or a factory's import path."""
    if isinstance(spec, MLPSpec):
        params = spec.get_params()
        hidden = params["hidden"]
        return {**params, "hidden": None if hidden is None else [int(w) for w in hidden]}
    if isinstance(spec, ModelFactory):
        return spec.get_params()
    if callable(spec) and not isinstance(spec, nn.Module):  # a factory given from Python
        factory, params = spec, {}
        if isinstance(spec, functools.partial):
            factory, params = spec.func, dict(spec.keywords)
        path = import_path_of(factory)
        if path is not None and is_plain_data(params):
            return {"model": path, "model_params": params}
    what = f"a {type(spec).__name__} instance" if isinstance(spec, nn.Module) else f"{spec!r}"
    notes.append(
        f"model: {what}; pass model= to load_run (--model to glfpinn plot and predict) "
        "to rebuild the run"
    )
    return {}
