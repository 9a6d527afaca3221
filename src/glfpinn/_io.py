"""Atomic file writes and the on-disk cache: a killed process never leaves a broken file."""

from __future__ import annotations

import io
import json
import math
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "atomic_write_bytes",
    "atomic_write_text",
    "atomic_write_json",
    "read_limited",
    "read_jsonl",
    "json_line",
    "json_safe",
    "is_plain_data",
    "cache_dir",
    "cached_arrays",
]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def make_folders(path: Path, attempts: int = 8) -> None:
    """``path.mkdir(parents=True, exist_ok=True)``, again when a parent it made vanished
    before the last folder: bench workers check their cells' folders side by side, and one
    removes the empty parents its own check made while another is between two mkdirs."""
    for _ in range(attempts - 1):
        try:
            path.mkdir(parents=True, exist_ok=True)
            return
        except FileNotFoundError:
            continue
    path.mkdir(parents=True, exist_ok=True)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    On any failure, an interrupt included, the temporary file is removed and ``path`` keeps its
    old contents; an OSError (a full disk, say) names ``path``, not the temporary file.
    """
    path = Path(path)
    make_folders(path.parent)
    tmp: str | None = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would hide results from other users
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError) and err.errno is not None:
            raise OSError(err.errno, err.strerror, os.fspath(path)) from err
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def is_plain_data(value: Any) -> bool:
    """Whether ``value`` is made of numbers, strings, booleans, None, lists and string-keyed
    dicts only: what JSON and YAML hold as they are (a config, a result)."""
    if value is None or isinstance(value, str | bool | int | float):
        return True
    if isinstance(value, list | tuple):
        return all(is_plain_data(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and is_plain_data(v) for k, v in value.items())
    return False


def json_safe(obj: Any) -> Any:
    """``obj`` with every NaN and infinity replaced by None: JSON has no such numbers, and a
    bare ``NaN`` makes a file that strict parsers (and most languages) refuse."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: json_safe(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.generic):
        return json_safe(obj.item())
    return obj


def json_line(obj: Any) -> str:
    """One line of strict JSON (non-finite numbers as null)."""
    return json.dumps(json_safe(obj), allow_nan=False)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    text = json.dumps(json_safe(obj), indent=2, sort_keys=True, allow_nan=False)
    atomic_write_text(path, text + "\n")


def read_limited(path: str | os.PathLike, limit: int) -> bytes:
    """The bytes of the regular file ``path``, refused in one line naming it when it is larger
    than ``limit`` or not a regular file (``/dev/zero``, a FIFO: both would be read until memory
    runs out, or forever). A missing file raises FileNotFoundError as ``open`` does."""
    with open(path, "rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise ValueError(f"{str(path)!r} is not a regular file")
        data = fh.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"{str(path)!r} is larger than {limit} bytes")
    return data


#: The largest metrics.jsonl read back: about four million records, far beyond any run's.
MAX_JSONL_BYTES = 1 << 30


def read_jsonl(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a JSON-lines file a run appends to (metrics.jsonl). An unfinished last
    line (no newline: its writer was killed mid-write) is left out; any other line that is not
    a JSON object is a one-line ValueError naming the file and the line."""
    text = read_limited(path, MAX_JSONL_BYTES).decode("utf-8", errors="replace")
    lines = text.split("\n")
    lines.pop()  # after the last newline: empty, or a line torn by a kill
    records = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict):
            raise ValueError(f"{str(path)!r} line {number} is damaged (not a JSON object)")
        records.append(record)
    return records


def cache_dir() -> Path:
    """``$GLFPINN_CACHE_DIR`` if set, else ``~/.cache/glfpinn``."""
    env = os.environ.get("GLFPINN_CACHE_DIR")
    return Path(env) if env else Path.home() / ".cache" / "glfpinn"


def cached_arrays(name: str, compute: Callable[[], dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Arrays computed once and kept as ``<cache>/<name>.npz``; a corrupt file is recomputed."""
    path = cache_dir() / f"{name}.npz"
    if path.exists():
        try:
            with np.load(path, allow_pickle=False) as data:
                return {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError):
            pass
    arrays = compute()
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())
    return arrays
