"""The one thread that runs the subscribe form's database transaction.

This process's SQLite writers take turns anyway (``Database.unit``: one mutex, then the write
lock), so a pool of threads adds no throughput to them, only hand-offs: each of its threads
wakes for the mutex and then for the interpreter lock, which the event loop needs after every
socket call. One thread fed by a queue does the same transactions one after the other, and the
event loop stays free while a transaction waits (for a delivery's write, another process's
lock). Measured on ``bench/web.py``: ≈ 540–650 → 670–790 requests/s.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")


class WriterThread:
    def __init__(self, name: str = "web-writer") -> None:
        self._executor = ThreadPoolExecutor(1, name)

    async def run(self, work: Callable[[], T]) -> T:
        """``work()`` in the thread, after what was queued before it; its result or exception."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, work)

    def close(self) -> None:
        """Finish what is queued (the requests still being answered), then end the thread."""
        self._executor.shutdown(wait=True)
