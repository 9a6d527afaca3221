import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

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
    csv = (out / "results.csv").read_text().splitlines()
    assert csv[0].startswith("experiment,problem,sampler,seeds") and len(csv) == 3


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
