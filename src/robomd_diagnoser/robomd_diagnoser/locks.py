"""The run-directory lock: one process at a time writes a campaign's or a sweep's directory.

A campaign (``robomd diagnose``, the diagnoser node) and a sweep (``robomd sweep``) take the same
lock, ``<dir>/.lock`` held with ``flock``, so two runs can never write one store at once. The lock
is released when its holder closes it or exits (also on SIGKILL: the kernel drops it).
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO, Self

LOCK_FILE = ".lock"


class DirectoryBusy(RuntimeError):
    """Another process holds the directory's lock; the message names the directory."""


class DirectoryLock:
    """An exclusive, non-blocking lock on a run directory (created if missing).

    :param directory: the run directory.
    :param busy: the message of :class:`DirectoryBusy` when another process holds it
        (``{dir}`` is replaced by the directory).
    :raises DirectoryBusy: if another process holds the lock.
    """

    def __init__(self, directory: str | Path, busy: str = "another run is using {dir}") -> None:
        self.directory = Path(directory).resolve()
        self.directory.mkdir(parents=True, exist_ok=True)
        self._file: IO[str] | None = (self.directory / LOCK_FILE).open("w")
        try:
            fcntl.flock(self._file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._file.close()
            self._file = None
            raise DirectoryBusy(busy.format(dir=self.directory)) from None

    @property
    def held(self) -> bool:
        """True until :meth:`close`."""
        return self._file is not None

    def close(self) -> None:
        """Release the lock (idempotent)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
