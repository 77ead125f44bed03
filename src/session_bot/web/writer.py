"""The one thread that runs the subscribe form's database transactions, several at a time.

This process's SQLite writers take turns anyway (``Database.unit``: one mutex, then the write
lock), so a pool of threads adds no throughput to them, only hand-offs: each of its threads
wakes for the mutex and then for the interpreter lock, which the event loop needs after every
socket call. One thread fed by a queue does the transactions one after the other, and the
event loop stays free while one waits (for a delivery's write, another process's lock).

What queued up while a transaction ran is written together: ``write`` gets the batch in
arrival order and records it in one transaction (one commit; one wake-up of the event loop
for all the answers). A batch is at most ``most`` long, so the write lock is never held long
for a delivery claim waiting behind it. If a batch fails, each of its items is written again on
its own, so a failure is only that item's: the request sees the exception as if it had run
the transaction itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")

_Item = tuple[In, "asyncio.Future[Out]"]


class BatchWriter(Generic[In, Out]):
    def __init__(
        self,
        write: Callable[[Sequence[In]], list[Out]],
        *,
        most: int = 32,
        name: str = "web-writer",
    ) -> None:
        self._write = write
        self._most = most
        self._name = name
        self._queue: queue.SimpleQueue[_Item[In, Out] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False

    async def submit(self, item: In) -> Out:
        """``item`` written with what queued up with it; its outcome or exception."""
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._closed:
                raise RuntimeError("the web's writer thread has been closed")
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()
            self._queue.put((item, future))
        return await future

    def _run(self) -> None:
        while (first := self._queue.get()) is not None:
            batch = [first]
            end = False
            while len(batch) < self._most:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    end = True
                    break
                batch.append(more)
            _settle(batch, self._outcomes([item for item, _ in batch]))
            if end:
                return

    def _outcomes(self, items: list[In]) -> list[Out | BaseException]:
        try:
            return list(self._write(items))
        except Exception as exc:  # handed to the waiting request, as if it had run it
            if len(items) == 1:
                return [exc]
        outcomes: list[Out | BaseException] = []
        for item in items:  # one item may have spoilt the batch: each on its own
            try:
                outcomes.extend(self._write([item]))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def close(self) -> None:
        """Write what is queued (the requests still being answered), then end the thread."""
        with self._lock:
            self._closed = True
            thread = self._thread
            if thread is not None:
                self._queue.put(None)
        if thread is not None:
            thread.join()


def _settle(batch: list[_Item[In, Out]], outcomes: list[Out | BaseException]) -> None:
    """Hands each outcome to its request, with one wake-up per event loop."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Out], Out | BaseException]]]
    by_loop = {}
    for (_, future), outcome in zip(batch, outcomes, strict=True):
        by_loop.setdefault(future.get_loop(), []).append((future, outcome))
    for loop, answers in by_loop.items():
        # RuntimeError: that loop has closed, nobody waits for these answers any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_answer, answers)


def _answer(answers: list[tuple[asyncio.Future[Out], Out | BaseException]]) -> None:
    for future, outcome in answers:
        if future.done():  # the request was cancelled meanwhile
            continue
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
