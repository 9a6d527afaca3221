"""The command line: ``glfpinn train | bench | report | plot | predict | list`` (also
``python -m glfpinn``).

Every failure ends with one line on stderr, never a traceback, and an exit status that says
whose it was: 2 for bad input (a value, a file or a path the user gave), 1 for a failure while
running (out of memory, a full disk, a diverged run), 130 for Ctrl-C and 143 for SIGTERM, which
unwinds exactly like Ctrl-C (temporary files removed) while the command runs.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import json
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence
from pathlib import Path
from types import FrameType
from typing import Any

import yaml

from glfpinn._checks import short_repr, shorten
from glfpinn.training.compiling import COMPILE_MODES, SHORT_RUN_STEPS

__all__ = ["main", "Terminated"]

#: The longest error line printed; a longer message keeps its two ends.
MESSAGE_LIMIT = 500

#: File-system errors that come from a path the user gave (exit 2); any other (a full disk, an
#: I/O error) is a failure while running (exit 1).
_BAD_PATH_ERRNOS = frozenset(
    {
        errno.ENOENT,
        errno.ENOTDIR,
        errno.EISDIR,
        errno.ENAMETOOLONG,
        errno.EACCES,
        errno.EPERM,
        errno.EEXIST,
        errno.EROFS,
        errno.ELOOP,
    }
)

#: How allocators word running out of memory (torch's CPU allocator raises a plain
#: RuntimeError: "DefaultCPUAllocator: can't allocate memory" / "not enough memory").
_OUT_OF_MEMORY = ("out of memory", "not enough memory", "can't allocate memory")
_MEMORY_HINT = "lower n_points, n_candidates or score_chunk"

#: Sampler flags that once stood for ``--set sampler_params.NAME=VALUE``: named only so that
#: giving one says where its value goes now (every sampler's hyperparameters go through --set).
_REMOVED_SAMPLER_FLAGS = (
    "alpha",
    "M",
    "eps",
    "k",
    "c",
    "h_max",
    "n_candidates",
    "surrogate",
    "pool",
    "n_add",
    "top_fraction",
    "k_neighbors",
    "replace_fraction",
    "step_size",
    "n_moves",
)


class UsageError(Exception):
    """Bad input from the user: reported in one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # argparse's own errors: one line, status 2
        raise UsageError(message)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="glfpinn", description="PINNs with adaptive collocation sampling")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    train = sub.add_parser("train", help="train one run into a run directory")
    train.add_argument("--config", help="YAML run config; flags below override it")
    train.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="dotted override, e.g. --set sampler_params.alpha=1e-3 (repeatable); a sampler's "
        "hyperparameters go this way",
    )
    train.add_argument("--problem")
    train.add_argument(
        "--reference-file",
        dest="reference",
        metavar="PATH",
        help="measure the run against a reference solution from a file (.npz, .npy, .csv, "
        ".mat, COMSOL .dat/.txt) instead of the problem's own; with options, use --set "
        "reference.path=PATH --set reference.columns=[0,1,3] (docs/problems.md)",
    )
    train.add_argument("--sampler")
    train.add_argument("--steps", type=int, help="Adam steps (the default plan)")
    train.add_argument("--lbfgs-steps", type=int, help="L-BFGS iterations after Adam")
    train.add_argument(
        "--stage",
        dest="stages",
        action="append",
        metavar="OPT:steps=N,...",
        help="an optimizer stage instead of --steps/--lbfgs-steps/--lr (repeatable, in order), "
        "e.g. adamw:steps=2000,lr=1e-3,weight_decay=1e-4,scheduler=cosine then lbfgs:steps=500; "
        "bfgs, ssbfgs and ssbroyden are dense quasi-Newton stages (max_params=...); "
        "dtype=float64 switches the run's precision from that stage on; curvature=reset drops "
        "a quasi-Newton stage's curvature at each resample",
    )
    train.add_argument(
        "--round-stage",
        action="append",
        metavar="OPT:steps=N,...",
        help="a stage of one round (repeatable, in order): after the plan, the round's stages "
        "run --rounds times, a resample at each round's start",
    )
    train.add_argument(
        "--rounds",
        dest="round_repeat",
        type=int,
        help="how many rounds of the --round-stage stages",
    )
    train.add_argument("--seed", type=int)
    train.add_argument("--n-points", type=int, help="interior collocation points N")
    train.add_argument("--resample-every", type=int, help="resampling period T in steps")
    train.add_argument(
        "--resample-until",
        type=int,
        help="no resample from this step on (keep the set fixed, e.g. through L-BFGS)",
    )
    train.add_argument("--lr", type=float)
    train.add_argument("--eval-every", type=int)
    train.add_argument(
        "--coverage-threshold",
        type=float,
        help="warn once when a resample's coverage falls below this, in (0, 1) (default 0.3)",
    )
    train.add_argument(
        "--n-validation",
        type=int,
        help="held-out points for the residual and condition-misfit validation",
    )
    train.add_argument(
        "--metric",
        dest="metrics",
        action="append",
        metavar="PATH",
        help="a metric fn(model) -> float by import path, package.module:fn or "
        "path/to/file.py:fn, reported under the function's name (repeatable)",
    )
    train.add_argument("--hidden", type=_widths, help="hidden layer widths, e.g. 64,64,64")
    train.add_argument("--activation", help="tanh, sin, silu or gelu")
    train.add_argument(
        "--model",
        help="your own network: a factory problem -> nn.Module by import path, "
        "package.module:make or path/to/file.py:make (--set model_params.KEY=V for arguments); "
        "ready-made: glfpinn.nn:residual_mlp, glfpinn.nn:modified_mlp",
    )
    train.add_argument("--fourier-features", type=int, help="random Fourier features (0: none)")
    train.add_argument("--fourier-scale", type=float, help="std of the Fourier frequencies")
    train.add_argument(
        "--loss-weight",
        action="append",
        default=[],
        metavar="TERM=W",
        help="loss weight: residual=W, conditions=W or data=W (an inverse problem's "
        "observations) (repeatable)",
    )
    train.add_argument("--checkpoint-every", type=int)
    train.add_argument("--device", help="cpu, cuda, cuda:1 or auto")
    train.add_argument("--dtype", help="float32 or float64")
    train.add_argument(
        "--compile",
        nargs="?",
        const=True,
        default=None,
        metavar="MODE",
        help="train the compiled step, even a run shorter than "
        f"{SHORT_RUN_STEPS} steps, which trains eagerly by default; MODE: a torch.compile mode "
        f"({', '.join(COMPILE_MODES)})",
    )
    train.add_argument(
        "--no-compile",
        dest="compile",
        action="store_const",
        const=False,
        help="train eagerly: no compile start-up, slower steps",
    )
    train.add_argument("--out", required=True, help="run directory")
    mode = train.add_mutually_exclusive_group()
    mode.add_argument("--resume", action="store_true", help="continue the run in --out")
    mode.add_argument(
        "--overwrite",
        action="store_true",
        help="replace the run in --out (only a folder holding a glfpinn run and nothing else)",
    )
    _trust_flag(train)
    train.add_argument("--quiet", action="store_true", help="no progress bar or info lines")
    train.add_argument(
        "--nproc",
        type=int,
        metavar="K",
        help="train on K processes (data-parallel: N/K points each; K GPUs on CUDA, gloo on the "
        "CPU); torchrun --nproc-per-node K -m glfpinn train ... does the same",
    )

    sub.add_parser("list", help="list problems and samplers")

    bench = sub.add_parser("bench", help="run a grid of runs from a bench YAML (resumable)")
    bench.add_argument("config", help="bench YAML, e.g. configs/quick.yaml")
    bench.add_argument("--out", required=True, help="bench directory")
    bench.add_argument("--executor", default="local", help="local (processes) or ray")
    bench.add_argument("--workers", type=int, help="parallel runs (default: GPUs, else CPU cores)")
    bench.add_argument("--threads-per-worker", type=int, default=1)
    bench.add_argument(
        "--ray-address", help="address of an existing Ray cluster, e.g. 10.0.0.1:6379"
    )
    bench.add_argument(
        "--overwrite",
        action="store_true",
        help="the bench file changed since --out was run: replace the results of cells whose "
        "settings changed or that it no longer has (finished cells it still has are kept)",
    )

    report = sub.add_parser("report", help="results.md, results.csv and plots of a bench directory")
    report.add_argument("dir")
    report.add_argument("--no-plots", action="store_true")
    report.add_argument(
        "--reference",
        default="glf",
        help="sampler label compared with every other one in the verdict (default: glf)",
    )

    plot = sub.add_parser("plot", help="PNG plots of a run directory, or of a bench directory")
    plot.add_argument("dir")
    plot.add_argument("--out", help="folder for the PNGs (default: DIR/plots)")
    _reopen_flags(plot)

    predict = sub.add_parser("predict", help="the trained network at new points")
    predict.add_argument("dir", help="run directory")
    predict.add_argument("--points", required=True, help=".npy or .csv file of points (n, dim)")
    predict.add_argument(
        "--out", required=True, help=".npy or .csv file for u (n,); (n, outputs) for a system"
    )
    _reopen_flags(predict)
    return parser


def _trust_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--trust",
        action="store_true",
        help="import what the run directory's config.yaml names by import path (a problem, "
        "sampler or network in a module or file: code); without it only built-in names are "
        "built from a run directory",
    )


def _reopen_flags(parser: argparse.ArgumentParser) -> None:
    """Flags of the commands that reopen a run directory (plot, predict)."""
    _trust_flag(parser)
    parser.add_argument(
        "--problem",
        help="the run's problem, a registry name or import path, built with the run's "
        "problem_params instead of the one config.yaml names (needs no --trust)",
    )
    parser.add_argument(
        "--model",
        help="the run's network, a factory problem -> nn.Module by import path, where "
        "config.yaml could not record it (a network given as an instance; needs no --trust)",
    )


def _widths(text: str) -> list[int]:
    try:
        widths = [int(w) for w in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{short_repr(text)} is not a list of widths like 64,64,64"
        ) from None
    return widths


def _train_config(args: argparse.Namespace) -> Any:
    from glfpinn.config import RunConfig

    return RunConfig.from_dict(_given_settings(args))


def _given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The run settings the flags, --config and --set give, without defaults: a new run's
    config, or what a resume is asked to change. A flag whose destination is a config key
    (``--n-points`` -> ``n_points``) sets that key; no list of flags is kept here."""
    from glfpinn.config import RunConfig, apply_overrides, load_yaml, parse_assignment

    data: dict[str, Any] = load_yaml(args.config) if args.config else {}
    direct = {
        f.name: getattr(args, f.name)
        for f in dataclasses.fields(RunConfig)
        if getattr(args, f.name, None) is not None
    }
    if "stages" in direct:  # stages on the command line replace the file's plan, whichever
        direct["stages"] = [parse_stage(text) for text in direct["stages"]]
        for key in ("steps", "lbfgs_steps", "lr"):
            data.pop(key, None)
    data.update(direct)
    rounds = _given_rounds(args, data.get("rounds"))
    if rounds is not None:
        data["rounds"] = rounds
    if args.loss_weight:
        weights = dict(data.get("loss_weights") or {})
        for item in args.loss_weight:
            term, value = parse_assignment(item, "--loss-weight TERM=number")
            weights[term] = value
        data["loss_weights"] = weights
    return apply_overrides(data, args.set)


def _given_rounds(args: argparse.Namespace, rounds: Any) -> Any:
    """``rounds`` with --round-stage (replacing the file's round) and --rounds applied."""
    stages, repeat = getattr(args, "round_stage", None), getattr(args, "round_repeat", None)
    if stages is None and repeat is None:
        return rounds
    out = dict(rounds) if isinstance(rounds, dict) else {}
    if stages is not None:
        out["stages"] = [parse_stage(text) for text in stages]
    if repeat is not None:
        out["repeat"] = repeat
    if "stages" not in out or "repeat" not in out:
        raise ValueError("--rounds and --round-stage go together (or complete a config's rounds)")
    return out


def parse_stage(text: str) -> dict[str, Any]:
    """A stage written on the command line, ``NAME:key=value,...``, as config data.

    ``adamw:steps=2000,lr=1e-3,scheduler=cosine,scheduler.eta_min=1e-5`` becomes
    ``{optimizer: adamw, steps: 2000, lr: 0.001, scheduler: {name: cosine, eta_min: 1e-05}}``;
    values are YAML scalars, ``scheduler.*`` keys are the scheduler's options.
    """
    from glfpinn.config import parse_assignment

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


def _refuse_removed_flags(argv: Sequence[str]) -> None:
    """A removed sampler flag (``--alpha 1e-3``) is one line pointing at --set, not argparse's
    "unrecognized arguments" (or, for ``--c``, "ambiguous option")."""
    if not argv or argv[0] != "train":
        return
    for token in argv[1:]:
        if token == "--":
            return
        flag = token.partition("=")[0]
        for name in _REMOVED_SAMPLER_FLAGS:
            if flag in (f"--{name}", f"--{name.replace('_', '-')}"):
                raise UsageError(
                    f"{flag} was removed; give a sampler's hyperparameters with "
                    f"--set sampler_params.{name}=VALUE"
                )


def _cmd_train(args: argparse.Namespace) -> int:
    from glfpinn._io import json_line
    from glfpinn.runs import run
    from glfpinn.runs.directory import run_path
    from glfpinn.training import Interrupted, NonFiniteLossError

    mode = "resume" if args.resume else "overwrite" if args.overwrite else "new"
    run_path(args.out)  # '' is refused before anything reads or launches
    world_size = _world_size(args.nproc)
    group = None
    orderly = False  # every rank ended the same way: they leave the group together
    info = None if args.quiet else _InfoLines()  # with the progress bar: a short run's eager
    try:
        # a resume takes the stored config, with what the flags may change (steps, ...)
        cfg = None if args.resume else _train_config(args)
        if world_size == 1:
            nproc = _nproc(args, cfg)
            if nproc > 1:  # this process launches the ranks, which run this same command
                from glfpinn.distributed import launch
                from glfpinn.runs.directory import check_mode

                # a bad K or directory: one line, before K interpreters start
                _check_ranks(args, cfg, nproc)
                check_mode(Path(args.out), mode)
                return launch(args.argv, nproc)  # each rank finds K in WORLD_SIZE
        else:
            from glfpinn.distributed import init_from_env

            _tie_to_launcher()
            group = init_from_env(_device(args, cfg))
        changes = _given_settings(args) if args.resume else None
        result = run(
            cfg,
            args.out,
            mode=mode,
            progress=not args.quiet,
            changes=changes,
            group=group,
            trust=args.trust,
        )
        orderly = True
    except Interrupted:  # every rank stopped after the same step
        orderly = True
        raise
    except NonFiniteLossError as err:
        print(f"{_name()}: training stopped: {err}", file=sys.stderr)
        return 1
    finally:
        if group is not None and orderly:  # rank 0 has written the run's last files: all
            # leave together, and glfpinn/__main__.py ends the process at once (destroying
            # gloo's objects, in destroy_process_group or at exit, could abort a rank whose
            # run succeeded)
            group.barrier()
        elif group is not None:
            group.close()
        if info is not None:
            info.close()
    if group is not None and not group.is_main:
        return 0  # rank 0 prints the result
    keys = (
        "problem",
        "sampler",
        "steps",
        "l2_relative_error",
        "residual_mean",
        "wall_time_s",
        "sampling_time_s",
        "residual_evals",
        "peak_memory_mb",
    )
    summary = {k: result.get(k) for k in keys}
    for key in ("condition_misfit", "unknowns"):  # soft conditions; an inverse problem's
        if result.get(key):
            summary[key] = result[key]
    print(json_line(summary))
    return 0


def _world_size(nproc: int | None) -> int:
    """The ranks this process belongs to (torchrun's ``WORLD_SIZE``; 1 when not launched),
    checked against ``--nproc``."""
    if nproc is not None and nproc < 1:
        raise ValueError(f"--nproc={nproc} must be >= 1")
    if "WORLD_SIZE" not in os.environ:
        return 1  # not launched: a single process imports nothing distributed
    from glfpinn.distributed import world_size_from_env

    world_size = world_size_from_env()
    if world_size > 1 and nproc not in (None, 1, world_size):
        raise ValueError(
            f"--nproc={nproc} given to a process that torchrun started as one of "
            f"WORLD_SIZE={world_size}; give one or the other"
        )
    return world_size


def _check_ranks(args: argparse.Namespace, cfg: Any, nproc: int) -> None:
    """``--nproc K`` against the machine and the run, in the one process that would start the
    K ranks: more CUDA ranks than cards, or a training set the ranks cannot share (a new run's:
    a resume's was checked when it started), is refused; more CPU ranks than cores is warned
    about (they run, but contend for the cores, each rank a whole interpreter)."""
    if cfg is not None:
        from glfpinn.distributed.sharding import check_split

        problem = cfg.build_problem()
        n_points = cfg.n_points or problem.run_default("n_points")
        check_split(n_points, nproc, cfg.build_sampler().resamples_per_rank())
    device = _device(args, cfg)
    if device == "auto":
        import torch

        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        import torch

        cards = torch.cuda.device_count()
        if nproc > cards:
            raise ValueError(
                f"--nproc {nproc} on cuda but this machine has {cards} CUDA devices; "
                "start at most one rank per card"
            )
    elif nproc > (os.cpu_count() or 1):
        warnings.warn(
            f"--nproc {nproc} starts {nproc} ranks on {os.cpu_count()} CPU cores; they will "
            "contend for them (each rank is a whole Python process): give at most "
            f"{os.cpu_count()}",
            RuntimeWarning,
            stacklevel=2,
        )


def _tie_to_launcher() -> None:
    """A rank that ``--nproc`` started dies with its launcher, however the launcher ends
    (SIGKILL included): an orphan would go on training and writing the run directory."""
    from glfpinn._lifeline import PARENT_ENV, die_with_parent, watch_parent

    parent = os.environ.get(PARENT_ENV, "")
    if parent.isdigit():
        die_with_parent(int(parent))
        watch_parent(int(parent), _WATCH_LAUNCHER_S)


#: Seconds between a rank's checks that its launcher lives (where the kernel cannot watch).
_WATCH_LAUNCHER_S = 0.5


def _nproc(args: argparse.Namespace, cfg: Any) -> int:
    """The ranks a run not yet launched asks for: --nproc, else its config's (the stored one
    on a resume)."""
    if args.nproc is not None:
        return int(args.nproc)
    if cfg is not None:
        return int(cfg.nproc)
    from glfpinn.runs.directory import CONFIG, read_config

    stored = Path(args.out) / CONFIG
    return read_config(args.out).nproc if stored.exists() else 1


def _device(args: argparse.Namespace, cfg: Any) -> str:
    """The device a rank joins its group on: the config's (the stored one on a resume, which
    each rank reads unless ``--device`` names it), a numbered card as its type (each rank takes
    ``cuda:LOCAL_RANK``, so a run trained on cuda:0 resumes on K cards)."""
    if cfg is not None:
        name = str(cfg.device)
    elif args.device is not None:
        name = str(args.device)
    else:
        from glfpinn.runs.directory import read_config

        name = read_config(args.out).device
    return name.split(":")[0]


def _cmd_list(args: argparse.Namespace) -> int:
    from glfpinn import problems, samplers

    print("problems:")
    for name in problems.names():
        print(f"  {name:<24} {problems.describe(name)}")
    print("samplers:")
    for name in samplers.names():
        print(f"  {name:<24} {samplers.describe(name)}")
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from glfpinn.bench import load_bench, run_bench

    bench = load_bench(args.config)
    if args.workers is not None and args.workers < 1:
        raise ValueError(f"--workers={args.workers} must be >= 1")
    if args.threads_per_worker < 1:
        raise ValueError(f"--threads-per-worker={args.threads_per_worker} must be >= 1")
    counts = run_bench(
        bench,
        args.out,
        executor=args.executor,
        workers=args.workers,
        threads_per_worker=args.threads_per_worker,
        ray_address=args.ray_address,
        source=str(args.config),
        overwrite=args.overwrite,
    )
    print(json.dumps(counts))
    return 1 if counts["failed"] else 0


def _cmd_report(args: argparse.Namespace) -> int:
    from glfpinn.bench import write_plots, write_report

    if not args.no_plots:
        write_plots(args.dir)
    command = f"glfpinn report {args.dir}"
    if args.reference != "glf":
        command += f" --reference {args.reference}"
    print(write_report(args.dir, command=command, reference=args.reference))
    return 0


def _cmd_plot(args: argparse.Namespace) -> int:
    from pathlib import Path

    from glfpinn.runs import CONFIG

    if not Path(args.dir).is_dir():  # else a bench's plots of nothing: no output, status 0
        raise ValueError(f"{short_repr(args.dir)} is not a run or bench directory")
    if (Path(args.dir) / CONFIG).exists():
        from glfpinn.runs.plots import plot_run

        paths = plot_run(args.dir, args.out, trust=args.trust, **_given_parts(args))
    else:
        from glfpinn.bench import write_plots

        given = [flag for flag in ("out", "problem", "model") if getattr(args, flag)]
        if given:
            raise ValueError(
                f"--{given[0]} applies to a run directory; a bench's plots go into DIR/plots"
            )
        paths = write_plots(args.dir)
    for path in paths:
        print(path)
    return 0


def _cmd_predict(args: argparse.Namespace) -> int:
    from glfpinn._points import read_points, write_values
    from glfpinn.runs import load_run

    run = load_run(args.dir, trust=args.trust, **_given_parts(args))
    write_values(args.out, run.predict(read_points(args.points, run.problem.dim)))
    print(args.out)
    return 0


def _given_parts(args: argparse.Namespace) -> dict[str, Any]:
    """The problem and network ``--problem`` and ``--model`` name for reopening the run in
    ``args.dir``, built with the run's parameters: named by the user, they need no --trust."""
    from glfpinn.runs import CONFIG, read_config

    if not (args.problem or args.model) or not (Path(args.dir) / CONFIG).exists():
        return {}  # without a run, load_run says so
    from glfpinn import problems
    from glfpinn.plugins import absolute_import_path
    from glfpinn.training.network import ModelFactory

    cfg = read_config(args.dir)
    parts: dict[str, Any] = {}
    if args.problem:
        parts["problem"] = problems.get(args.problem, **cfg.problem_params)
        if cfg.reference is not None:  # the file the run was measured against
            from glfpinn.problems.reference.files import reference_spec

            path, options = reference_spec(cfg.reference)
            problems.with_reference(parts["problem"], path, **options)
    if args.model:
        same = absolute_import_path(args.model) == cfg.model
        parts["model"] = ModelFactory(args.model, cfg.model_params if same else None)
    return parts


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised wherever the program is, so it unwinds like Ctrl-C: every ``finally`` and
    ``except BaseException`` runs (atomic writes remove their temporary file) on the way out."""


def _raise_terminated(signum: int, frame: FrameType | None) -> None:
    raise Terminated


def _name() -> str:
    """The program's name on stderr; a rank other than 0 of a data-parallel run says which it
    is, so K ranks' lines can be told apart."""
    rank = os.environ.get("RANK", "0") if "WORLD_SIZE" in os.environ else "0"
    return "glfpinn" if rank == "0" else f"glfpinn[rank {rank}]"


def _say(prefix: str, message: object) -> None:
    """One line on stderr, however long or multi-line the message."""
    text = " ".join(str(message).split()) or type(message).__name__
    print(shorten(f"{_name()}: {prefix}: {text}", MESSAGE_LIMIT), file=sys.stderr)


#: glfpinn's own source folder: deprecations raised elsewhere are other libraries' business
_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as one whole line on stderr (``glfpinn: warning: ...``), without the source
    line Python adds: a collapse or compile warning is read by a user, not a developer.

    A deprecation that another library raises about its own API (torch's ``torch.jit`` when a
    checkpoint is read, say) is dropped: a user of the CLI can do nothing about it, and Python
    hides it too unless warnings are turned on (as pytest does, which then printed it as
    glfpinn's own warning, a dozen times)."""
    if issubclass(category, (DeprecationWarning, PendingDeprecationWarning)) and not (
        os.path.abspath(str(filename)).startswith(_PACKAGE_DIR + os.sep)
    ):
        return
    text = " ".join(str(message).split())
    print(f"{_name()}: warning: {text}", file=sys.stderr if file is None else file)


class _InfoLines(logging.Handler):
    """glfpinn's info lines (logger ``glfpinn``: a short run training eagerly, a dense
    quasi-Newton stage's memory) as ``glfpinn: MESSAGE`` on stderr while a run trains, as its
    progress bar is (not with ``--quiet``); Python callers see them only if they configure
    logging."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self._logger = logging.getLogger("glfpinn")
        self._level = self._logger.level
        self._logger.addHandler(self)
        if self._logger.getEffectiveLevel() > logging.INFO:
            self._logger.setLevel(logging.INFO)

    def emit(self, record: logging.LogRecord) -> None:
        print(f"{_name()}: {record.getMessage()}", file=sys.stderr)

    def close(self) -> None:
        self._logger.removeHandler(self)
        self._logger.setLevel(self._level)
        super().close()


def _os_error(err: OSError) -> int:
    where = f"{short_repr(err.filename)}: " if err.filename is not None else ""
    bad_path = err.errno in _BAD_PATH_ERRNOS
    _say("error" if bad_path else "failed", f"{where}{err.strerror or err}")
    return 2 if bad_path else 1


def _out_of_memory(err: BaseException) -> bool:
    torch = sys.modules.get("torch")  # not imported: the error cannot be torch's
    if torch is not None and isinstance(err, torch.OutOfMemoryError):
        return True
    return isinstance(err, RuntimeError) and any(s in str(err) for s in _OUT_OF_MEMORY)


def main(argv: Sequence[str] | None = None) -> int:
    commands = {
        "train": _cmd_train,
        "list": _cmd_list,
        "bench": _cmd_bench,
        "report": _cmd_report,
        "plot": _cmd_plot,
        "predict": _cmd_predict,
    }
    # Python installs signal handlers only from the main thread; main() called from another
    # thread (a test, an embedding program) leaves SIGTERM to its host.
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    show_warning, warnings.showwarning = warnings.showwarning, _show_warning
    try:
        given = list(sys.argv[1:] if argv is None else argv)
        _refuse_removed_flags(given)
        args = _parser().parse_args(given)
        args.argv = given  # the command line as given: --nproc starts its ranks with it
        return commands[args.command](args)
    except KeyboardInterrupt as err:
        # The trainer defers a signal to the end of its step and raises its own
        # KeyboardInterrupt carrying ``signum``; anywhere else SIGTERM raises Terminated.
        if isinstance(err, Terminated) or getattr(err, "signum", None) == signal.SIGTERM:
            print(f"{_name()}: terminated", file=sys.stderr)
            return 143
        print(f"{_name()}: interrupted", file=sys.stderr)
        return 130
    except (UsageError, ValueError, TypeError, yaml.YAMLError) as err:
        _say("error", err)
        return 2
    except OSError as err:
        return _os_error(err)
    except MemoryError:
        _say("out of memory", _MEMORY_HINT)
        return 1
    except Exception as err:  # whatever else went wrong while running: still one line
        if _out_of_memory(err):
            _say("out of memory", f"{err}; {_MEMORY_HINT}")
        else:
            _say("failed", f"{type(err).__name__}: {err}")
        return 1
    finally:
        warnings.showwarning = show_warning
        if on_main_thread:
            # None: the previous handler was not Python's; the default is the closest match.
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
