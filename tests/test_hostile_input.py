"""Hostile input is refused in one line and bounded time: YAML whose aliases stand for billions
of values, YAML nested thousands deep, oversized files, and values whose repr is unbounded."""

import dataclasses
import subprocess
import sys
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from glfpinn import config
from glfpinn._checks import short_repr
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
