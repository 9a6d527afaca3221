"""Point and value files for ``glfpinn predict``: ``.npy`` or ``.csv`` (comma-separated, no
header), read strictly and written atomically."""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np

from glfpinn._io import atomic_write_bytes

__all__ = ["read_points", "write_values", "SUFFIXES"]

SUFFIXES = (".npy", ".csv")


def _suffix(path: str | os.PathLike, role: str) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise ValueError(f"{role} file {str(path)!r} must end in {' or '.join(SUFFIXES)}")
    return suffix


def read_points(path: str | os.PathLike, dim: int) -> np.ndarray:
    """Points ``(n, dim)`` as float64; a one-line error for a missing, malformed or misshapen
    file."""
    suffix = _suffix(path, "points")
    try:
        if suffix == ".npy":
            # mapped, not read: a header claiming more rows than the file holds (10**12, say)
            # is refused by its size instead of allocated; the copy below reads what is there
            x = np.load(path, mmap_mode="r", allow_pickle=False)
        else:
            x = np.loadtxt(path, delimiter=",", ndmin=2)
    except FileNotFoundError:
        raise ValueError(f"points file {str(path)!r} does not exist") from None
    except OSError as err:
        raise ValueError(f"points file {str(path)!r} cannot be read ({err})") from None
    except (ValueError, EOFError) as err:  # EOFError: an empty or truncated .npy
        raise ValueError(f"points file {str(path)!r} is not a numeric {suffix} ({err})") from None
    try:
        x = np.array(x, dtype=np.float64)
    except (ValueError, TypeError) as err:  # a structured or string dtype
        raise ValueError(f"points file {str(path)!r} is not a numeric {suffix} ({err})") from None
    if dim == 1 and x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise ValueError(
            f"points file {str(path)!r} holds shape {x.shape}; the run takes (n, {dim})"
        )
    if not np.isfinite(x).all():
        raise ValueError(f"points file {str(path)!r} holds non-finite numbers")
    return x


def write_values(path: str | os.PathLike, u: np.ndarray) -> None:
    suffix = _suffix(path, "output")
    buf = io.BytesIO()
    if suffix == ".npy":
        np.save(buf, np.asarray(u))
    else:
        u = np.asarray(u)
        np.savetxt(buf, u if u.ndim == 2 else u.reshape(-1, 1), delimiter=",", fmt="%.17g")
    atomic_write_bytes(path, buf.getvalue())
