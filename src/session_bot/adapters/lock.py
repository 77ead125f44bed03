"""Locks that let one actor at a time act: a file lock next to the SQLite database (here), or a
PostgreSQL advisory lock (``leader.AdvisoryLock``) when the database is shared by several hosts."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType
from typing import Protocol

from session_bot.core.errors import LockBusy


class RunLock(Protocol):
    """What the runner's callers need from a lock, whichever kind it is."""

    def acquire(self, timeout: float = 0.0, poll: float = 0.2) -> RunLock: ...

    def release(self) -> None: ...

    def __enter__(self) -> RunLock: ...

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None: ...


class FileLock:
    """An exclusive ``flock``; released by the kernel when the process dies (no stale locks).

    The file says who holds it: ``pid N`` and, if given, ``note`` (e.g. ``on HOST since T``).
    """

    def __init__(self, path: Path, what: str = "run", note: str = "") -> None:
        self.path = path
        self.what = what
        self.note = note
        self._fd: int | None = None

    def acquire(self, timeout: float = 0.0, poll: float = 0.2) -> FileLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    holder = self.path.read_text(errors="replace").strip() or "another process"
                    os.close(fd)
                    raise LockBusy(
                        f"another session-bot {self.what} is active ({holder}; lock {self.path}). "
                        f"Waited {timeout:.0f} s. Try again when it has finished, or stop it first."
                    ) from None
                time.sleep(poll)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()}{' ' + self.note if self.note else ''}".encode())
        self._fd = fd
        return self

    def holder(self) -> str | None:
        """What the holder wrote into the file, or None when nobody holds the lock.

        Looks with a shared lock for an instant: a process acquiring at that very moment waits
        a poll longer (``acquire`` with a timeout rides over it).
        """
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return None
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            except BlockingIOError:
                return self.path.read_text(errors="replace").strip() or "another process"
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        finally:
            os.close(fd)

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> FileLock:
        return self if self._fd is not None else self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
