import os
from pathlib import Path

import pytest
import torch

from glfpinn.training import compiling
from glfpinn.training.compiling import (
    COMPILE_MODES,
    check_compile,
    compile_mode,
    use_compile_cache,
    uses_cuda_graphs,
)
from tests.helpers import Poisson1D

CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def test_compile_true_picks_cuda_graphs_on_cuda_and_the_default_mode_elsewhere():
    assert compile_mode(True, CPU) == "default"
    assert compile_mode(True, CUDA) == "reduce-overhead"
    assert uses_cuda_graphs(compile_mode(True, CUDA), CUDA)
    assert not uses_cuda_graphs(compile_mode(True, CPU), CPU)


def test_false_is_eager_and_a_named_mode_is_kept():
    assert compile_mode(False, CUDA) is None
    for mode in COMPILE_MODES:
        assert compile_mode(mode, CPU) == mode


@pytest.mark.parametrize("bad", ["fast", 1, None, "True"])
def test_anything_else_is_refused_in_one_line(bad):
    with pytest.raises(ValueError, match="must be 'auto', true, false or a mode: default"):
        check_compile(bad)


def test_the_compile_cache_lives_in_glfpinns_cache_unless_the_user_chose_one(monkeypatch, tmp_path):
    monkeypatch.setenv("GLFPINN_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "/tmp/torchs-own-default")
    monkeypatch.setattr(compiling, "_USER_CACHE_DIR", None)
    assert Path(use_compile_cache()) == tmp_path / "torch-compile"
    assert os.environ["TORCHINDUCTOR_CACHE_DIR"] == str(tmp_path / "torch-compile")
    monkeypatch.setattr(compiling, "_USER_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "mine"))
    assert use_compile_cache() == str(tmp_path / "mine")


def test_after_one_compiled_cpu_step_later_processes_skip_torchs_cpu_probe(monkeypatch, tmp_path):
    import torch._inductor.config as inductor

    monkeypatch.setattr(compiling, "_USER_CACHE_DIR", None)
    monkeypatch.setenv("GLFPINN_CACHE_DIR", str(tmp_path))
    with inductor.patch({"cpp.vec_isa_ok": None}):
        use_compile_cache()
        assert inductor.cpp.vec_isa_ok is None  # nothing known yet: torch probes
        (tmp_path / "torch-compile").mkdir()  # what the compiled step's kernels filled
        compiling.record_cpu_compiled()
        use_compile_cache()
        assert inductor.cpp.vec_isa_ok is True
    with inductor.patch({"cpp.vec_isa_ok": False}):
        use_compile_cache()
        assert inductor.cpp.vec_isa_ok is False  # a user's own setting stays


def test_each_trainer_compiles_its_own_loss_past_dynamos_per_function_limit(real_compile):
    """torch.compile keeps at most ``recompile_limit`` compiled entries per function; were the
    loss one function for every trainer, a process that builds more configurations than that (a
    bench worker) would train the later ones eagerly without a word. Here the limit is 1 and
    two trainers of different configurations must both compile."""
    from torch._dynamo.utils import counters

    from glfpinn import Uniform, problems
    from glfpinn.training import make_trainer

    with torch._dynamo.config.patch(recompile_limit=1):
        for dtype in ("float32", "float64"):
            trainer = make_trainer(
                problems.get("burgers"),
                Uniform(),
                steps=2,
                hidden=(8,),
                n_points=64,
                dtype=dtype,
                compile=True,  # a 2-step run would train eagerly by default
            )
            graphs = counters["stats"]["unique_graphs"]
            trainer.optimizer_step()
            assert counters["stats"]["unique_graphs"] > graphs, f"{dtype} ran eagerly"


def test_the_fallback_warning_is_whole_names_where_and_says_what_to_do():
    from torch import nn

    from glfpinn.nn import ResidualMLP
    from glfpinn.training.compiling import explain_compile_failure

    problem = Poisson1D()
    long_first_line = "Dynamo failed to run FX node with fake tensors: " + "x" * 300
    err = RuntimeError(
        f"{long_first_line}\n\nfrom user code:\n"
        '   File "/home/me/helm.py", line 12, in residual\n'
        "    _, d = ops.something(model, x)\n"
    )
    generic = nn.Sequential(nn.Linear(1, 4), nn.ReLU(), nn.Linear(4, 1))
    message = explain_compile_failure(err, problem, generic)
    assert long_first_line in message  # not cut
    assert "at helm.py:12 in residual (_, d = ops.something(model, x))" in message
    assert "model Sequential" in message and "build it from those" in message
    assert "compile=False (--no-compile)" in message

    double = RuntimeError("torch.compile with aot_autograd does not support double backward")
    message = explain_compile_failure(double, problem, ResidualMLP(1, width=4))
    assert "take its derivatives from glfpinn.ops" in message


def test_auto_trains_a_short_run_eagerly_and_says_so(caplog):
    import logging

    from glfpinn import GLF
    from glfpinn.training import make_trainer
    from glfpinn.training.compiling import SHORT_RUN_STEPS, short_run_note
    from tests.helpers import Poisson1D

    assert compile_mode("auto", CPU, SHORT_RUN_STEPS - 1) is None
    with caplog.at_level(logging.INFO, logger="glfpinn"):
        trainer = make_trainer(Poisson1D(), GLF(), steps=SHORT_RUN_STEPS - 1)
    assert trainer.compile_mode is None
    assert [r.getMessage() for r in caplog.records] == [
        f"training eagerly: {SHORT_RUN_STEPS - 1} steps are fewer than the {SHORT_RUN_STEPS} that "
        "compiling needs to pay for its start-up (--compile or compile=True compiles anyway)"
    ]
    assert short_run_note(True, 10) is None and short_run_note("auto", SHORT_RUN_STEPS) is None
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="glfpinn"):
        assert compile_mode("auto", CPU, SHORT_RUN_STEPS) == "default"
        assert compile_mode("auto", CUDA, SHORT_RUN_STEPS) == "reduce-overhead"
        assert compile_mode(True, CPU, 10) == "default"  # forced: compiled whatever the length
    assert not caplog.records
