"""The run lock: one actor at a time per installation (a file lock next to the SQLite database)."""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from types import TracebackType

from session_bot.errors import LockBusy


class FileLock:
    """An exclusive ``flock``; released by the kernel when the process dies (no stale locks)."""

    def __init__(self, path: Path, what: str = "run") -> None:
        self.path = path
        self.what = what
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
        os.write(fd, f"pid {os.getpid()}".encode())
        self._fd = fd
        return self

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
