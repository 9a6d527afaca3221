import json
import subprocess
import sys

import pytest

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
    extra = ["--n-candidates", "2000"] if sampler == "rad" else []
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
    assert (result["residual_evals"] == 2000) == (sampler == "rad")
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [x for x in lines if x["event"] == "eval"]
    assert [x["step"] for x in evals] == [20, 40]
    assert {"step", "loss", "l2_relative_error", "elapsed_s"} <= evals[0].keys()
    assert any(x["event"] == "resample" for x in lines)
    assert (out / "config.yaml").exists() and (out / "checkpoint.pt").exists()


def _run_cli(*args):
    return subprocess.run([sys.executable, "-m", "glfpinn", *args], capture_output=True, text=True)


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["train", "--problem", "allen-kahn", "--out", "x"], "did you mean 'allen-cahn'"),
        (["train", "--sampler", "glff", "--out", "x"], "known: "),
        (["train", "--steps", "0", "--out", "x"], "steps=0"),
        (["train", "--alpha", "-1", "--out", "x"], "alpha=-1.0"),
        (["train", "--sampler", "rad", "--alpha", "1e-3", "--out", "x"], "alpha"),
        (["train", "--set", "stepz=3", "--out", "x"], "did you mean 'steps'"),
        (["train", "--device", "cuda", "--out", "x"], "CUDA is not available"),
        (["bogus"], "invalid choice"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_no_traceback(tmp_path, args, fragment):
    proc = subprocess.run(
        [sys.executable, "-m", "glfpinn", *args], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert fragment in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


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


def test_compile_flag_trains_and_is_recorded(tmp_path):
    out = tmp_path / "run"
    args = ["train", "--problem", "burgers", "--sampler", "glf", "--out", str(out), "--compile"]
    assert main([*args, *SMALL]) == 0
    assert "compile: true" in (out / "config.yaml").read_text()
    assert json.loads((out / "result.json").read_text())["steps"] == 40
