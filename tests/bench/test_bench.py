import contextlib
import csv
import dataclasses
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from glfpinn.bench import collect, load_bench, run_bench, write_plots, write_report
from glfpinn.cli import main
from tests.helpers import MY_PDE

BENCH = """
profile: test
note: a tiny grid for the tests
base: {steps: 20, eval_every: 10, n_points: 64, hidden: [8, 8], resample_every: 10,
       snapshot_every: 10, checkpoint_every: 10}
experiments:
  main:
    problems: {ac: {problem: allen-cahn}}
    samplers:
      glf: {sampler: glf}
      rad: {sampler: rad, sampler_params: {n_candidates: 500}}
    seeds: [0, 1]
"""


@pytest.fixture
def bench_file(tmp_path):
    path = tmp_path / "bench.yaml"
    path.write_text(BENCH)
    return path


def test_grid_expands_problem_x_sampler_x_seed_with_merged_settings(bench_file):
    bench = load_bench(bench_file)
    assert len(bench.cells) == 4
    rad = [c for c in bench.cells if c.sampler == "rad"][0]
    assert rad.config.sampler_params == {"n_candidates": 500} and rad.config.steps == 20
    assert str(rad.path) == "main/ac/rad/seed0"


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ("experiments: {}\n", "non-empty"),
        ("experimentz: {}\n", "unknown key 'experimentz'"),
        (
            "experiments: {e: {problems: {p: {problem: allen-cahn}}, samplers: {s: {stepz: 1}}}}\n",
            "did you mean 'steps'",
        ),
    ],
)
def test_bad_bench_files_are_clear_errors(tmp_path, bad, fragment):
    path = tmp_path / "b.yaml"
    path.write_text(bad)
    with pytest.raises(ValueError, match=fragment):
        load_bench(path)


def _experiment(
    problem: str = "{problem: allen-cahn}", sampler: str = "{sampler: glf}", seeds: str = "[0]"
) -> str:
    """A bench file of one experiment 'e', its problem labelled 'p' and its sampler 's'."""
    return (
        f"experiments: {{e: {{problems: {{p: {problem}}}, samplers: {{s: {sampler}}}, "
        f"seeds: {seeds}}}}}\n"
    )


_DUPLICATE_LABELS = """experiments:
  e:
    problems: {p: {problem: allen-cahn}}
    samplers:
      glf: {sampler: glf}
      glf: {sampler: glf, sampler_params: {M: 5}}
"""

_DUPLICATE_EXPERIMENTS = """experiments:
  e: {problems: {p: {problem: allen-cahn}}, samplers: {s: {sampler: glf}}}
  e: {problems: {p: {problem: burgers}}, samplers: {s: {sampler: glf}}}
"""


@pytest.mark.parametrize(
    "bad, message",
    [
        pytest.param(
            _experiment("{problem: allen-kahn}"),
            "experiment 'e', p/s: problem 'allen-kahn' is unknown (did you mean 'allen-cahn'?)",
            id="unknown-problem",
        ),
        pytest.param(
            _experiment(sampler="{sampler: glff}"),
            "experiment 'e', p/s: sampler 'glff' is unknown (did you mean 'glf'?)",
            id="unknown-sampler",
        ),
        pytest.param(
            _experiment("{problem: 'no_such_module:Problem'}"),
            "experiment 'e', p/s: problem 'no_such_module:Problem': no module named",
            id="unknown-problem-import-path",
        ),
        pytest.param(
            _experiment("{problem: burgers, problem_params: {nu: 0.1}}"),
            "experiment 'e', p/s: problem 'burgers': "
            "Burgers.__init__() got an unexpected keyword argument 'nu'",
            id="unknown-problem-param",
        ),
        pytest.param(
            _experiment("{problem: dispersive-10d, problem_params: {space_dim: 1}}"),
            "experiment 'e', p/s: space_dim=1 must be an integer >= 2",
            id="problem-param-range",
        ),
        pytest.param(
            _DUPLICATE_LABELS,
            "line 6: key 'glf' is given twice in one mapping (first on line 5)",
            id="duplicate-label",
        ),
        pytest.param(
            _DUPLICATE_EXPERIMENTS,
            "line 3: key 'e' is given twice in one mapping (first on line 2)",
            id="duplicate-experiment",
        ),
        pytest.param(
            _DUPLICATE_LABELS.replace("glf: {sampler: glf}", "GLF: {sampler: glf}", 1),
            "cells e/p/GLF/seed0 and e/p/glf/seed0 would share a directory on a case-insensitive",
            id="labels-differing-in-case",
        ),
        pytest.param(
            _experiment(seeds="[0, 1, 0]"),
            "experiment 'e': seed 0 is listed twice; each seed's cells have one directory",
            id="duplicate-seed",
        ),
        pytest.param(
            _experiment(seeds="[-1]"),
            "experiment 'e': seed -1 is not allowed; seeds must be integers from 0 to 2**63 - 1",
            id="negative-seed",
        ),
        pytest.param(
            _experiment(seeds="[true]"),
            "experiment 'e': seed True is not allowed",
            id="bool-seed",
        ),
        pytest.param(
            "base: {eval_every: 0}\n" + _experiment(),
            "experiment 'e', p/s: eval_every=0 is not allowed",
            id="eval-every",
        ),
        pytest.param(
            "base: {n_points: 0}\n" + _experiment(), "n_points=0 is not allowed", id="n-points"
        ),
        pytest.param(
            "base: {resample_every: -5}\n" + _experiment(),
            "resample_every=-5 is not allowed",
            id="resample-every",
        ),
        pytest.param(
            "base: {n_validation: 0}\n" + _experiment(),
            "n_validation=0 is not allowed",
            id="n-validation",
        ),
        pytest.param("base: {lr: -0.001}\n" + _experiment(), "lr=-0.001 is not allowed", id="lr"),
        pytest.param(
            "base: {dtype: float16}\n" + _experiment(), "dtype='float16' is unknown", id="dtype"
        ),
        pytest.param(
            "base: {activation: relu}\n" + _experiment(),
            "activation='relu' is unknown",
            id="activation",
        ),
        pytest.param(
            "base: {loss_weights: {boundary: 2}}\n" + _experiment(),
            "loss term 'boundary' is unknown",
            id="loss-term",
        ),
        pytest.param(
            "base: {loss_weights: {data: -1}}\n" + _experiment(),
            "loss_weights.data=-1 is not allowed",
            id="loss-weight",
        ),
        pytest.param(
            "base: [steps, 10]\n" + _experiment(),
            "base must be a mapping of run settings, got list",
            id="base-not-a-mapping",
        ),
        pytest.param(
            "workers: true\n" + _experiment(),
            "workers=True must be a positive integer",
            id="workers-bool",
        ),
        pytest.param(
            "published: {figures: {p: {best: 0.1}}}\n" + _experiment(),
            "published.source=None must say where the figures come from",
            id="published-without-source",
        ),
        pytest.param(
            "published: {source: a paper, figures: {q: {best: 0.1}}}\n" + _experiment(),
            "published figures for problem 'q', which no experiment has; problems: p",
            id="published-unknown-problem",
        ),
        pytest.param(
            "published: {source: a paper, figures: {p: {best: -0.1}}}\n" + _experiment(),
            "published.figures.p.best=-0.1 must be a positive L2 error",
            id="published-negative",
        ),
        pytest.param(
            "published: {source: a paper, figures: {p: {best: .nan}}}\n" + _experiment(),
            "published.figures.p.best=nan must be a positive L2 error",
            id="published-nan",
        ),
        pytest.param(
            "published: {source: a paper, figures: {p: {vanilla: {value: 0.1, sampler: u}}}}\n"
            + _experiment(),
            "sampler 'u' is not one of the bench's: s",
            id="published-unknown-sampler",
        ),
        pytest.param(
            "published: {source: a paper, figures: {p: {vanilla: {valu: 0.1}}}}\n" + _experiment(),
            "published.figures.p.vanilla: unknown key 'valu'; allowed: sampler, value",
            id="published-unknown-key",
        ),
    ],
)
def test_a_bad_bench_is_refused_whole_before_any_worker_starts(tmp_path, capsys, bad, message):
    path = tmp_path / "b.yaml"
    path.write_text(bad)
    with pytest.raises(ValueError) as err:
        load_bench(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    out = tmp_path / "out"
    assert main(["bench", str(path), "--out", str(out), "--workers", "1"]) == 2
    assert capsys.readouterr().err.startswith("glfpinn: error: ")
    assert not out.exists(), "a refused bench creates nothing"


@pytest.mark.parametrize(
    "bad",
    [
        pytest.param(_experiment("{problem: " + "x" * 5000 + "}"), id="long-problem-name"),
        # keys stay under 1024 characters, the longest key PyYAML reads at all
        pytest.param(_experiment().replace("{s:", "{" + "s" * 1000 + ":", 1), id="long-label"),
        pytest.param(_experiment(seeds="[" + "9" * 4000 + "]"), id="huge-seed"),
        pytest.param(_DUPLICATE_LABELS.replace("glf:", "g" * 1000 + ":"), id="long-repeated-key"),
    ],
)
def test_bench_errors_quote_long_values_cut_short(tmp_path, bad):
    path = tmp_path / "b.yaml"
    path.write_text(bad)
    with pytest.raises(ValueError) as err:
        load_bench(path)
    assert len(str(err.value)) < 400 + len(str(path))


def test_a_yaml_merge_key_may_be_overridden(tmp_path):
    """``<<: *defaults`` followed by one of the defaults' keys is meant, not a duplicate."""
    path = tmp_path / "b.yaml"
    path.write_text(
        "base: &defaults {steps: 20, eval_every: 10}\n"
        "experiments:\n"
        "  e:\n"
        "    base: {<<: *defaults, steps: 30}\n"
        "    problems: {p: {problem: allen-cahn}}\n"
        "    samplers: {s: {sampler: glf}}\n"
    )
    (cell,) = load_bench(path).cells
    assert cell.config.steps == 30 and cell.config.eval_every == 10


def test_bench_reuses_finished_cells_and_reports(bench_file, tmp_path):
    out = tmp_path / "out"
    first = run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)
    assert first == {"cells": 4, "reused": 0, "ran": 4, "failed": 0}
    stamp = (out / "main/ac/glf/seed0/result.json").stat().st_mtime_ns
    second = run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)
    assert second["reused"] == 4 and second["ran"] == 0
    assert (out / "main/ac/glf/seed0/result.json").stat().st_mtime_ns == stamp

    assert len(collect(out)) == 4
    plots = write_plots(out)
    assert {p.name for p in plots} >= {
        "main_ac_curves.png",
        "main_ac_costs.png",
        "main_ac_points.png",
        "main_ac_errors.png",
    }
    md = write_report(out).read_text()
    assert "| ac | glf | 2 |" in md and "| ac | rad | 2 |" in md
    table = (out / "results.csv").read_text().splitlines()
    assert table[0].startswith("experiment,problem,sampler,seeds") and len(table) == 3


def test_published_figures_reach_the_report_beside_the_benchs_own(bench_file, tmp_path):
    published = (
        "published:\n  source: a paper, Table 3\n  figures:\n"
        "    ac: {vanilla: {value: 0.5, sampler: glf}, best: 1.0e-3}\n"
    )
    bench_file.write_text(BENCH + published)
    out = tmp_path / "out"
    run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)
    recorded = json.loads((out / "bench.json").read_text())["published"]
    assert recorded["figures"]["ac"]["vanilla"] == {"value": 0.5, "sampler": "glf"}
    md = write_report(out).read_text()
    assert "## Published figures beside ours" in md and "Published: a paper, Table 3." in md
    medians = {
        r["sampler"]: float(r["l2_relative_error_median"])
        for r in csv.DictReader((out / "results.csv").open())
    }
    best = min(medians, key=medians.get)
    # each figure's row: our median (the named sampler's, else the best one's) and the ratio
    for label, value, sampler in (("vanilla", 0.5, "glf"), ("best", 1e-3, best)):
        row = f"| main | ac | {label} | {value:.3g} | {sampler} | {medians[sampler]:.3g} | "
        assert row + f"{medians[sampler] / value:.3g} |" in md
    # the figures are not part of the grid: adding them reuses every finished cell
    bench_file.write_text(BENCH)
    assert run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)["reused"] == 4


def test_cells_finished_before_a_setting_existed_are_reused_after_an_upgrade(bench_file, tmp_path):
    """A setting added to RunConfig later is missing from older cells' config.yaml; those
    runs used its default, so they are the same runs and are not trained again."""
    out = tmp_path / "out"
    assert run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)["ran"] == 4
    stamps = {}
    for config in out.glob("*/*/*/seed*/config.yaml"):
        data = yaml.safe_load(config.read_text())
        assert data.pop("score") is None and data.pop("equation_weights") == {}
        config.write_text(yaml.safe_dump(data, sort_keys=False))  # as glfpinn wrote it before
        stamps[config] = (config.parent / "result.json").stat().st_mtime_ns
    again = run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)
    assert again["reused"] == 4 and again["ran"] == 0
    for config, stamp in stamps.items():
        assert (config.parent / "result.json").stat().st_mtime_ns == stamp
    # a stored setting that differs from its default is still a different run
    config = next(iter(stamps))
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, "score": "max"}, sort_keys=False))
    with pytest.raises(ValueError, match="was run with other settings"):
        run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)


def test_killed_bench_finishes_the_rest_without_redoing_finished_cells(bench_file, tmp_path):
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "glfpinn",
            "bench",
            str(bench_file),
            "--out",
            str(out),
            "--workers",
            "1",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 180
    while time.time() < deadline and len(list(out.glob("*/*/*/seed*/result.json"))) < 1:
        time.sleep(0.1)
    os.killpg(proc.pid, signal.SIGKILL)  # the bench and its worker processes, like a crash
    proc.wait()
    finished = {p.parent: p.stat().st_mtime_ns for p in out.glob("*/*/*/seed*/result.json")}
    assert 1 <= len(finished) < 4, "kill the bench midway"
    assert main(["bench", str(bench_file), "--out", str(out), "--workers", "1"]) == 0
    for path, stamp in finished.items():
        assert (path / "result.json").stat().st_mtime_ns == stamp
    results = list(out.glob("*/*/*/seed*/result.json"))
    assert len(results) == 4
    for r in results:
        json.loads(r.read_text())


#: Four cells of about a second each: two running on two workers when the bench is killed, two
#: queued behind them.
SLOW_BENCH = """
profile: test
base: {steps: 300, eval_every: 50, n_points: 64, hidden: [8, 8], resample_every: 50,
       checkpoint_every: 50}
experiments:
  main:
    problems: {ac: {problem: allen-cahn}}
    samplers: {glf: {sampler: glf}, uniform: {sampler: uniform-resample}}
    seeds: [0, 1]
"""


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name (state, ppid, ..., start time at [19]), or None."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def _children(pid: int) -> dict[int, str]:
    """The processes whose parent is ``pid``, with their start times (a pid may be reused)."""
    found = {}
    for entry in Path("/proc").iterdir():
        fields = _stat(int(entry.name)) if entry.name.isdigit() else None
        if fields is not None and int(fields[1]) == pid:
            found[int(entry.name)] = fields[19]
    return found


def _alive(pid: int, started: str) -> bool:
    fields = _stat(pid)
    return fields is not None and fields[19] == started and fields[0] not in ("Z", "X")


def _files(root: Path) -> dict[str, tuple[int, int]]:
    """Every file under ``root`` with its size and modification time."""
    found = {}
    for folder, _, names in os.walk(root):
        for name in names:
            with contextlib.suppress(FileNotFoundError):  # a temporary file renamed meanwhile
                st = os.stat(os.path.join(folder, name))
                found[os.path.join(folder, name)] = (st.st_size, st.st_mtime_ns)
    return found


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="finds workers through /proc")
@pytest.mark.parametrize(
    "sig",
    [
        pytest.param(signal.SIGKILL, id="SIGKILL"),
        pytest.param(
            signal.SIGINT,
            id="SIGINT",
            # a process started with SIGINT ignored (nohup, a background job) passes that on
            marks=pytest.mark.skipif(
                signal.getsignal(signal.SIGINT) == signal.SIG_IGN, reason="SIGINT is ignored"
            ),
        ),
    ],
)
def test_a_killed_bench_takes_its_workers_with_it(tmp_path, sig):
    bench_file = tmp_path / "slow.yaml"
    bench_file.write_text(SLOW_BENCH)
    out = tmp_path / "out"
    command = ["bench", str(bench_file), "--out", str(out), "--workers", "2"]
    proc = subprocess.Popen(
        [sys.executable, "-m", "glfpinn", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # its own process group, for the clean-up below only
    )
    try:
        deadline = time.time() + 120
        while not any(out.glob("main/ac/*/seed*/metrics.jsonl")):
            assert proc.poll() is None and time.time() < deadline, "the bench never started a cell"
            time.sleep(0.05)
        workers = _children(proc.pid)  # the cell workers and multiprocessing's resource tracker
        assert len(workers) >= 2
        # the bench alone (an out-of-memory kill, a kill -INT): its workers are not signalled
        proc.send_signal(sig)
        assert proc.wait(timeout=10) == (130 if sig == signal.SIGINT else -sig)
        killed = time.time()
        while any(_alive(*w) for w in workers.items()) and time.time() < killed + 5:
            time.sleep(0.05)
        assert not [pid for pid, started in workers.items() if _alive(pid, started)]
        time.sleep(max(0.0, killed + 2 - time.time()))
        before = _files(out)
        time.sleep(3)
        assert _files(out) == before, "a worker went on writing after its bench died"
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # what this test started, should it fail
    # the bench was stopped in its first two cells: none may have finished since
    assert not any(out.glob("main/ac/*/seed*/result.json")), "a cell ran on after the bench died"

    assert main(command) == 0
    for cell in ("glf/seed0", "glf/seed1", "uniform/seed0", "uniform/seed1"):
        records = (out / "main/ac" / cell / "metrics.jsonl").read_text().splitlines()
        steps = [r["step"] for r in map(json.loads, records) if r["event"] == "eval"]
        assert steps == [50, 100, 150, 200, 250, 300], f"{cell}: {steps}"  # each logged once
        json.loads((out / "main/ac" / cell / "result.json").read_text())


#: The ray command: on PATH, or beside this interpreter (a virtual environment not activated).
RAY = shutil.which("ray") or shutil.which("ray", path=str(Path(sys.executable).parent))

PLUGIN_BENCH = """
profile: test
note: a user's problem from a file, by import path
base: {{steps: 20, eval_every: 10, n_points: 64, resample_every: 10, checkpoint_every: 10}}
experiments:
  mine:
    problems: {{pde: {{problem: {path}:MyPDE, problem_params: {{source_scale: 2.0}}}}}}
    samplers:
      glf: {{sampler: glf}}
      rad: {{sampler: rad, sampler_params: {{n_candidates: 500}}}}
    seeds: [0]
"""


@pytest.fixture
def plugin_bench_file(tmp_path):
    (tmp_path / "my_pde.py").write_text(MY_PDE)
    path = tmp_path / "plugin.yaml"
    path.write_text(PLUGIN_BENCH.format(path=tmp_path / "my_pde.py"))
    return path


def test_a_problem_by_import_path_runs_in_a_bench_on_local_workers(plugin_bench_file, tmp_path):
    out = tmp_path / "out"
    assert main(["bench", str(plugin_bench_file), "--out", str(out), "--workers", "2"]) == 0
    results = sorted(out.glob("mine/pde/*/seed0/result.json"))
    assert [r.parent.parent.name for r in results] == ["glf", "rad"]
    assert all(json.loads(r.read_text())["problem"] == "my-pde" for r in results)


@pytest.mark.skipif(RAY is None, reason="Ray is an optional extra")
def test_ray_executor_on_a_local_cluster(bench_file, plugin_bench_file, tmp_path):
    env_port = "6399"
    start = subprocess.run(
        [
            RAY,
            "start",
            "--head",
            "--node-ip-address=127.0.0.1",
            f"--port={env_port}",
            "--num-cpus=2",
            "--include-dashboard=false",
            "--disable-usage-stats",
        ],
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert start.returncode == 0, start.stderr[-2000:]
    try:
        out = tmp_path / "out"
        code = main(
            [
                "bench",
                str(bench_file),
                "--out",
                str(out),
                "--executor",
                "ray",
                "--ray-address",
                f"127.0.0.1:{env_port}",
            ]
        )
        assert code == 0
        assert len(list(out.glob("*/*/*/seed*/result.json"))) == 4
        mine = tmp_path / "mine"
        address = ["--executor", "ray", "--ray-address", f"127.0.0.1:{env_port}"]
        assert main(["bench", str(plugin_bench_file), "--out", str(mine), *address]) == 0
        assert len(list(mine.glob("mine/pde/*/seed0/result.json"))) == 2
    finally:
        subprocess.run([RAY, "stop", "--force"], capture_output=True, timeout=120)


@pytest.mark.parametrize("name", ["quick", "paper"])
def test_shipped_bench_configs_are_valid(name):
    from pathlib import Path

    bench = load_bench(Path(__file__).parents[2] / "configs" / f"{name}.yaml")
    assert bench.profile == name and bench.note
    experiments = {c.experiment for c in bench.cells}
    assert {"main", "ablation-M", "sweep-alpha", "sweep-kc", "scaling"} <= experiments


def test_the_frontier_profile_shares_one_recipe_across_its_samplers():
    from pathlib import Path

    bench = load_bench(Path(__file__).parents[2] / "configs" / "frontier.yaml")
    assert bench.profile == "frontier" and bench.note
    assert {c.seed for c in bench.cells} == {0, 1, 2}
    assert {c.problem for c in bench.cells} == {
        "burgers",
        "allen-cahn",
        "laplace",
        "helmholtz",
        "diffusion-reaction",
        "wave",
        "dispersive-10d",
        "reaction-diffusion-20d",
    }
    # the high-dimensional problems take half the points, as in the medium profile
    assert {c.config.n_points for c in bench.cells if c.experiment == "frontier-hd"} == {1000}
    assert {c.config.n_points for c in bench.cells if c.experiment != "frontier-hd"} == {2000}
    samplers = {c.sampler for c in bench.cells}
    assert {"glf", "glf-scaled", "rad", "r3", "uniform-resample", "uniform"} <= samplers
    recipes = set()
    for cell in bench.cells:
        plan = cell.config.plan()
        assert plan.rounds is not None
        assert any(stage.dtype == "float64" for stage in plan.rounds.stages)
        recipes.add(repr(plan))
    assert len(recipes) == 1  # one optimizer recipe for every problem and sampler


#: A problem whose training kills its own process the way a fault in user code, a native library
#: or the kernel does: os.abort (SIGABRT), a segfault, or an out-of-memory kill (SIGKILL).
FRAGILE_PDE = """
import os
import signal

import torch

from glfpinn import Box, Problem, ops


class Fragile(Problem):
    name = "fragile"
    defaults = {"n_points": 32, "resample_every": 5, "hidden": (4,)}

    def __init__(self, death="none"):
        self.death = death
        self.dim = 1
        self.domain = Box([0.0], [1.0])

    def residual(self, model, x):
        # in a worker only: the bench checks each problem in its own process first
        if os.getpid() != int(os.environ["FRAGILE_BENCH_PID"]):
            if self.death == "abort":
                os.abort()
            if self.death in ("SIGSEGV", "SIGKILL"):
                os.kill(os.getpid(), getattr(signal, self.death))
        return ops.axis_derivatives(model, x, order=2)[:, 0] + torch.sin(x[:, 0])

    def condition_points(self, n, generator, dtype):
        return {"boundary": torch.tensor([[0.0], [1.0]], dtype=dtype)}

    def condition_loss(self, model, points):
        return (model(points["boundary"]) ** 2).mean()
"""

FRAGILE_BENCH = """
profile: test
base: {{steps: 5, eval_every: 5, checkpoint_every: 5, compile: false}}
experiments:
  e:
    problems:
      ok: {{problem: {path}:Fragile}}
      abort: {{problem: {path}:Fragile, problem_params: {{death: abort}}}}
      segv: {{problem: {path}:Fragile, problem_params: {{death: SIGSEGV}}}}
      oom: {{problem: {path}:Fragile, problem_params: {{death: SIGKILL}}}}
      ok2: {{problem: {path}:Fragile}}
    samplers: {{u: {{sampler: uniform}}}}
    seeds: [0]
"""


@pytest.fixture
def fragile_bench(tmp_path, monkeypatch):
    monkeypatch.setenv("FRAGILE_BENCH_PID", str(os.getpid()))
    (tmp_path / "fragile.py").write_text(FRAGILE_PDE)
    path = tmp_path / "fragile.yaml"
    path.write_text(FRAGILE_BENCH.format(path=tmp_path / "fragile.py"))
    return path


def test_a_worker_that_dies_fails_its_own_cell_alone_and_the_grid_goes_on(fragile_bench, tmp_path):
    out = tmp_path / "out"
    lines: list[str] = []
    counts = run_bench(load_bench(fragile_bench), out, workers=2, log=lines.append)
    # three workers died (a real os.abort, SIGSEGV, SIGKILL); every other cell still ran
    assert counts == {"cells": 5, "reused": 0, "ran": 2, "failed": 3}, lines
    assert sorted(p.parts[-4] for p in out.glob("e/*/u/seed0/result.json")) == ["ok", "ok2"]
    for label, name in (("abort", "SIGABRT"), ("segv", "SIGSEGV"), ("oom", "SIGKILL")):
        error = (out / "e" / label / "u/seed0/error.txt").read_text()
        assert f"was killed by {name}" in error
        assert not (out / "e" / label / "u/seed0/result.json").exists()
    assert any(
        "e/abort/u/seed0: FAILED: the cell's worker process was killed by SIGABRT" in s
        for s in lines
    )

    # a rerun reuses the finished cells and runs the failed ones again (they die again)
    again = run_bench(load_bench(fragile_bench), out, workers=2, log=lambda s: None)
    assert again == {"cells": 5, "reused": 2, "ran": 0, "failed": 3}


def test_a_rerun_runs_a_failed_cell_and_clears_its_error(fragile_bench, tmp_path):
    out = tmp_path / "out"
    bench = load_bench(fragile_bench)
    only_abort = dataclasses.replace(
        bench, cells=tuple(c for c in bench.cells if c.problem == "abort")
    )
    assert run_bench(only_abort, out, workers=1, log=lambda s: None)["failed"] == 1
    cell = out / "e/abort/u/seed0"
    assert (cell / "error.txt").exists()
    # the cause fixed in place (its settings unchanged): the rerun runs it, and the error goes
    (tmp_path / "fragile.py").write_text(FRAGILE_PDE.replace("os.abort()", "pass"))
    assert run_bench(only_abort, out, workers=1, log=lambda s: None)["ran"] == 1
    assert (cell / "result.json").exists() and not (cell / "error.txt").exists()


def test_a_rerun_after_the_bench_file_changed_is_refused_unless_overwrite(bench_file, tmp_path):
    out = tmp_path / "out"
    one_seed = BENCH.replace("seeds: [0, 1]", "seeds: [0]")
    bench_file.write_text(one_seed)
    assert main(["bench", str(bench_file), "--out", str(out), "--workers", "1"]) == 0
    meta = json.loads((out / "bench.json").read_text())
    assert meta["cells"] == ["main/ac/glf/seed0", "main/ac/rad/seed0"]
    kept = (out / "main/ac/glf/seed0/result.json").stat().st_mtime_ns

    # a changed setting: the finished cells are no longer this bench's results
    bench_file.write_text(one_seed.replace("steps: 20", "steps: 30"))
    code = subprocess.run(
        [sys.executable, "-m", "glfpinn", "bench", str(bench_file), "--out", str(out)],
        capture_output=True,
        text=True,
    )
    assert code.returncode == 2
    assert code.stderr.count("\n") == 1 and "Traceback" not in code.stderr
    assert "holds the results of another grid" in code.stderr
    assert "use a new --out, or --overwrite" in code.stderr
    assert json.loads((out / "bench.json").read_text()) == meta  # nothing touched

    # an added seed changes the grid too; a comment does not
    bench_file.write_text("# a comment\n" + BENCH)
    with pytest.raises(ValueError, match="the bench file has changed since"):
        run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)
    bench_file.write_text("# a comment\n" + one_seed)
    assert run_bench(load_bench(bench_file), out, workers=1, log=lambda s: None)["reused"] == 2

    # --overwrite: the cells the new grid still has, unchanged, are kept; the others replaced
    bench_file.write_text(one_seed.replace("rad:", "uni: {sampler: uniform}\n      xrad:"))
    assert main(["bench", str(bench_file), "--out", str(out), "--workers", "1", "--overwrite"]) == 0
    assert (out / "main/ac/glf/seed0/result.json").stat().st_mtime_ns == kept
    assert not (out / "main/ac/rad").exists()
    assert sorted(json.loads((out / "bench.json").read_text())["cells"]) == [
        "main/ac/glf/seed0",
        "main/ac/uni/seed0",
        "main/ac/xrad/seed0",
    ]


def test_report_leaves_out_damaged_cells_by_name_and_lists_the_missing(bench_file, tmp_path):
    out = tmp_path / "out"
    assert main(["bench", str(bench_file), "--out", str(out), "--workers", "1"]) == 0
    cells = out / "main/ac"
    (cells / "glf/seed0/result.json").write_bytes(b"\x00\xff not json")  # binary garbage
    metrics = cells / "glf/seed1/metrics.jsonl"
    lines = metrics.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # a torn line in the middle
    metrics.write_text("\n".join(lines) + "\n")
    (cells / "rad/seed1/result.json").unlink()  # a cell that never finished
    for snapshot in (cells / "rad/seed0/snapshots").glob("*.npz"):
        snapshot.write_bytes(b"PK\x03\x04 torn")  # BadZipFile
    (cells / "rad/seed0/prediction.npz").write_bytes(b"")

    proc = subprocess.run(
        [sys.executable, "-m", "glfpinn", "report", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    err = proc.stderr.splitlines()
    assert all(line.startswith("glfpinn: warning: ") for line in err), err
    assert any(
        "left out cell main/ac/glf/seed0:" in s and "result.json' is damaged" in s for s in err
    )
    assert any(
        "left out cell main/ac/glf/seed1:" in s and "metrics.jsonl' line 2 is damaged" in s
        for s in err
    )
    assert any("snapshots/step" in s and "damaged (BadZipFile)" in s for s in err)
    assert any("prediction.npz' is damaged" in s or "prediction.npz': damaged" in s for s in err)
    assert any("3 of the bench's cells have no result" in s for s in err)
    md = (out / "results.md").read_text()
    assert "| ac | rad | 1 |" in md and "| ac | glf |" not in md  # only rad/seed0 is whole
    for missing in ("main/ac/glf/seed0", "main/ac/glf/seed1", "main/ac/rad/seed1"):
        assert f"`{missing}`" in md


@pytest.mark.parametrize(
    "path",
    sorted((Path(__file__).parents[2] / "configs").glob("*.yaml")),
    ids=lambda p: p.stem,
)
def test_every_shipped_bench_config_loads_and_names_its_profile(path):
    """A config the docs tell users to run must load (parts, options and all) as its name says."""
    bench = load_bench(path)
    assert bench.profile == path.stem and bench.note and bench.cells


def test_idle_workers_end_by_a_normal_exit_when_the_bench_closes_its_pool():
    """Closing the pool lets idle workers finish Python's exit (status 0) before the stop pipe
    closes: their watchdog would otherwise end them by os._exit(1) mid-exit, leaving what torch
    registered (compile workers, semaphores) for the resource tracker to warn about."""
    from glfpinn.bench.executors import _Pool

    pool = _Pool(3, threads=1)
    workers = [pool._start() for _ in range(3)]
    time.sleep(2.0)  # each spawned and idle in jobs.recv(), its watchdog running
    processes = [w.process for w in workers]
    pool.close(wait=30.0)
    assert [p.exitcode for p in processes] == [0, 0, 0]
