"""One writer per run directory: an advisory lock (``flock`` on ``DIR/.lock``) held by the
process that writes the run.

The kernel drops a ``flock`` when its holder dies, however it dies, so a lock left by a killed
process is taken over by the next one without any staleness guess; the PID written into the
file only names the holder in the error a second writer gets. The file is opened without
following a symbolic link and must be a plain file of its own (no hard link to another name):
a planted ``.lock`` can never redirect that PID into a file outside the run. Where ``fcntl``
does not exist (Windows), runs are not locked.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path
from typing import IO, final

from glfpinn._io import make_folders

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
        make_folders(self.directory)
        fh = os.fdopen(self._open(), "r+", encoding="utf-8")
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

    def _open(self) -> int:
        """The lock file's descriptor; a link or anything but a plain file of its own is a
        one-line ValueError, and nothing is written to it."""
        path = self.directory / LOCK
        flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as err:
            if err.errno != errno.ELOOP:
                raise
            raise ValueError(
                f"{str(path)!r} is a symbolic link; a run's lock never is, and writing it would "
                "change the file it points to: remove it"
            ) from None
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_nlink != 1:
            os.close(fd)
            what = "has another name (a hard link)" if info.st_nlink > 1 else "is no plain file"
            raise ValueError(
                f"{str(path)!r} {what}; a run's lock never has, and writing it would change "
                "that file: remove it"
            )
        return fd

    def release(self) -> None:
        if self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
            self._file.close()
            self._file = None
