"""The SQLite writers' lock: one writer at a time in this process and across its processes.

SQLite lets one connection write at a time; a second one that meets the write lock waits in the
busy handler, which sleeps a millisecond or more between tries (1, 2, 5, 10 ms ...). A mailing
sent by several processes claims a batch about every 2 ms in each, so those sleeps added up
(measured with two processes: about 40 a mailing of 10,000 in each, 1–2 ms each, with all the
connections of the sleeping process idle). Writers of this process queue on a mutex and wake at
once; writers of other processes using the same database queue on ``flock`` of a lock file next
to it, tried every 50–400 µs. A process that dies releases its ``flock`` with its descriptor.

The lock file is not the database file: closing any descriptor of that would drop SQLite's own
POSIX locks of this process (see ``database._keep_private``); ``flock`` locks are separate from
those. Where no lock file can be made (a read-only folder), only the mutex remains and SQLite's
busy handler does the rest, as before.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
import time
from pathlib import Path
from types import TracebackType

LOCK_SUFFIX = "-writer"
_NAPS = (0.00005, 0.0001, 0.0002, 0.0004)  # then 0.4 ms until the deadline


class WriteLock:
    """A re-usable context manager; not re-entrant (``Database`` joins nested writers)."""

    def __init__(self, database: Path | None, wait_seconds: float) -> None:
        self._mutex = threading.Lock()
        self._wait = wait_seconds
        self._fd = -1
        if database is not None:
            with contextlib.suppress(OSError):
                self._fd = os.open(
                    database.with_name(database.name + LOCK_SUFFIX),
                    os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                    0o600,
                )

    def __enter__(self) -> None:
        self._mutex.acquire()
        if self._fd >= 0:
            try:
                self._lock_file()
            except BaseException:
                self._mutex.release()
                raise

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._fd >= 0:
                with contextlib.suppress(OSError):
                    fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            self._mutex.release()

    def _lock_file(self) -> None:
        """Taken, or after ``wait_seconds`` left to SQLite's busy handler (which then reports a
        writer that does not finish, as it did before this lock)."""
        deadline = time.monotonic() + self._wait
        tries = 0
        while True:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return
            except OSError:
                return  # a file system without flock: the busy handler alone
            time.sleep(_NAPS[min(tries, len(_NAPS) - 1)])
            tries += 1

    def close(self) -> None:
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1
