"""Reference solutions read from files: FEM exports (COMSOL, FEniCS) and data files.

Most PDEs that matter have no formula; their reference is a table of points and values that a
solver wrote. :func:`load_reference` reads one into a :class:`ReferenceData` of points
``(n, dim)`` and values ``(n, n_outputs)`` (float64), whatever the format:

- ``.npz``: the points under ``x``, ``points`` or ``X`` and the values under ``u``,
  ``values``, ``y`` or ``U``; or a single 2-D array, read as a table;
- ``.npy``: one 2-D array, a table;
- ``.csv``: a comma-separated table; lines starting with ``#`` are comments, and a first row
  of column names is skipped;
- ``.mat``: MATLAB, by the ``.npz`` key conventions (read with ``scipy.io.loadmat``);
- ``.dat`` and ``.txt``: whitespace-separated, ``%`` and ``#`` lines a header: COMSOL's text
  export. A time-dependent COMSOL export holds one row per mesh node, its coordinates and then
  its values at each time, the times written in the header's last line as ``t=`` tokens
  (``% x  u (1) @ t=0  u (1) @ t=0.1 ...``); it is expanded into one row per node and time,
  ``(x..., t)``, time-major (every node at the first time, then every node at the next), so
  that time is the last coordinate, as in every glfpinn problem;
- any of the text formats (``.csv``, ``.dat``, ``.txt``) gzip-compressed, with ``.gz`` after
  its suffix (``burgers1d.dat.gz``): read as the uncompressed file would be (how the PINNacle
  exports ship inside the package, ``glfpinn/problems/data/pinnacle``).

A table's first ``dim`` columns are the points and the next ``n_outputs`` the values: a file
whose columns do not add up to that is refused in one line naming both shapes, as is one
holding NaN or infinite values. ``columns`` picks and orders the table's columns first (e.g.
``[0, 1, 3]`` for x, y and the second of three outputs).

The values are 2-D, one column per output, so that systems of PDEs (several outputs) read
through the same loader; a scalar problem takes ``n_outputs=1``.
"""

from __future__ import annotations

import gzip
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from glfpinn._checks import check_int, short_repr

__all__ = [
    "ReferenceData",
    "load_reference",
    "reference_spec",
    "SUFFIXES",
    "GZIP_SUFFIXES",
    "POINT_KEYS",
    "VALUE_KEYS",
]

#: The file suffixes :func:`load_reference` reads (any case).
SUFFIXES = (".npz", ".npy", ".csv", ".mat", ".dat", ".txt")
#: The text suffixes that may also be read gzip-compressed, with ``.gz`` after them.
GZIP_SUFFIXES = (".csv", ".dat", ".txt")
#: The keys a ``.npz`` or ``.mat`` file may hold its points under, in the order tried.
POINT_KEYS = ("x", "points", "X")
#: The keys a ``.npz`` or ``.mat`` file may hold its values under, in the order tried.
VALUE_KEYS = ("u", "values", "y", "U")

#: A COMSOL column title's time: ``u (1) @ t=0.1`` (also ``t=1E-3``).
_TIME = re.compile(r"@\s*t\s*=\s*([-+0-9.eE]+)")


@dataclass(frozen=True, eq=False)
class ReferenceData:
    """A reference solution from a file: ``points`` ``(n, dim)`` and ``values``
    ``(n, n_outputs)``, float64, and where they came from.

    ``source`` is the file's absolute path and ``columns`` and ``time_dependent`` the options
    it was read with, so that a run records them (:meth:`spec`) and rebuilds the same
    reference from any working folder (as long as the file stays where it was).
    """

    points: np.ndarray
    values: np.ndarray
    source: str
    columns: tuple[int, ...] | None = None
    time_dependent: bool | None = None

    @property
    def dim(self) -> int:
        return int(self.points.shape[1])

    @property
    def n_outputs(self) -> int:
        return int(self.values.shape[1])

    def __len__(self) -> int:
        return int(self.points.shape[0])

    def spec(self) -> str | dict[str, Any]:
        """How a run config names this reference: the path alone, or a mapping with the
        options it was read with (what :func:`reference_spec` reads back)."""
        options: dict[str, Any] = {}
        if self.columns is not None:
            options["columns"] = list(self.columns)
        if self.time_dependent is not None:
            options["time_dependent"] = self.time_dependent
        return {"path": self.source, **options} if options else self.source

    def __repr__(self) -> str:
        return (
            f"ReferenceData({self.source!r}, points={self.points.shape}, "
            f"values={self.values.shape})"
        )


def load_reference(
    path: str | os.PathLike,
    dim: int,
    n_outputs: int = 1,
    *,
    columns: Sequence[int] | None = None,
    time_dependent: bool | None = None,
) -> ReferenceData:
    """The reference solution in the file ``path``, points ``(n, dim)`` and values
    ``(n, n_outputs)`` (see the module for the formats).

    ``dim`` counts every coordinate, time included: a time-dependent COMSOL export of a 1-D
    problem is read with ``dim=2``. ``time_dependent`` says whether to expand a COMSOL export's
    times into rows: None (the default) expands when the header's last line holds ``t=``
    tokens. ``columns`` selects and orders the table's columns (after the time expansion:
    the points, time last, then the values) before it is split into points and values.

    A missing or unreadable file, an unknown suffix, columns that do not match
    ``dim + n_outputs``, or NaN or infinite values are each a one-line ValueError.
    """
    dim = check_int("dim", dim, minimum=1)
    n_outputs = check_int("n_outputs", n_outputs, minimum=1)
    if time_dependent is not None and not isinstance(time_dependent, bool):
        raise ValueError(
            f"time_dependent={short_repr(time_dependent)} is not allowed; "
            "time_dependent must be true, false or null (from the file's header)"
        )
    picked = _check_columns(columns)
    name = f"reference file {short_repr(str(path))}"
    where = _resolved(path, name)
    suffix = where.suffix.lower()
    compressed = suffix == ".gz"
    if compressed:
        suffix = Path(where.stem).suffix.lower()
        if suffix not in GZIP_SUFFIXES:
            raise ValueError(
                f"{name} is gzip-compressed {suffix or '(no suffix)'}; allowed compressed: "
                f"{', '.join(s + '.gz' for s in GZIP_SUFFIXES)}"
            )
    elif suffix not in SUFFIXES:
        raise ValueError(
            f"{name} has an unknown suffix {suffix or '(none)'!r}; allowed: {', '.join(SUFFIXES)}"
            f" (and {', '.join(s + '.gz' for s in GZIP_SUFFIXES)}, gzip-compressed)"
        )
    try:
        if not where.exists():
            raise ValueError(f"{name} does not exist")
        if not where.is_file():
            raise ValueError(f"{name} is not a file")
    except OSError as err:  # a name too long, no permission on a folder above it
        raise ValueError(f"{name} cannot be read ({err.strerror or err})") from None
    if time_dependent and suffix not in (".dat", ".txt"):
        raise ValueError(
            f"{name}: time_dependent=true applies to COMSOL text exports (.dat, .txt), not {suffix}"
        )
    expanded = ""
    try:
        if suffix in (".dat", ".txt"):
            table, spatial, times = _read_comsol(where, time_dependent, name, compressed)
            if times is not None:
                nodes = len(table)
                table = _expand_times(table, spatial, times, name)
                expanded = f", {nodes} nodes x {len(set(times))} times from its header"
        elif suffix == ".npy":
            table = _as_table(np.load(where, allow_pickle=False), name)
        elif suffix == ".csv":
            table = _read_csv(where, compressed)
        else:
            table = _table_of_arrays(_read_arrays(where, suffix), dim, name)
    except FileNotFoundError:
        raise ValueError(f"{name} does not exist") from None
    except (EOFError, UnicodeDecodeError, gzip.BadGzipFile) as err:  # before OSError, its base
        raise ValueError(f"{name} is not a readable {suffix} file ({_one_line(err)})") from None
    except OSError as err:
        raise ValueError(f"{name} cannot be read ({err.strerror or err})") from None
    except ValueError as err:
        if str(err).startswith(name):
            raise
        raise ValueError(f"{name} is not a readable {suffix} file ({_one_line(err)})") from None
    if picked is not None:
        bad = [c for c in picked if c >= table.shape[1]]
        if bad:
            raise ValueError(
                f"{name}: columns={list(picked)} names column {bad[0]}, but the table has "
                f"{table.shape[1]} columns (0 to {table.shape[1] - 1})"
            )
        table = table[:, list(picked)]
    expected = dim + n_outputs
    if table.shape[1] != expected:
        raise ValueError(
            f"{name} holds a table of shape {table.shape} ({table.shape[1]} columns"
            f"{expanded}); expected {expected} columns: {_count(dim, 'coordinate')} then "
            f"{_count(n_outputs, 'output')}"
        )
    if table.shape[0] == 0:
        raise ValueError(f"{name} holds no rows")
    bad_count = int(np.count_nonzero(~np.isfinite(table)))
    if bad_count:
        nan_count = int(np.count_nonzero(np.isnan(table)))
        what = f"{nan_count} NaN" if nan_count == bad_count else f"{bad_count} NaN or infinite"
        raise ValueError(
            f"{name} holds {what} values (in {_rows_with(table)} of its {table.shape[0]} rows); "
            "remove those rows or fill them"
        )
    return ReferenceData(
        points=np.ascontiguousarray(table[:, :dim]),
        values=np.ascontiguousarray(table[:, dim:]),
        source=str(where),
        columns=picked,
        time_dependent=time_dependent,
    )


def reference_spec(spec: Any) -> tuple[str, dict[str, Any]]:
    """A run config's ``reference`` (a path, or a mapping ``{path, columns?,
    time_dependent?}``) as the absolute path and :func:`load_reference`'s options; a value of
    another shape is a one-line ValueError."""
    if isinstance(spec, str | os.PathLike):
        path, options = spec, {}
    elif isinstance(spec, dict) and isinstance(spec.get("path"), str | os.PathLike):
        path = spec["path"]
        options = {k: v for k, v in spec.items() if k != "path"}
        for key in options:
            if key not in ("columns", "time_dependent"):
                raise ValueError(
                    f"reference key {short_repr(key)} is unknown; allowed: path, columns, "
                    "time_dependent"
                )
    else:
        raise ValueError(
            f"reference={short_repr(spec)} must be a file path or a mapping "
            "{path: FILE, columns: [...], time_dependent: true|false}"
        )
    if not str(path):
        raise ValueError("reference='' must name a file")
    return str(_resolved(path, f"reference file {short_repr(str(path))}")), options


# ------------------------------------------------------------------------------- readers
def _resolved(path: str | os.PathLike, name: str) -> Path:
    """``path`` made absolute (``~`` expanded), or a one-line ValueError naming it."""
    try:
        return Path(path).expanduser().resolve()
    except (RuntimeError, ValueError, OSError) as err:  # ~nobody, a NUL byte, a loop of links
        raise ValueError(f"{name} cannot be resolved to a file ({_one_line(err)})") from None


def _check_columns(columns: Sequence[int] | None) -> tuple[int, ...] | None:
    if columns is None:
        return None
    if isinstance(columns, str | bytes) or not isinstance(columns, Sequence) or not columns:
        raise ValueError(
            f"columns={short_repr(columns)} is not allowed; columns must be a non-empty list "
            "of column indices"
        )
    return tuple(check_int("columns[]", c, minimum=0) for c in columns)


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split())[:200] or type(err).__name__


def _as_table(array: Any, name: str) -> np.ndarray:
    """``array`` as a float64 table ``(n, columns)``."""
    table = np.asarray(array)
    if table.dtype.kind not in "biuf":
        raise ValueError(f"{name} holds {table.dtype} data, not numbers")
    table = table.astype(np.float64)
    if table.ndim == 1:
        raise ValueError(
            f"{name} holds a 1-D array of shape {table.shape}; a table is 2-D, one row per "
            "point: its coordinates, then its values"
        )
    if table.ndim != 2:
        raise ValueError(f"{name} holds an array of shape {table.shape}; a table is 2-D")
    return table


def _open_text(path: Path, compressed: bool):
    """``path`` opened for reading text, through gzip when ``compressed``."""
    if compressed:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def _read_csv(path: Path, compressed: bool = False) -> np.ndarray:
    """A comma-separated table; ``#`` comments, and a first row of column names, skipped."""
    with _open_text(path, compressed) as fh:
        lines = [line for line in fh if line.strip() and not line.lstrip().startswith("#")]
    if lines and not _numeric_row(lines[0].split(",")):
        lines = lines[1:]  # a header of column names
    table = np.loadtxt(lines, delimiter=",", ndmin=2, dtype=np.float64)
    return table


def _numeric_row(tokens: list[str]) -> bool:
    try:
        [float(t) for t in tokens]
    except ValueError:
        return False
    return True


def _read_comsol(
    path: Path, time_dependent: bool | None, name: str, compressed: bool = False
) -> tuple[np.ndarray, int, list[float] | None]:
    """A COMSOL text export's table, the number of its spatial columns and the time of each
    value column (None when not expanded in time)."""
    header: list[str] = []
    rows: list[str] = []
    with _open_text(path, compressed) as fh:
        for line in fh:
            stripped = line.strip()
            if not stripped:
                continue
            if stripped.startswith(("%", "#")):
                if not rows:
                    header.append(stripped.lstrip("%#").strip())
                continue
            rows.append(stripped)
    table = np.loadtxt(rows, ndmin=2, dtype=np.float64) if rows else np.empty((0, 0))
    titles = header[-1] if header else ""
    times = [float(t) for t in _TIME.findall(titles)]
    if time_dependent is False or (time_dependent is None and not times):
        return table, table.shape[1], None
    if not times:
        raise ValueError(
            f"{name}: time_dependent=true, but its header's last line holds no times (t=... tokens)"
        )
    return table, table.shape[1] - len(times), times


def _expand_times(table: np.ndarray, spatial: int, times: list[float], name: str) -> np.ndarray:
    """One row per node and time, ``(x..., t, values...)``, time-major; the value columns
    of one time (several outputs) in the order the file gives them."""
    if spatial < 1 or table.shape[1] != spatial + len(times):
        raise ValueError(
            f"{name} holds a table of shape {table.shape}, but its header names "
            f"{len(times)} value columns with times; expected at least 1 coordinate column "
            "before them"
        )
    distinct = list(dict.fromkeys(times))
    by_time = [[spatial + i for i, t in enumerate(times) if t == s] for s in distinct]
    widths = {len(cols) for cols in by_time}
    if len(widths) != 1:
        raise ValueError(
            f"{name}: its header gives different numbers of value columns at different times "
            f"({sorted(widths)})"
        )
    x = table[:, :spatial]
    blocks = [
        np.hstack([x, np.full((len(x), 1), t), table[:, cols]])
        for t, cols in zip(distinct, by_time, strict=True)
    ]
    return np.vstack(blocks)


def _read_arrays(path: Path, suffix: str) -> dict[str, np.ndarray]:
    """The named arrays of a ``.npz`` or ``.mat`` file."""
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    from scipy.io import loadmat  # lazy: scipy is imported only to read a .mat file

    data = loadmat(path)
    return {k: v for k, v in data.items() if not k.startswith("__")}


def _table_of_arrays(arrays: dict[str, np.ndarray], dim: int, name: str) -> np.ndarray:
    """Points and values by the key conventions, or a file's single array, as one table."""
    point_key = next((k for k in POINT_KEYS if k in arrays), None)
    value_key = next((k for k in VALUE_KEYS if k in arrays), None)
    if point_key is None or value_key is None:
        if len(arrays) == 1:
            return _as_table(next(iter(arrays.values())), name)
        held = ", ".join(sorted(arrays)) or "nothing"
        raise ValueError(
            f"{name} holds {held}; expected points under one of {', '.join(POINT_KEYS)} and "
            f"values under one of {', '.join(VALUE_KEYS)} (or a single 2-D table)"
        )
    points = _column_block(arrays[point_key], name, point_key)
    values = _column_block(arrays[value_key], name, value_key)
    if dim == 1 and points.shape[0] == 1 and points.shape[1] == values.shape[0]:
        points = points.T  # a MATLAB row vector of 1-D points
    if values.shape[0] == 1 and values.shape[1] == points.shape[0]:
        values = values.T  # a MATLAB row vector of values
    if points.shape[0] != values.shape[0]:
        raise ValueError(
            f"{name} holds {points.shape[0]} points ({point_key!r}, shape {points.shape}) but "
            f"{values.shape[0]} values ({value_key!r}, shape {values.shape})"
        )
    return np.hstack([points, values])


def _column_block(array: np.ndarray, name: str, key: str) -> np.ndarray:
    """A 1-D array as one column, a 2-D one as it is."""
    block = np.asarray(array)
    if block.dtype.kind not in "biuf":
        raise ValueError(f"{name}: {key!r} holds {block.dtype} data, not numbers")
    block = block.astype(np.float64)
    if block.ndim == 1:
        block = block[:, None]
    if block.ndim != 2:
        raise ValueError(f"{name}: {key!r} has shape {block.shape}; expected 1-D or 2-D")
    return block


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _rows_with(table: np.ndarray) -> int:
    return int(np.count_nonzero(~np.isfinite(table).all(axis=1)))
