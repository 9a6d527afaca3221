import json
import math
import os
import subprocess
import sys

import pytest
import torch
import yaml

from glfpinn.cli import main

CONTRACT = {
    "problem",
    "sampler",
    "seed",
    "steps",
    "l2_relative_error",
    "wall_time_s",
    "sampling_time_s",
    "residual_evals",
    "peak_memory_mb",
    "device",
    "glfpinn_version",
    "torch_version",
}
SMALL = [
    "--steps",
    "40",
    "--n-points",
    "200",
    "--resample-every",
    "20",
    "--eval-every",
    "20",
    "--quiet",
    "--set",
    "hidden=[16, 16]",
]


@pytest.mark.parametrize("sampler", ["glf", "rad"])
def test_train_writes_the_contracts_files(tmp_path, sampler):
    out = tmp_path / "run"
    extra = ["--set", "sampler_params.n_candidates=2000"] if sampler == "rad" else []
    assert (
        main(
            [
                "train",
                "--problem",
                "allen-cahn",
                "--sampler",
                sampler,
                "--out",
                str(out),
                *SMALL,
                *extra,
            ]
        )
        == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert result.keys() >= CONTRACT
    assert result["steps"] == 40 and result["sampler"] == sampler
    # the thread count a CPU run repeats itself at (docs/reliability.md, "Randomness")
    assert result["cpu_threads"] == torch.get_num_threads()
    assert (result["residual_evals"] == 2000) == (sampler == "rad")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if x["event"] == "eval"]
    assert [x["step"] for x in evals] == [20, 40]
    assert {"step", "loss", "l2_relative_error", "elapsed_s"} <= evals[0].keys()
    assert any(x["event"] == "resample" for x in lines)
    assert (out / "config.yaml").exists() and (out / "checkpoint.pt").exists()


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "glfpinn", *args], capture_output=True, text=True)


def _cli_in_process(args, cwd, capsys, monkeypatch):
    """``glfpinn ARGS`` run by main() in this process, from ``cwd``: its exit status (argparse's
    own errors leave by SystemExit) and what it wrote to stderr. A subprocess per case would
    cost an interpreter and a torch import (about 2.5 s) to test the same code."""
    monkeypatch.chdir(cwd)
    capsys.readouterr()
    try:
        code = main(args)
    except SystemExit as stop:
        code = stop.code
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--problem", "allen-kahn", "--out", "x"], "did you mean 'allen-cahn'"),
        (["train", "--sampler", "glff", "--out", "x"], "allowed: "),
        (["train", "--steps", "0", "--out", "x"], "steps=0"),
        (["train", "--set", "sampler_params.alpha=-1.0", "--out", "x"], "alpha=-1.0"),
        (
            ["train", "--sampler", "rad", "--set", "sampler_params.alpha=1e-3", "--out", "x"],
            "alpha",
        ),
        (
            ["train", "--alpha", "1e-3", "--out", "x"],
            "--alpha was removed; give a sampler's hyperparameters with "
            "--set sampler_params.alpha=VALUE",
        ),
        (["train", "--c", "2", "--out", "x"], "--set sampler_params.c=VALUE"),
        (["train", "--n-candidates=5", "--out", "x"], "--set sampler_params.n_candidates=VALUE"),
        (["train", "--M", "3", "--out", "x"], "--set sampler_params.M=VALUE"),
        (["train", "--set", "stepz=3", "--out", "x"], "did you mean 'steps'"),
        (["train", "--device", "cuda", "--out", "x"], "CUDA is not available"),
        (["train", "--stage", "adamw", "--out", "x"], "needs an optimizer and steps"),
        (["train", "--stage", "adamw:steps=5,lr=1e-3,wd=1", "--out", "x"], "option 'wd'"),
        (["train", "--stage", "adam:steps=5,scheduler=cosin", "--out", "x"], "'cosin' is unknown"),
        (["train", "--loss-weight", "boundary=2", "--out", "x"], "loss term 'boundary'"),
        (["train", "--loss-weight", "residual", "--out", "x"], "must look like key=value"),
        (["train", "--activation", "relu", "--out", "x"], "activation='relu' is unknown"),
        (["train", "--hidden", "64,x", "--out", "x"], "not a list of widths"),
        (["train", "--model", "nosuchmod:make", "--out", "x"], "no module named 'nosuchmod'"),
        (["train", "--model", "glfpinn:MLP", "--hidden", "8", "--out", "x"], "built-in MLP"),
        (["train", "--coverage-threshold", "0", "--out", "x"], "coverage_threshold=0.0"),
        (["train", "--coverage-threshold", "1.5", "--out", "x"], "must be a number in (0, 1)"),
        (
            ["train", "--sampler", "glf-robust", "--set", "sampler_params.explore=1", "--out", "x"],
            "explore=1 is not allowed",
        ),
        (
            ["train", "--sampler", "glf", "--set", "sampler_params.explore=-0.1", "--out", "x"],
            "explore=-0.1",
        ),
        (
            ["train", "--sampler", "settle", "--set", "sampler_params.overfit=0.5", "--out", "x"],
            "overfit=0.5 must be a number above 1",
        ),
        (
            ["train", "--sampler", "follow", "--set", "sampler_params.low=0.7", "--out", "x"],
            "low=0.7 must be below high=0.6",
        ),
        (["train", "--stage", "ssbroyden:steps=5,dtype=float16", "--out", "x"], "'float16'"),
        (["train", "--stage", "ssbroyden:steps=5,momentum=0.9", "--out", "x"], "'momentum'"),
        (
            ["train", "--stage", "bfgs:steps=5,max_params=10", "--out", "x"],
            "above max_params=10",
        ),
        (["train", "--rounds", "3", "--out", "x"], "--rounds and --round-stage go together"),
        (["train", "--metric", "glfpinn.ops:laplacan", "--out", "x"], "did you mean 'laplacian'"),
        (["train", "--metric", "u_mid", "--out", "x"], "must be an import path"),
        (["train", "--problem", "glfpinn.problems:Burger", "--out", "x"], "did you mean 'Burgers'"),
        (
            ["train", "--model", "glfpinn:MLP", "--steps", "1", "--out", "x"],
            "is an nn.Module class, built as MLP(**model_params)",
        ),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(
    tmp_path, capsys, monkeypatch, args, fragment
):
    code, err = _cli_in_process(args, tmp_path, capsys, monkeypatch)
    assert code == 2, err
    assert fragment in _one_line(err)


def test_the_installed_command_exits_2_with_one_line_on_bad_input(tmp_path):
    # the cases above call main() in this process; this one runs what a shell runs, once per
    # kind of error: one of glfpinn's own, one of argparse's
    for args, fragment in [
        (["train", "--steps", "0", "--out", "x"], "steps=0"),
        (["bogus"], "invalid choice"),
    ]:
        proc = subprocess.run(
            [sys.executable, "-m", "glfpinn", *args], capture_output=True, text=True, cwd=tmp_path
        )
        assert proc.returncode == 2, proc.stderr
        assert fragment in _one_line(proc.stderr)


def test_existing_output_is_refused_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *SMALL]) == 0
    assert main(["train", "--out", str(out), *SMALL]) == 2
    assert main(["train", "--out", str(out), "--overwrite", *SMALL]) == 0
    # A finished run resumes to its stored result without training again.
    assert main(["train", "--out", str(out), "--resume", "--quiet"]) == 0


def test_yaml_config_with_dotted_overrides(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "problem: allen-cahn\nsampler: glf\nsteps: 20\nn_points: 100\n"
        "sampler_params: {M: 2}\nhidden: [8, 8]\neval_every: 10\n"
    )
    out = tmp_path / "run"
    assert (
        main(
            [
                "train",
                "--config",
                str(cfg),
                "--set",
                "sampler_params.alpha=0.001",
                "--out",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads((out / "result.json").read_text())
    assert "M=2, alpha=0.001" in result["sampler_repr"] and result["steps"] == 20


@pytest.mark.parametrize(
    "text, fragment", [("", "empty"), ("steps: [1\n", "not valid YAML"), ("- a\n- b\n", "mapping")]
)
def test_malformed_yaml_is_a_clear_error(tmp_path, capsys, text, fragment):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    assert main(["train", "--config", str(cfg), "--out", str(tmp_path / "r")]) == 2
    assert fragment in capsys.readouterr().err


def test_list_names_every_problem_and_sampler(capsys):
    from tests.helpers import ALL_PROBLEMS, ALL_SAMPLERS

    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ALL_PROBLEMS + ALL_SAMPLERS)


@pytest.mark.parametrize(
    ("flags", "recorded"),
    [
        ([], "compile: auto"),  # compiled by default, unless the run is short
        (["--compile"], "compile: true"),
        (["--compile", "max-autotune-no-cudagraphs"], "compile: max-autotune-no-cudagraphs"),
        (["--no-compile"], "compile: false"),
    ],
)
def test_compile_flags_train_and_are_recorded(tmp_path, flags, recorded):
    out = tmp_path / "run"
    args = ["train", "--problem", "burgers", "--sampler", "glf", "--out", str(out), *flags]
    assert main([*args, *SMALL]) == 0
    assert recorded in (out / "config.yaml").read_text().splitlines()
    assert json.loads((out / "result.json").read_text())["steps"] == 40


@pytest.mark.parametrize(
    ("flags", "told"), [([], True), (["--compile"], False), (["--quiet"], False)]
)
def test_a_short_run_trains_eagerly_by_default_and_says_so_in_one_line(
    tmp_path, capsys, flags, told
):
    """... beside the progress bar, which --quiet silences with it."""
    out = tmp_path / "run"
    args = ["train", "--problem", "burgers", "--out", str(out), *SMALL[:-3], *SMALL[-2:]]
    assert main([*args, *flags]) == 0
    lines = capsys.readouterr().err.splitlines()
    said = [line for line in lines if "training eagerly" in line]
    if told:
        assert said == [
            "glfpinn: training eagerly: 40 steps are fewer than the 500 that compiling needs to "
            "pay for its start-up (--compile or compile=True compiles anyway)"
        ]
    else:
        assert not said


def test_an_unknown_compile_mode_is_one_line_and_exit_2(tmp_path, capsys):
    args = ["train", "--problem", "burgers", "--out", str(tmp_path / "r"), "--compile", "fast"]
    assert main([*args, *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "compile='fast' must be 'auto', true, false or a mode" in err


def _strict_json(text):
    def refuse(constant):
        raise ValueError(f"{constant} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_adamw_with_a_cosine_schedule_then_lbfgs_from_the_command_line(tmp_path):
    import torch

    out = tmp_path / "run"
    stages = ["--stage", "adamw:steps=30,lr=1e-2,weight_decay=1e-4,scheduler=cosine"]
    stages += ["--stage", "lbfgs:steps=10"]
    args = ["train", "--problem", "burgers", "--out", str(out), *stages, *SMALL[2:]]
    assert main(args) == 0
    result = _strict_json((out / "result.json").read_text())
    assert result["steps"] == 40
    assert [s["optimizer"] for s in result["stages"]] == ["AdamW", "LBFGS"]
    assert result["stages"][0]["scheduler"] == "CosineAnnealingLR"
    state = torch.load(out / "checkpoint.pt", weights_only=True)
    adamw, lbfgs = state["optimizers"]
    assert adamw["param_groups"][0]["lr"] == pytest.approx(0.0, abs=1e-12)  # cosine ran out
    assert next(iter(lbfgs["state"].values()))["n_iter"] == 10
    assert "scheduler:" in (out / "config.yaml").read_text()


def test_rounds_with_a_float64_quasi_newton_stage_from_the_command_line(tmp_path, capsys):
    import yaml

    out = tmp_path / "run"
    plan = ["--stage", "adam:steps=10,lr=1e-2", "--rounds", "2"]
    plan += ["--round-stage", "adam:steps=4", "--round-stage", "ssbfgs:steps=3,dtype=float64"]
    small = ["--n-points", "200", "--eval-every", "10", "--set", "hidden=[16, 16]"]
    assert main(["train", "--problem", "burgers", "--out", str(out), *plan, *small]) == 0
    assert "a dense inverse Hessian of" in capsys.readouterr().err  # said before training
    result = _strict_json((out / "result.json").read_text())
    assert result["steps"] == 10 + 2 * 7 and result["dtype"] == "float64"
    config = yaml.safe_load((out / "config.yaml").read_text())
    assert config["dtype"] == "float32"  # the run's own; the stage switches it
    assert config["rounds"]["repeat"] == 2 and config.get("resample_every") is None
    assert config["rounds"]["stages"][1] == {"optimizer": "ssbfgs", "steps": 3, "dtype": "float64"}


def test_yaml_config_with_training_parts(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        """problem: laplace
sampler: mix
sampler_params:
  parts:
    - {sampler: glf, fraction: 0.8, params: {alpha: 1e-3}}
    - {sampler: uniform-resample, fraction: 0.2}
stages:
  - {optimizer: adamw, steps: 20, lr: 1e-2, scheduler: {name: cosine, eta_min: 1e-4}}
  - {optimizer: lbfgs, steps: 5}
hidden: [8, 8]
activation: silu
fourier_features: 4
loss_weights: {conditions: 5.0}
n_points: 100
n_validation: 64
eval_every: 5
resample_every: 10
"""
    )
    out = tmp_path / "run"
    assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    result = _strict_json((out / "result.json").read_text())
    assert result["steps"] == 25 and result["sampler_repr"].startswith("Mix(parts=[(GLF(")
    assert result["resamples"] == 2 and result["l2_relative_error"] is not None


def test_a_problem_without_a_reference_trains_from_the_command_line(tmp_path, monkeypatch):
    from glfpinn import problems
    from tests.helpers import Poisson1DNoReference

    monkeypatch.setitem(
        problems._registry._entries, "poisson-no-ref", (Poisson1DNoReference, "test problem")
    )
    out = tmp_path / "run"
    args = ["train", "--problem", "poisson-no-ref", "--out", str(out), "--set", "snapshot_every=20"]
    assert main([*args, "--lr", "1e-2", *SMALL]) == 0
    for path in out.rglob("*.json*"):  # every JSON file the run wrote parses strictly
        for line in (
            path.read_text().splitlines() if path.suffix == ".jsonl" else [path.read_text()]
        ):
            _strict_json(line)
    result = _strict_json((out / "result.json").read_text())
    assert result["l2_relative_error"] is None and result["initial_l2_relative_error"] is None
    assert 0 < result["residual_mean"] <= result["residual_max"]
    evals = [_strict_json(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in evals if x["event"] == "eval"]
    assert [x["l2_relative_error"] for x in evals] == [None, None]
    assert all(x["residual_mean"] > 0 for x in evals)
    assert not (out / "prediction.npz").exists()  # nothing to compare against


SEQUENTIAL_FACTORY = """
import torch


def sequential(problem, width=16):
    return torch.nn.Sequential(
        torch.nn.Linear(problem.dim, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, width),
        torch.nn.Tanh(),
        torch.nn.Linear(width, 1),
    )
"""


def test_an_nn_sequential_from_a_yaml_config_trains_on_the_fast_path(tmp_path):
    import warnings

    import torch

    (tmp_path / "nets.py").write_text(SEQUENTIAL_FACTORY)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"problem: reaction-diffusion-20d\nproblem_params: {{space_dim: 3}}\nsampler: glf\n"
        f"model: {tmp_path / 'nets.py'}:sequential\nmodel_params: {{width: 12}}\n"
        "steps: 20\nn_points: 128\nn_condition: 64\neval_every: 10\n"
    )
    out = tmp_path / "run"
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the generic-path warning fails the test
        assert main(["train", "--config", str(cfg), "--out", str(out), "--quiet"]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert state["0.weight"].shape == (12, 4)  # the Sequential, 12 wide, on (x_1..x_3, t)
    result = _strict_json((out / "result.json").read_text())
    assert result["steps"] == 20 and result["l2_relative_error"] is not None


@pytest.mark.parametrize(
    ("factory", "layer"), [("residual_mlp", "inp"), ("modified_mlp", "gates.0")]
)
def test_the_ready_made_networks_train_from_the_command_line_on_the_fast_path(
    tmp_path, factory, layer
):
    import warnings

    import torch

    out = tmp_path / "run"
    args = ["train", "--problem", "burgers", "--model", f"glfpinn.nn:{factory}"]
    args += ["--set", "model_params.width=8", "--set", "model_params.depth=1", "--out", str(out)]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # the generic-path warning fails the test
        assert main([*args, *SMALL[:-2]]) == 0  # SMALL without its MLP widths
    assert f"model: glfpinn.nn:{factory}" in (out / "config.yaml").read_text()
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert state[f"net.{layer}.weight"].shape[0] == 8  # in burgers' hard constraint


def test_a_model_factory_from_the_command_line_is_seeded_by_the_run(tmp_path):
    import torch

    (tmp_path / "nets.py").write_text(SEQUENTIAL_FACTORY)
    spec = f"{tmp_path / 'nets.py'}:sequential"
    args = ["--problem", "burgers", "--model", spec, "--steps", "20", "--n-points", "100"]
    args += ["--eval-every", "10", "--quiet"]
    before = torch.random.get_rng_state()
    results = []
    for name, seed in (("a", "0"), ("b", "0"), ("c", "1")):
        assert main(["train", *args, "--seed", seed, "--out", str(tmp_path / name)]) == 0
        results.append(_strict_json((tmp_path / name / "result.json").read_text()))
    assert torch.equal(before, torch.random.get_rng_state())  # the factory ran on a forked RNG
    assert results[0]["final_loss"] == results[1]["final_loss"] != results[2]["final_loss"]
    state = torch.load(tmp_path / "a" / "checkpoint.pt", weights_only=True)["model"]
    assert "net.0.weight" in state  # burgers wrapped the Sequential in its hard constraint


def test_plot_draws_a_run_directory(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--problem", "burgers", "--out", str(out), *SMALL]) == 0
    capsys.readouterr()
    assert main(["plot", str(out)]) == 0
    printed = capsys.readouterr().out.split()
    assert {p.rsplit("/", 1)[-1] for p in printed} >= {"solution.png", "error.png", "residual.png"}
    assert all((out / "plots" / p.rsplit("/", 1)[-1]).exists() for p in printed)


def _one_line(proc_or_err: str) -> str:
    lines = proc_or_err.strip().splitlines()
    assert len(lines) == 1, proc_or_err[-2000:]
    assert "Traceback" not in proc_or_err
    return lines[0]


@pytest.mark.parametrize(
    "args, fragments",
    [
        (["train", "--out", "taken.txt"], ["'taken.txt", "Not a directory"]),
        (["train", "--out", "/dev/null"], ["'/dev/null", "Not a directory"]),
        (["train", "--out", "a" * 300], ["File name too long"]),
        (
            ["train", "--config", "folder", "--out", "x"],
            ["'folder' cannot be read (Is a directory)"],
        ),
        (
            ["train", "--device", "meta", "--out", "x"],
            ["device='meta' is not allowed; allowed: cpu, cuda, cuda:N, auto"],
        ),
        (["train", "--set", "sampler_params.k=.inf", "--out", "x"], ["k=inf is not allowed"]),
        (
            ["train", "--sampler", "rad", "--set", "sampler_params.k=.inf", "--out", "x"],
            ["k=inf is not allowed"],
        ),
        (
            ["train", "--k", "inf", "--out", "x"],
            ["--k was removed", "--set sampler_params.k=VALUE"],
        ),
        (["train", "--set", "sampler_params.M=2.5", "--out", "x"], ["M=2.5 is not allowed"]),
        (["train", "--steps", "9" * 5000, "--out", "x"], ["argument --steps: invalid int value"]),
        (["plot", "x"], ["'x' is not a run or bench directory"]),
    ],
)
def test_bad_paths_and_values_exit_2_with_one_bounded_line(
    tmp_path, capsys, monkeypatch, args, fragments
):
    (tmp_path / "taken.txt").write_text("not a run directory\n")
    (tmp_path / "folder").mkdir()
    code, err = _cli_in_process(args, tmp_path, capsys, monkeypatch)
    assert code == 2, err[-2000:]
    line = _one_line(err)
    assert line.startswith("glfpinn: error: ") and len(line) <= 500
    assert all(fragment in line for fragment in fragments), line
    assert not (tmp_path / "x").exists()  # refused before a run directory was made


def test_a_point_set_too_large_for_memory_exits_1_with_one_line(tmp_path):
    import resource

    def cap_memory():  # 16 GiB of address space: the 800 GB point set cannot be allocated
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    proc = subprocess.run(
        [sys.executable, "-m", "glfpinn", "train", "--n-points", str(10**11), "--out", "run"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        preexec_fn=cap_memory,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    line = _one_line(proc.stderr)
    assert line.startswith("glfpinn: out of memory: ")
    assert line.endswith("lower n_points, n_candidates or score_chunk")


def test_a_full_disk_exits_1_naming_the_file_and_leaves_no_temporary_file(
    tmp_path, capsys, monkeypatch
):
    import errno
    import os

    def full(fd):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "fsync", full)  # every atomic write fsyncs before its rename
    out = tmp_path / "run"
    assert main(["train", "--out", str(out), *SMALL]) == 1
    line = _one_line(capsys.readouterr().err)
    assert line.startswith(f"glfpinn: failed: '{out}{os.sep}")
    assert line.endswith("': No space left on device")
    assert not list(out.glob(".*.tmp"))


@pytest.mark.parametrize(
    "error, expected",
    [
        (MemoryError(), "glfpinn: out of memory: lower n_points, n_candidates or score_chunk"),
        (RuntimeError("boom\nand more"), "glfpinn: failed: RuntimeError: boom and more"),
        (OSError(5, "Input/output error", "x.pt"), "glfpinn: failed: 'x.pt': Input/output error"),
        (RecursionError("maximum recursion depth exceeded"), "glfpinn: failed: RecursionError"),
    ],
)
def test_runtime_failures_exit_1_with_one_line(tmp_path, capsys, monkeypatch, error, expected):
    import glfpinn.runs

    def fail(*args, **kwargs):
        raise error

    monkeypatch.setattr(glfpinn.runs, "run", fail)
    assert main(["train", "--out", str(tmp_path / "run"), *SMALL]) == 1
    assert _one_line(capsys.readouterr().err).startswith(expected)


def test_sigterm_during_set_up_exits_143_and_the_handler_is_restored(tmp_path, capsys, monkeypatch):
    import os
    import signal
    import time

    import glfpinn.runs

    def terminate_me(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises before this ends
        raise AssertionError("SIGTERM did not interrupt")

    monkeypatch.setattr(glfpinn.runs, "run", terminate_me)
    before = signal.getsignal(signal.SIGTERM)
    assert main(["train", "--out", str(tmp_path / "run"), *SMALL]) == 143
    assert _one_line(capsys.readouterr().err) == "glfpinn: terminated"
    assert signal.getsignal(signal.SIGTERM) is before


def test_sigterm_while_training_exits_143_with_one_line_and_no_temporary_file(tmp_path):
    import signal
    import time

    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--steps", "1000000", "--n-points", "64"]
    args += ["--set", "hidden=[8]", "--checkpoint-every", "5", "--eval-every", "100000", "--quiet"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "glfpinn", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint.pt").exists():
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "no checkpoint within 120 s"
            time.sleep(0.05)
        time.sleep(0.2)  # a few more checkpoints: the signal may land inside a write
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err[-2000:]
    assert _one_line(err) == "glfpinn: terminated"
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*.tmp"))
    assert (out / "checkpoint.pt").stat().st_size > 0


def test_resume_refuses_changed_flags_and_accepts_a_longer_run(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--problem", "burgers", "--out", str(out), *SMALL]) == 0
    capsys.readouterr()
    assert main(["train", "--resume", "--out", str(out), "--lr", "0.1", "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "resume it without changing lr" in err and len(err.strip().splitlines()) == 1
    assert main(["train", "--resume", "--out", str(out), "--set", "steps=60", "--quiet"]) == 0
    result = json.loads((out / "result.json").read_text())
    assert result["steps"] == 60 and "steps: 60" in (out / "config.yaml").read_text()


def test_a_collapse_warning_is_one_whole_line(tmp_path):
    """The collapse warning, forced by a threshold above any coverage, is printed whole on one
    line, without the source line Python's default adds."""
    out = tmp_path / "run"
    proc = _run_cli(
        *["train", "--problem", "helmholtz", "--sampler", "glf", "--steps", "8"],
        *["--resample-every", "4", "--n-points", "100", "--hidden", "8", "--no-compile"],
        *["--coverage-threshold", "0.999", "--quiet", "--out", str(out)],
    )
    assert proc.returncode == 0, proc.stderr
    warned = [line for line in proc.stderr.splitlines() if "collapsed" in line]
    assert len(warned) == 1
    assert warned[0].startswith("glfpinn: warning: sampler 'glf' collapsed its points at step 4")
    assert warned[0].endswith("keeps a uniform share")
    assert "trainer.py" not in proc.stderr


METRICS_FILE = """
import torch


def u_mid(model):
    return float(model(torch.tensor([[0.5, 0.5]])))
"""


@pytest.mark.parametrize("where", ["flag", "yaml"])
def test_user_metrics_by_import_path_and_the_condition_misfit_are_reported(tmp_path, capsys, where):
    (tmp_path / "mets.py").write_text(METRICS_FILE)
    path = f"{tmp_path / 'mets.py'}:u_mid"
    out = tmp_path / "run"
    args = ["train", "--problem", "laplace", "--out", str(out), *SMALL]
    if where == "flag":
        args += ["--metric", path]
    else:
        (tmp_path / "c.yaml").write_text(f"metrics: [{path}]\n")
        args += ["--config", str(tmp_path / "c.yaml")]
    assert main(args) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    result = _strict_json((out / "result.json").read_text())
    evals = [_strict_json(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in evals if x["event"] == "eval"]
    assert [set(x["condition_misfit"]) for x in evals] == [{"boundary"}, {"boundary"}]
    assert all(math.isfinite(x["u_mid"]) for x in evals)
    assert result["metrics"] == {"u_mid": evals[-1]["u_mid"]}
    assert result["condition_misfit"] == evals[-1]["condition_misfit"]
    assert summary["condition_misfit"] == result["condition_misfit"]
    assert yaml.safe_load((out / "config.yaml").read_text())["metrics"] == [path]


def test_the_loss_weight_help_names_every_loss_term(capsys):
    from glfpinn.training.loss import LOSS_TERMS

    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    start = text.rindex("--loss-weight TERM=W")  # its help, after the usage line
    assert all(f"{term}=W" in text[start : start + 200] for term in LOSS_TERMS)


MODULE_CLASSES = """
import torch


class Net(torch.nn.Module):
    def __init__(self, width=8):
        super().__init__()
        self.body = torch.nn.Sequential(
            torch.nn.Linear(2, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)
        )

    def forward(self, x):
        return self.body(x)


class ProblemNet(Net):
    def __init__(self, problem, width=8):
        super().__init__(width)
        self.dim = problem.dim
"""


@pytest.mark.parametrize("name", ["Net", "ProblemNet"])
def test_an_nn_module_class_is_a_model_from_the_command_line(tmp_path, name):
    """A class is built as Class(**model_params), or Class(problem, **model_params) where its
    first argument is named problem."""
    import torch

    (tmp_path / "nets.py").write_text(MODULE_CLASSES)
    out = tmp_path / "run"
    args = ["train", "--problem", "burgers", "--model", f"{tmp_path / 'nets.py'}:{name}"]
    args += ["--set", "model_params.width=12", "--steps", "4", "--eval-every", "2", "--quiet"]
    assert main([*args, "--n-points", "50", "--out", str(out)]) == 0
    state = torch.load(out / "checkpoint.pt", weights_only=True)["model"]
    assert state["net.body.0.weight"].shape == (12, 2)


def test_the_cli_shows_its_own_warnings_and_drops_other_libraries_deprecations(capsys):
    """A deprecation torch raises about its own API is not a glfpinn warning; glfpinn's own
    warnings (and a deprecation glfpinn raises) still come as one line each."""
    import glfpinn.cli as cli

    ours = os.path.join(os.path.dirname(cli.__file__), "runs", "load.py")
    cli._show_warning("old", DeprecationWarning, "/site-packages/torch/jit/_script.py", 1)
    cli._show_warning("gone soon", PendingDeprecationWarning, "/elsewhere/lib.py", 1)
    assert capsys.readouterr().err == ""
    cli._show_warning("collapsed", UserWarning, "/site-packages/torch/x.py", 1)
    cli._show_warning("renamed", DeprecationWarning, ours, 1)
    assert capsys.readouterr().err.splitlines() == [
        "glfpinn: warning: collapsed",
        "glfpinn: warning: renamed",
    ]
