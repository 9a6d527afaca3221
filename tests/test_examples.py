"""Every script in examples/ is a user story; each runs here at a tiny budget, so an example
that breaks fails the suite."""

import math
import runpy
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))


def _run(name):
    path = next(p for p in EXAMPLES if p.stem == name)
    return runpy.run_path(str(path), run_name="example")["main"](tiny=True)


def test_every_example_is_tested():
    assert {p.stem for p in EXAMPLES} == {"training_parts", "no_reference", "own_loop"}


def test_training_parts_example(capsys):
    out = _run("training_parts")
    result = out["result"]
    assert result.steps == 60 and [s["optimizer"] for s in result.stages] == ["AdamW", "LBFGS"]
    assert out["half"]["residual_mean"] < out["initial"]["residual_mean"]
    assert result.residual_mean < out["half"]["residual_mean"]
    assert math.isfinite(result.metrics["u_at_shock"])
    assert "step 60: L2" in capsys.readouterr().out


def test_no_reference_example():
    out = _run("no_reference")
    result = out["result"]
    assert result.l2_relative_error is None
    assert result.residual_mean < out["initial_residual"]


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_examples_have_a_docstring_with_the_command(path):
    text = path.read_text()
    assert text.startswith('"""') and f"python examples/{path.name}" in text


def test_own_loop_example():
    """GLF in a plain PyTorch loop: the held-out loss (a fixed set) falls; the training loss is
    on points GLF moves to hard regions, so it may rise across a resample."""
    out = _run("own_loop")
    assert out["resamples"] == 2 and out["points"].shape == (500, 2)
    assert out["final_held_out_loss"] < out["initial_held_out_loss"]
