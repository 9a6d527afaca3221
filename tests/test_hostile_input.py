"""Hostile input is refused in one line and bounded time: YAML whose aliases stand for billions
of values, YAML nested thousands deep, oversized files, and values whose repr is unbounded."""

import dataclasses
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glfpinn import config
from glfpinn._checks import short_repr
from glfpinn.cli import main
from glfpinn.config import MAX_YAML_DEPTH, MAX_YAML_NODES, RunConfig, YAMLLimitError, yaml_load

#: 342 bytes standing for 9^9 (387 million) strings once the aliases are expanded.
BILLION_LAUGHS = """\
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
"""


def _glfpinn(*args, cwd):
    # A timeout: before the limits, the billion laughs ran until memory ran out.
    return subprocess.run(
        [sys.executable, "-m", "glfpinn", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


def _one_line_exit_2(proc, fragment):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1, proc.stderr[-2000:]
    assert fragment in proc.stderr


def test_a_billion_laughs_config_is_refused_at_once(tmp_path):
    # Under a valid key, so the error is about the value: its repr alone was the hang.
    cfg = tmp_path / "lol.yaml"
    indented = "".join(f"  {line}\n" for line in BILLION_LAUGHS.splitlines())
    cfg.write_text(f"problem_params:\n{indented}steps: *i\n")
    proc = _glfpinn("train", "--config", str(cfg), "--out", "run", cwd=tmp_path)
    _one_line_exit_2(
        proc,
        f"config file {str(cfg)!r} holds more than {MAX_YAML_NODES} values with its aliases "
        "expanded at line 7",
    )
    assert not (tmp_path / "run").exists()


def test_alias_expansion_is_counted_before_anything_is_built():
    t0 = time.perf_counter()
    with pytest.raises(YAMLLimitError) as err:
        yaml_load(BILLION_LAUGHS)
    assert time.perf_counter() - t0 < 1.0
    assert err.value.problem_mark.line == 5  # f: (line 6, 597,871 values); e: holds 66,430
    # Aliases that stay small are ordinary YAML (a bench file shares parameters this way).
    shared = yaml_load("base: &p {alpha: 1e-3, M: 3}\nruns: [{params: *p}, {params: *p}]\n")
    assert shared["runs"][1]["params"] == {"alpha": 1e-3, "M": 3}


def test_a_recursive_alias_is_refused():
    with pytest.raises(YAMLLimitError, match="recursive alias"):
        yaml_load("a: &a [1, *a]\n")


@pytest.mark.parametrize("depth", [MAX_YAML_DEPTH + 1, 5000, 100_000])
def test_deep_nesting_is_refused_without_recursion_error(depth):
    with pytest.raises(YAMLLimitError, match=f"nests deeper than {MAX_YAML_DEPTH} levels"):
        yaml_load("[" * depth + "]" * depth)
    with pytest.raises(YAMLLimitError, match="nests deeper"):
        yaml_load("- " * depth + "1")  # block style


def test_nesting_up_to_the_limit_loads():
    depth = MAX_YAML_DEPTH - 1  # and a scalar inside: MAX_YAML_DEPTH levels in all
    assert yaml_load("[" * depth + "1" + "]" * depth) is not None


def test_a_deeply_nested_config_is_one_line_from_the_cli(tmp_path):
    cfg = tmp_path / "deep.yaml"
    cfg.write_text("steps: " + "[" * 3000 + "]" * 3000 + "\n")
    proc = _glfpinn("train", "--config", str(cfg), "--out", "run", cwd=tmp_path)
    _one_line_exit_2(proc, f"config file {str(cfg)!r} nests deeper than {MAX_YAML_DEPTH} levels")
    proc = _glfpinn("train", "--set", "hidden=" + "[" * 3000, "--out", "run", cwd=tmp_path)
    _one_line_exit_2(proc, f"nests deeper than {MAX_YAML_DEPTH} levels")


def test_too_many_values_are_refused_even_without_aliases():
    with pytest.raises(YAMLLimitError, match=f"more than {MAX_YAML_NODES} values"):
        yaml_load("[" + ", ".join(["1"] * MAX_YAML_NODES) + "]")


def test_an_oversized_config_file_is_refused_unread(tmp_path, monkeypatch):
    monkeypatch.setattr(config, "MAX_YAML_BYTES", 1000)
    cfg = tmp_path / "big.yaml"
    cfg.write_text("note: " + "x" * 2000 + "\n")
    with pytest.raises(ValueError, match=r"^config file '.*big.yaml' is larger than 1000 bytes$"):
        config.load_yaml(cfg)


def test_a_binary_config_file_is_not_valid_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00")
    with pytest.raises(ValueError, match="is not valid YAML"):
        config.load_yaml(cfg)


def _dag(width: int, depth: int):
    """Nested lists sharing their children: ``width ** depth`` leaves in a few objects."""
    node = ["lol"] * width
    for _ in range(depth - 1):
        node = [node] * width
    return node


@pytest.mark.parametrize(
    "data",
    [
        {"steps": _dag(9, 6)},  # 531,441 leaves: a 3.7 MB repr
        {"steps": "x" * 1_000_000},
        {"hidden": _dag(9, 6)},
        {"loss_weights": {"residual": _dag(9, 6)}},
        {"x" * 1_000_000: 1},
        {"sampler": _dag(9, 6)},
        {"sampler_params": {"alpha": _dag(9, 6)}},
        {"checkpoint_every": -(10**3000)},
    ],
)
def test_error_messages_never_print_an_unbounded_value(data):
    t0 = time.perf_counter()
    with pytest.raises(ValueError) as err:
        RunConfig.from_dict(data)
    assert len(str(err.value)) < 300
    assert time.perf_counter() - t0 < 1.0


def test_short_repr_is_bounded_in_length_and_time():
    t0 = time.perf_counter()
    text = short_repr(_dag(9, 9))  # 387 million leaves
    assert len(text) <= 80 and text.startswith("[[[")
    assert time.perf_counter() - t0 < 0.1
    assert short_repr("ten") == "'ten'" and short_repr(2.5) == "2.5"
    long = short_repr("/tmp/" + "a" * 500 + "/config.yaml")
    assert len(long) == 80 and long.startswith("'/tmp/aaa") and long.endswith("config.yaml'")


@pytest.mark.parametrize("value", ["1" + "0" * 5000, "2001-02-30"])
def test_a_scalar_python_cannot_hold_is_a_config_error_naming_the_file(tmp_path, value):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"steps: {value}\n")
    with pytest.raises(ValueError, match=r"^config file '.*c.yaml' holds a value that cannot be"):
        config.load_yaml(cfg)


# ------------------------------------------------------------------ property-based fuzzing

_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
_KEYS = st.sampled_from([f.name for f in dataclasses.fields(RunConfig)]) | st.text(max_size=10)


@settings(max_examples=300, deadline=None)
@given(data=st.dictionaries(_KEYS, _VALUES, max_size=6))
def test_any_mapping_is_a_config_or_a_one_line_error(data):
    """Random keys (mostly real ones) with random values of every YAML type: the loader either
    builds a run config or refuses in one bounded line, never another exception."""
    try:
        RunConfig.from_dict(data)
    except (ValueError, TypeError) as err:
        message = str(err)
        assert message and "\n" not in message and len(message) <= 1000


@settings(max_examples=300, deadline=None)
@given(text=st.text(max_size=200) | st.binary(max_size=200).map(lambda b: b.decode("latin-1")))
def test_any_file_is_a_mapping_or_a_one_line_error(tmp_path_factory, text):
    """Random text and bytes as a config file: load_yaml gives a mapping or one line naming the
    file, never a YAML, Unicode or recursion error escaping."""
    path = tmp_path_factory.mktemp("fuzz") / "c.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        assert isinstance(config.load_yaml(path), dict)
    except ValueError as err:
        assert str(path) in str(err) and "\n" not in str(err)


# ------------------------------------------------ a run directory from a stranger is data
#: Import paths a hostile config.yaml may name, each leaving ``PWNED`` if its code ever runs:
#: a shell command, a file whose body writes it, a module of the standard library.
def _hostile(folder):
    marker = folder / "PWNED"
    (folder / "evil.py").write_text(
        f"import pathlib\npathlib.Path({str(marker)!r}).touch()\nclass Evil:\n    pass\n"
    )
    return marker, [
        ("os:system", {"command": f"touch {marker}"}),
        ("subprocess:run", {"args": ["touch", str(marker)]}),
        ("builtins:exec", {"source": f"open({str(marker)!r}, 'w')"}),
        (f"{folder / 'evil.py'}:Evil", {}),
        ("./evil.py:Evil", {}),
    ]


@pytest.fixture(scope="module")
def stranger_run(tmp_path_factory):
    """A finished built-in run, copied and made hostile by each example."""
    from glfpinn.cli import main

    out = tmp_path_factory.mktemp("stranger") / "run"
    args = ["--problem", "burgers", "--steps", "10", "--n-points", "32", "--hidden", "4"]
    assert main(["train", *args, "--no-compile", "--quiet", "--out", str(out)]) == 0
    return out


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    field=st.sampled_from(["problem", "sampler", "model", "mix"]),
    which=st.integers(0, 4),
    forged=st.booleans(),
)
def test_no_import_path_in_a_run_directory_runs_without_trust(
    stranger_run, tmp_path_factory, field, which, forged
):
    """Whatever import path a config.yaml names, in whichever field, and whether or not its
    checkpoint was forged to agree: reading, loading and checking the run for --overwrite
    never run it, and loading ends in the run or a one-line error."""
    import shutil

    import torch
    import yaml

    from glfpinn.runs import fingerprint as fp
    from glfpinn.runs import load_run, read_config
    from glfpinn.runs.directory import check_mode

    folder = tmp_path_factory.mktemp("hostile")
    marker, paths = _hostile(folder)
    spec, params = paths[which]
    run = folder / "run"
    shutil.copytree(stranger_run, run)
    data = yaml.safe_load((run / "config.yaml").read_text())
    if field == "mix":
        part = {"sampler": spec, "fraction": 0.5, "params": params}
        data["sampler"] = "mix"
        data["sampler_params"] = {"parts": [part, {"sampler": "uniform", "fraction": 0.5}]}
    elif field == "model":
        data.update(model=spec, model_params=params, hidden=None)
    else:
        data.update({field: spec, f"{field}_params": params})
    (run / "config.yaml").write_text(yaml.safe_dump(data))
    if forged:
        state, record = fp.unseal(torch.load(run / "checkpoint.pt", weights_only=True), "x")
        record["config"] = fp.fingerprint(data)
        torch.save(fp.seal(state, record["config"], record["parts"]), run / "checkpoint.pt")
    read_config(run)
    check_mode(run, "overwrite")
    try:
        load_run(run)
    except ValueError as err:
        assert "\n" not in str(err)
    assert not marker.exists()
    assert not any(name.startswith("glfpinn_plugin_evil") for name in sys.modules)


_ENTRIES = st.sampled_from(
    ["config.yaml", "metrics.jsonl", "result.json", "checkpoint.pt", "snapshots", "plots",
     ".lock", "error.txt", ".result.json.x1.tmp", "notes.txt", "src", "README.md"]
)  # fmt: skip


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(entries=st.dictionaries(_ENTRIES, st.sampled_from(["file", "dir", "link"]), max_size=7))
def test_overwrite_deletes_a_run_and_nothing_else(tmp_path_factory, entries):
    """Any folder: --overwrite either refuses it untouched or empties a folder that held only
    what a run writes; a link's target is never changed, a foreign file never deleted."""
    from glfpinn.runs.directory import RUN_NAMES, prepare

    root = tmp_path_factory.mktemp("folder")
    victim = root / "victim"
    victim.write_text("precious\n")
    run = root / "run"
    run.mkdir()
    for name, kind in entries.items():
        if kind == "file":
            (run / name).write_text("x\n")
        elif kind == "dir":
            (run / name).mkdir()
            (run / name / "inside").write_text("x\n")
        else:
            (run / name).symlink_to(victim)
    before = sorted(p.name for p in run.iterdir())
    try:
        prepare(run, "overwrite")
    except ValueError as err:
        assert "\n" not in str(err)
        assert sorted(p.name for p in run.iterdir()) == before  # refused: untouched
    else:
        assert all(name in RUN_NAMES or name.endswith(".tmp") for name in before)
        assert {p.name for p in run.iterdir()} <= {".lock"}
    assert victim.read_text() == "precious\n"


# --- damaged or forged files of a run: one line naming the file, exit status 2 ---------------


TINY = ["--problem", "allen-cahn", "--n-points", "32", "--hidden", "4", "--steps", "5"]
TINY += ["--eval-every", "5", "--no-compile", "--quiet", "--set", "snapshot_every=5"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A finished 5-step run; each test damages its own copy."""
    out = tmp_path_factory.mktemp("trained") / "run"
    assert main(["train", *TINY, "--out", str(out)]) == 0
    return out


@pytest.fixture
def run_dir(trained, tmp_path):
    import shutil

    return Path(shutil.copytree(trained, tmp_path / "run"))


def _one_line(capsys, code, status, *fragments):
    err = capsys.readouterr().err
    assert code == status, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err, err


def test_a_zero_byte_npy_is_refused_naming_it(run_dir, tmp_path, capsys):
    points = tmp_path / "empty.npy"
    points.write_bytes(b"")
    code = main(
        ["predict", str(run_dir), "--points", str(points), "--out", str(tmp_path / "u.npy")]
    )
    _one_line(capsys, code, 2, f"points file {str(points)!r} is not a numeric .npy")


def test_a_forged_npy_header_is_refused_by_size_not_allocated(run_dir, tmp_path, capsys):
    points = tmp_path / "forged.npy"
    with open(points, "wb") as fh:  # a header claiming 10**12 rows, then 16 bytes
        np.lib.format.write_array_header_1_0(
            fh, {"descr": "<f8", "fortran_order": False, "shape": (10**12, 2)}
        )
        fh.write(b"\0" * 16)
    code = main(
        ["predict", str(run_dir), "--points", str(points), "--out", str(tmp_path / "u.npy")]
    )
    _one_line(capsys, code, 2, f"points file {str(points)!r} is not a numeric .npy")
    assert not (tmp_path / "u.npy").exists()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
@pytest.mark.parametrize("name", ["config.yaml", "result.json", "metrics.jsonl"])
def test_a_run_file_pointing_at_dev_zero_is_refused_unread(run_dir, capsys, name):
    (run_dir / name).unlink()
    (run_dir / name).symlink_to("/dev/zero")  # read whole, it would fill the memory
    if name == "config.yaml":
        code = main(["predict", str(run_dir), "--points", "p.npy", "--out", "u.npy"])
        _one_line(capsys, code, 2, "config.yaml", "is not a regular file")
    elif name == "metrics.jsonl":
        from glfpinn.runs import load_run

        with pytest.raises(ValueError, match="metrics.jsonl' is not a regular file"):
            load_run(run_dir).evaluations()
    else:  # an unreadable result is an unfinished run, which a resume finishes
        from glfpinn.runs import read_result

        assert read_result(run_dir) is None


def test_a_torn_metrics_line_names_the_file_and_line(run_dir):
    from glfpinn.runs import load_run

    metrics = run_dir / "metrics.jsonl"
    whole = metrics.read_text()
    metrics.write_text(whole + '{"event": "ev')  # a torn last line: what a kill leaves
    assert len(load_run(run_dir).evaluations()) == 1
    lines = whole.splitlines()
    metrics.write_text("\n".join([lines[0][:10], *lines[1:]]) + "\n")  # torn in the middle
    with pytest.raises(ValueError, match=r"metrics.jsonl' line 1 is damaged \(not a JSON object\)"):
        load_run(run_dir).evaluations()


def test_a_damaged_snapshot_is_one_line_naming_it(run_dir, capsys):
    (snapshot,) = (run_dir / "snapshots").glob("*.npz")
    snapshot.write_bytes(b"PK\x03\x04 not a zip")
    code = main(["plot", str(run_dir), "--out", str(run_dir / "figures")])
    _one_line(capsys, code, 2, f"snapshot {str(snapshot)!r} is damaged (BadZipFile)")


def test_a_checkpoint_without_points_is_one_line_naming_it(run_dir, tmp_path, capsys):
    state = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    del state["points"]
    torch.save(state, run_dir / "checkpoint.pt")
    np.save(tmp_path / "p.npy", np.zeros((3, 2)))
    code = main(["predict", str(run_dir), "--points", str(tmp_path / "p.npy"), "--out", "u.npy"])
    _one_line(capsys, code, 2, "checkpoint.pt' is damaged (it holds no training points)")


WRONG_MODEL = """
import torch


def too_wide(problem):
    return torch.nn.Sequential(torch.nn.Linear(problem.dim + 1, 4), torch.nn.Tanh(),
                               torch.nn.Linear(4, 1))


def three_outputs(problem):
    return torch.nn.Linear(problem.dim, 3)
"""


@pytest.mark.parametrize(
    "factory, fragment",
    [
        ("too_wide", "does not take this problem's points, a tensor of shape (n, 2)"),
        ("three_outputs", "returns (2, 3) for 2 points; it must return one value per point"),
    ],
)
def test_a_model_of_the_wrong_shape_is_refused_before_out_is_made(
    tmp_path, capsys, factory, fragment
):
    (tmp_path / "nets.py").write_text(WRONG_MODEL)
    out = tmp_path / "deep" / "run"
    code = main(
        [
            "train",
            *TINY[:2],
            "--steps",
            "5",
            "--no-compile",
            "--quiet",
            "--model",
            f"{tmp_path / 'nets.py'}:{factory}",
            "--out",
            str(out),
        ]
    )
    _one_line(capsys, code, 2, fragment)
    assert not (tmp_path / "deep").exists()


BAD_SAMPLERS = """
import torch

from glfpinn import Resampled, Sampler


class NoPoints(Sampler):
    def initial_points(self, n, domain, generator, dtype):
        return domain.sample(n, generator, dtype=dtype)[:0]

    def resample(self, ctx, state):
        return Resampled(ctx.points[:0], state)


class IntegerPoints(Sampler):
    def resample(self, ctx, state):
        return Resampled(ctx.points.round().long(), state)
"""


@pytest.mark.parametrize(
    "sampler, fragment",
    [
        ("NoPoints", "sampler 'PLUGIN:NoPoints' returned no points (shape (0, 2))"),
        ("IntegerPoints", "returned points of dtype torch.int64; collocation points must be"),
    ],
)
def test_a_sampler_returning_no_or_integer_points_is_refused_by_name(
    tmp_path, capsys, sampler, fragment
):
    plugin = tmp_path / "bad_samplers.py"
    plugin.write_text(BAD_SAMPLERS)
    code = main(
        [
            "train",
            *TINY[:4],
            "--steps",
            "5",
            "--resample-every",
            "2",
            "--no-compile",
            "--quiet",
            "--sampler",
            f"{plugin}:{sampler}",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    _one_line(capsys, code, 2, fragment.replace("PLUGIN", str(plugin)))


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), ("MemoryError", 1)])
def test_ctrl_c_or_no_memory_while_the_command_imports_is_one_line(tmp_path, sig, status):
    """A stand-in for torch, first on the path, that is interrupted (a real SIGINT to the
    process) or runs out of memory while it imports, as the real one can in the first second."""
    fake = tmp_path / "fake" / "torch"
    fake.mkdir(parents=True)
    body = (
        "import os, signal, time\nos.kill(os.getpid(), signal.SIGINT)\ntime.sleep(5)\n"
        if sig == signal.SIGINT
        else "raise MemoryError\n"
    )
    (fake / "__init__.py").write_text(body)
    src = str(Path(__file__).parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{src}"}
    script = tmp_path / "bin" / "glfpinn"  # the console script pip writes
    script.parent.mkdir()
    script.write_text("import sys\nfrom glfpinn.cli import main\nsys.exit(main())\n")
    for command in (
        [sys.executable, "-m", "glfpinn", "list"],
        [sys.executable, str(script), "list"],
    ):
        # SIGINT's default disposition, as in a terminal: a suite started in the background
        # (nohup, `&` in a script) hands its children SIGINT ignored, and Python then never
        # raises KeyboardInterrupt
        proc = subprocess.run(
            command,
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        assert proc.returncode == status, proc.stderr
        want = "glfpinn: interrupted" if status == 130 else "glfpinn: out of memory: while starting"
        assert proc.stderr.startswith(want) and len(proc.stderr.splitlines()) == 1, proc.stderr


#: The start of every .npy file (format 1.0), so the fuzz below reaches the header's parser.
NPY_MAGIC = b"\x93NUMPY\x01\x00"


@settings(max_examples=200, deadline=None)
@given(data=st.binary(max_size=300) | st.binary(max_size=300).map(NPY_MAGIC.__add__))
def test_any_bytes_as_a_points_file_are_points_or_a_one_line_error(tmp_path_factory, data):
    """Random bytes, and forged headers, as `glfpinn predict --points`: finite points (n, 2) or
    one line naming the file; never an EOFError, a MemoryError or an allocation first."""
    from glfpinn._points import read_points

    path = tmp_path_factory.mktemp("fuzz") / "p.npy"
    path.write_bytes(data)
    try:
        x = read_points(path, 2)
    except ValueError as err:
        assert str(path) in str(err) and "\n" not in str(err)
    else:
        assert x.ndim == 2 and x.shape[1] == 2 and np.isfinite(x).all()


@settings(max_examples=200, deadline=None)
@given(text=st.text(max_size=300))
def test_any_metrics_file_is_records_or_a_one_line_error_naming_it(tmp_path_factory, text):
    """Random text as a run's metrics.jsonl: a list of records, or one line naming the file and
    the damaged line."""
    from glfpinn._io import read_jsonl

    path = tmp_path_factory.mktemp("fuzz") / "metrics.jsonl"
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    try:
        records = read_jsonl(path)
    except ValueError as err:
        assert str(path) in str(err) and "line" in str(err) and "\n" not in str(err)
    else:
        assert all(isinstance(r, dict) for r in records)
