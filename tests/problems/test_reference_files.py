"""Reference solutions from files: every format, the COMSOL time expansion, attaching one to a
problem, the one-line errors, the config key and the command line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from glfpinn import problems
from glfpinn.cli import main
from glfpinn.config import RunConfig
from glfpinn.problems import ReferenceData, load_reference, with_reference
from glfpinn.training.evaluator import Evaluator

PINNACLE = Path("/work/shared/data/pinnacle")

RNG = np.random.default_rng(0)
POINTS = RNG.uniform(-1, 1, size=(7, 2))
VALUES = RNG.normal(size=(7, 1))
TABLE = np.hstack([POINTS, VALUES])


def _exact(reference: ReferenceData, points: np.ndarray = POINTS, values=VALUES) -> None:
    assert reference.points.dtype == reference.values.dtype == np.float64
    assert np.array_equal(reference.points, points)
    assert np.array_equal(reference.values, values)


# ------------------------------------------------------------------------------- the formats
def test_npz_by_keys_and_as_one_table(tmp_path):
    np.savez(tmp_path / "a.npz", x=POINTS, u=VALUES[:, 0])  # 1-D values: one output
    _exact(load_reference(tmp_path / "a.npz", 2))
    np.savez(tmp_path / "b.npz", points=POINTS, values=VALUES)
    _exact(load_reference(tmp_path / "b.npz", 2))
    np.savez(tmp_path / "c.npz", data=TABLE)
    _exact(load_reference(tmp_path / "c.npz", 2))


def test_npy_table(tmp_path):
    np.save(tmp_path / "a.npy", TABLE)
    reference = load_reference(tmp_path / "a.npy", 2)
    _exact(reference)
    assert reference.source == str((tmp_path / "a.npy").resolve()) and len(reference) == 7


def test_csv_with_comments_and_a_header_row(tmp_path):
    lines = ["# exported by a solver", "x,y,u"] + [
        ",".join(repr(float(v)) for v in row) for row in TABLE
    ]
    (tmp_path / "a.csv").write_text("\n".join(lines) + "\n")
    _exact(load_reference(tmp_path / "a.csv", 2))
    np.savetxt(tmp_path / "b.csv", TABLE, delimiter=",", fmt="%.17g")  # no header at all
    _exact(load_reference(tmp_path / "b.csv", 2))


def test_mat_by_keys_with_matlab_row_vectors(tmp_path):
    from scipy.io import savemat

    savemat(tmp_path / "a.mat", {"X": POINTS, "U": VALUES[:, 0]})  # saved as a (1, n) row
    _exact(load_reference(tmp_path / "a.mat", 2))
    savemat(tmp_path / "b.mat", {"x": POINTS[:, 0], "u": VALUES})  # 1-D points, a row too
    _exact(load_reference(tmp_path / "b.mat", 1), POINTS[:, :1])


def test_comsol_steady_export_is_a_table(tmp_path):
    header = ["% Model:   a.mph", "% Dimension:   2", "% Nodes:   7", "% X   Y   u (1)"]
    body = ["  ".join(repr(float(v)) for v in row) for row in TABLE]
    (tmp_path / "a.dat").write_text("\n".join(header + body) + "\n")
    _exact(load_reference(tmp_path / "a.dat", 2))
    (tmp_path / "a.txt").write_text("\n".join(header + body) + "\n")
    _exact(load_reference(tmp_path / "a.txt", 2))


def _comsol_in_time(path: Path, x: np.ndarray, times, u: np.ndarray) -> None:
    """A time-dependent COMSOL export: a row per node, u at each time in its columns."""
    titles = "% x" + "".join(f"   u (1) @ t={t:g}" for t in times)
    header = ["% Model:   b.mph", "% Dimension:   1", f"% Nodes:   {len(x)}", titles]
    body = ["  ".join(repr(float(v)) for v in [xi, *row]) for xi, row in zip(x, u, strict=True)]
    path.write_text("\n".join(header + body) + "\n", encoding="utf-8")


def test_comsol_time_export_expands_into_x_t_rows_time_major(tmp_path):
    x, times = np.array([-1.0, 0.0, 0.5, 1.0]), [0.0, 0.25, 1e-3]
    u = np.arange(12.0).reshape(4, 3) / 7  # u[node, time]
    _comsol_in_time(tmp_path / "b.dat", x, times, u)
    reference = load_reference(tmp_path / "b.dat", 2)
    expected_points = np.array([[xi, t] for t in times for xi in x])
    expected_values = np.array([[u[i, j]] for j in range(3) for i in range(4)])
    _exact(reference, expected_points, expected_values)
    # without the expansion the file is a plain (x, u, u, u) table
    flat = load_reference(tmp_path / "b.dat", 1, 3, time_dependent=False)
    _exact(flat, x[:, None], u)
    assert flat.spec() == {"path": flat.source, "time_dependent": False}


def test_comsol_time_export_of_several_outputs_groups_columns_by_time(tmp_path):
    header = "% x   u @ t=0   v @ t=0   u @ t=1   v @ t=1"
    rows = ["0  1  2  3  4", "1  5  6  7  8"]
    (tmp_path / "s.txt").write_text("\n".join([header, *rows]) + "\n")
    reference = load_reference(tmp_path / "s.txt", 2, n_outputs=2)
    assert reference.points.tolist() == [[0, 0], [1, 0], [0, 1], [1, 1]]
    assert reference.values.tolist() == [[1, 2], [5, 6], [3, 4], [7, 8]]


def test_columns_pick_and_order_the_table(tmp_path):
    np.save(tmp_path / "a.npy", np.hstack([TABLE, TABLE[:, :1] * 3]))  # x, y, u, w
    reference = load_reference(tmp_path / "a.npy", 2, columns=[1, 0, 3])
    _exact(reference, POINTS[:, ::-1], TABLE[:, :1] * 3)
    assert reference.spec() == {"path": reference.source, "columns": [1, 0, 3]}


# ----------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("name", "make", "fragment"),
    [
        (
            "wide.npy",
            lambda p: np.save(p, np.zeros((5, 4))),
            "holds a table of shape (5, 4) (4 columns); expected 3 columns: 2 coordinates "
            "then 1 output",
        ),
        ("nan.csv", lambda p: p.write_text("0,0,1\n0,1,nan\nnan,1,nan\n"), "holds 3 NaN values"),
        ("inf.npy", lambda p: np.save(p, np.array([[0, 0, np.inf]])), "1 NaN or infinite"),
        ("flat.npy", lambda p: np.save(p, np.zeros(6)), "holds a 1-D array of shape (6,)"),
        ("keys.npz", lambda p: np.savez(p, a=TABLE, b=TABLE), "holds a, b; expected points"),
        ("short.npz", lambda p: np.savez(p, x=POINTS, u=VALUES[:3]), "holds 7 points"),
        ("bad.csv", lambda p: p.write_text("0,0,1\n0,zero,1\n"), "is not a readable .csv"),
        ("table.xlsx", lambda p: p.write_text("x"), "unknown suffix '.xlsx'; allowed: .npz"),
        ("empty.dat", lambda p: p.write_text("% only a header\n"), "expected 3 columns"),
        ("none.npy", None, "does not exist"),
    ],
)
def test_bad_files_are_one_line_value_errors(tmp_path, name, make, fragment):
    path = tmp_path / name
    if make is not None:
        make(path)
    with pytest.raises(ValueError) as info:
        load_reference(path, 2)
    message = str(info.value)
    assert fragment in message, message
    assert "\n" not in message and str(name) in message


def test_gzip_compressed_text_reads_as_the_uncompressed_file(tmp_path):
    import gzip

    text = "% Model: x\n% X  Y  u (1) @ t=0  u (1) @ t=1\n0 0 1 2\n1 0 3 4\n"
    (tmp_path / "plain.dat").write_text(text)
    (tmp_path / "packed.dat.gz").write_bytes(gzip.compress(text.encode()))
    plain = load_reference(tmp_path / "plain.dat", 3)  # (x, y, t): expanded by the header
    packed = load_reference(tmp_path / "packed.dat.gz", 3)
    assert packed.points.shape == (4, 3)
    _exact(packed, plain.points, plain.values)
    csv = "x,y,u\n" + "\n".join(",".join(map(repr, row)) for row in TABLE.tolist())
    (tmp_path / "t.csv.gz").write_bytes(gzip.compress(csv.encode()))
    _exact(load_reference(tmp_path / "t.csv.gz", 2))


@pytest.mark.parametrize(
    ("name", "content", "fragment"),
    [
        ("t.npz.gz", b"", "is gzip-compressed .npz; allowed compressed: .csv.gz, .dat.gz"),
        ("t.gz", b"", "is gzip-compressed (no suffix)"),
        ("broken.dat.gz", b"not gzip at all", "is not a readable .dat file"),
    ],
)
def test_bad_gzip_files_are_one_line_value_errors(tmp_path, name, content, fragment):
    (tmp_path / name).write_bytes(content)
    with pytest.raises(ValueError) as info:
        load_reference(tmp_path / name, 2)
    assert fragment in str(info.value) and "\n" not in str(info.value)


def test_options_are_checked(tmp_path):
    np.save(tmp_path / "a.npy", TABLE)
    with pytest.raises(ValueError, match=r"columns=\[0, 5\] names column 5, but the table has 3"):
        load_reference(tmp_path / "a.npy", 1, columns=[0, 5])
    with pytest.raises(ValueError, match="columns must be a non-empty list"):
        load_reference(tmp_path / "a.npy", 2, columns="012")
    with pytest.raises(ValueError, match="time_dependent=true applies to COMSOL"):
        load_reference(tmp_path / "a.npy", 2, time_dependent=True)
    (tmp_path / "a.dat").write_text("% x y u\n0 0 1\n")
    with pytest.raises(ValueError, match="holds no times"):
        load_reference(tmp_path / "a.dat", 2, time_dependent=True)


def test_a_time_export_of_the_wrong_dimension_names_the_expansion(tmp_path):
    _comsol_in_time(tmp_path / "b.dat", np.array([0.0, 1.0]), [0, 1], np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"\(4, 3\) \(3 columns, 2 nodes x 2 times from its"):
        load_reference(tmp_path / "b.dat", 1)


# ------------------------------------------------------------------------ on a problem
def _l2(problem, model) -> float:
    evaluation = Evaluator().prepare(
        problem, model, torch.Generator().manual_seed(0), torch.float64, torch.device("cpu")
    )
    return evaluation.l2_relative_error()


@pytest.mark.parametrize("suffix", [".npz", ".npy", ".csv"])
def test_a_file_of_the_problems_own_reference_gives_the_same_l2_error(tmp_path, suffix):
    own = problems.get("laplace")
    x, u = own.test_set()
    path = tmp_path / f"laplace{suffix}"
    if suffix == ".npz":
        np.savez(path, x=x, u=u)
    elif suffix == ".npy":
        np.save(path, np.hstack([x, u[:, None]]))
    else:
        np.savetxt(path, np.hstack([x, u[:, None]]), delimiter=",", fmt="%.17g")
    model = own.build_model((8,), generator=torch.Generator().manual_seed(1)).double()
    problem = with_reference(problems.get("laplace"), path)
    assert problem.has_reference and problem.reference_file.source == str(path.resolve())
    assert _l2(problem, model) == pytest.approx(_l2(own, model), rel=1e-12)


def test_a_problem_without_a_reference_of_its_own_takes_one_from_a_file(tmp_path):
    from tests.helpers import Poisson1D

    class NoReference(Poisson1D):
        name = "poisson-1d-no-reference"
        solution = problems.Problem.solution
        test_points = problems.Problem.test_points

    problem = NoReference()
    assert not problem.has_reference
    x = np.linspace(0, 1, 9)[:, None]
    np.save(tmp_path / "ref.npy", np.hstack([x, np.sin(np.pi * x)]))
    with_reference(problem, tmp_path / "ref.npy")
    assert problem.has_reference and not problem.has_solution
    points, values = problem.reference_set()
    assert np.array_equal(points, x) and np.array_equal(values, np.sin(np.pi * x[:, 0]))
    model = problem.build_model((4,), generator=torch.Generator().manual_seed(0)).double()
    assert _l2(problem, model) > 0


def test_a_file_that_does_not_fit_the_problem_names_both_shapes(tmp_path):
    np.save(tmp_path / "r.npy", np.zeros((4, 3)))
    with pytest.raises(ValueError) as info:
        with_reference(problems.get("poisson-5d"), tmp_path / "r.npy")
    message = str(info.value)
    assert message.startswith("problem 'poisson-5d' (dim 5, 1 output): reference file")
    assert (
        "shape (4, 3)" in message and "expected 6 columns: 5 coordinates then 1 output" in message
    )
    loaded = load_reference(tmp_path / "r.npy", 1, 2)
    with pytest.raises(ValueError, match=r"takes points \(n, 2\) and values \(n, 1\); .* holds "):
        with_reference(problems.get("laplace"), loaded)


# ---------------------------------------------------------------------- config and CLI
def test_the_reference_key_is_made_absolute_and_checked(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = RunConfig.from_dict({"problem": "laplace", "reference": "ref.npy"})
    assert cfg.reference == str(tmp_path / "ref.npy")
    cfg = RunConfig.from_dict({"reference": {"path": "r.dat", "time_dependent": True}})
    assert cfg.reference == {"path": str(tmp_path / "r.dat"), "time_dependent": True}
    with pytest.raises(ValueError, match="reference key 'column' is unknown; allowed: path"):
        RunConfig.from_dict({"reference": {"path": "r.dat", "column": [0]}})
    with pytest.raises(ValueError, match="reference=3 must be a file path or a mapping"):
        RunConfig.from_dict({"reference": 3})


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("~no-such-user-here/r.npy", "cannot be resolved to a file"),
        ("r\x00.npy", "cannot be resolved to a file (embedded null byte)"),
        ("r" * 5000 + ".npy", "cannot be read (File name too long)"),
    ],
)
def test_hostile_paths_are_one_line_value_errors(path, fragment):
    with pytest.raises(ValueError) as info:
        load_reference(path, 1)
    assert fragment in str(info.value) and len(str(info.value)) < 300


def test_set_overrides_give_the_reference_options():
    from glfpinn.config import apply_overrides

    data = apply_overrides({}, ["reference.path=/data/r.dat", "reference.columns=[0, 2, 1]"])
    cfg = RunConfig.from_dict(data)
    assert cfg.reference == {"path": "/data/r.dat", "columns": [0, 2, 1]}


SMALL = ["--steps", "4", "--n-points", "32", "--eval-every", "2", "--quiet"]
SMALL += ["--set", "hidden=[4]", "--resample-every", "2"]


def test_the_cli_records_the_file_and_load_run_rebuilds_it(tmp_path):
    from glfpinn.runs import load_run

    own = problems.get("laplace", grid_size=21)
    x, u = own.test_set()
    np.savez(tmp_path / "ref.npz", x=x, u=2 * u)  # not the problem's own: the file is used
    out = tmp_path / "run"
    args = ["train", "--problem", "laplace", "--set", "problem_params.grid_size=21"]
    assert (
        main([*args, "--reference-file", str(tmp_path / "ref.npz"), "--out", str(out), *SMALL]) == 0
    )
    stored = yaml.safe_load((out / "config.yaml").read_text())
    assert stored["reference"] == str((tmp_path / "ref.npz").resolve())
    run = load_run(out)
    assert run.problem.reference_file.source == stored["reference"]
    points, values = run.problem.reference_set()
    assert np.array_equal(points, x) and np.array_equal(values, 2 * u)
    model = run.model.double()
    assert run.result["l2_relative_error"] == pytest.approx(_l2(run.problem, model), rel=1e-5)


def test_a_python_trainer_records_the_reference_with_its_options(tmp_path):
    import glfpinn
    from glfpinn.runs import load_run

    table = np.hstack([np.zeros((3, 1)), POINTS[:3], VALUES[:3]])  # an extra leading column
    np.save(tmp_path / "r.npy", table)
    problem = with_reference(problems.get("laplace"), tmp_path / "r.npy", columns=[1, 2, 3])
    glfpinn.train(problem, glfpinn.GLF(), out=tmp_path / "run", steps=2, eval_every=2, n_points=16)
    stored = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())
    assert stored["reference"] == {
        "path": str((tmp_path / "r.npy").resolve()),
        "columns": [1, 2, 3],
    }
    rebuilt = load_run(tmp_path / "run").problem.reference_file
    _exact(rebuilt, POINTS[:3], VALUES[:3])


def test_a_bad_reference_file_exits_2_with_one_line_and_no_run(tmp_path):
    np.save(tmp_path / "wide.npy", np.zeros((5, 4)))
    proc = subprocess.run(
        [sys.executable, "-m", "glfpinn", "train", "--problem", "laplace", "--reference-file",
         "wide.npy", "--out", "run", *SMALL],
        capture_output=True, text=True, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "problem 'laplace' (dim 2, 1 output)" in proc.stderr
    assert "shape (5, 4)" in proc.stderr and "expected 3 columns" in proc.stderr
    assert not (tmp_path / "run").exists()


def test_a_missing_reference_file_exits_2(tmp_path, capsys):
    args = ["train", "--problem", "laplace", "--reference-file", str(tmp_path / "no.npz")]
    assert main([*args, "--out", str(tmp_path / "run"), *SMALL]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no.npz' does not exist" in err


# ------------------------------------------------------------------ the PINNacle exports
@pytest.mark.skipif(not PINNACLE.is_dir(), reason="the PINNacle files are not on this machine")
def test_pinnacle_exports_load():
    burgers = load_reference(PINNACLE / "burgers1d.dat", 2)
    assert burgers.points.shape == (101 * 11, 2) and burgers.values.shape == (1111, 1)
    assert np.allclose(np.unique(burgers.points[:, 1]), np.linspace(0, 1, 11))
    assert np.array_equal(burgers.points[:101, 1], np.zeros(101))  # time-major
    assert np.allclose(burgers.values[:101, 0], -np.sin(np.pi * burgers.points[:101, 0]))
    assert load_reference(PINNACLE / "poisson1_cg_data.dat", 2).points.shape == (1246, 2)
    lid = load_reference(PINNACLE / "lid_driven_a4.dat", 2, 3)
    assert lid.values.shape == (10201, 3)
    with pytest.raises(ValueError, match=r"shape \(10201, 5\)"):
        load_reference(PINNACLE / "lid_driven_a4.dat", 2)


@pytest.mark.skipif(not PINNACLE.is_dir(), reason="the PINNacle files are not on this machine")
def test_pinnacle_burgers_agrees_with_ours_to_a_few_percent():
    problem = with_reference(problems.get("burgers"), PINNACLE / "burgers1d.dat")
    x, u = problem.reference_set()
    ours = problems.get("burgers").solution(x)
    difference = np.linalg.norm(ours - u) / np.linalg.norm(u)
    assert difference < 0.03  # measured 1.33e-2: the FEM export's 101 nodes smear the front
