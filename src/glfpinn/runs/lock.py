"""One writer per run directory: an advisory lock (``flock`` on ``DIR/.lock``) held by the
process that writes the run.

The kernel drops a ``flock`` when its holder dies, however it dies, so a lock left by a killed
process is taken over by the next one without any staleness guess; the PID written into the
file only names the holder in the error a second writer gets. Where ``fcntl`` does not exist
(Windows), runs are not locked.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import IO, final

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunLock", "LOCK"]

LOCK = ".lock"


@final
class RunLock:
    """``RunLock(DIR).acquire()`` or a one-line ValueError naming the process that holds it."""

    def __init__(self, directory: str | os.PathLike) -> None:
        self.directory = Path(directory)
        self._file: IO[str] | None = None

    @property
    def held(self) -> bool:
        return self._file is not None

    def acquire(self) -> RunLock:
        if self._file is not None or fcntl is None:
            return self
        self.directory.mkdir(parents=True, exist_ok=True)
        fh = open(self.directory / LOCK, "a+", encoding="utf-8")  # noqa: SIM115 - held open
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read(32).strip() or "?"
            fh.close()
            raise ValueError(
                f"run directory {str(self.directory)!r} is in use by process {holder}; "
                "wait for it to finish or choose another --out"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"{os.getpid()}\n")
        fh.flush()
        self._file = fh
        return self

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
