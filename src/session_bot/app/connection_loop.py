"""One thread keeping several connections busy: each connection's work is a generator that pauses
where it would wait, and ``drive`` resumes whichever can go on.

Why not a thread per connection: the per-message work is Python (claims, personalising,
recording), so threads only take turns on the GIL, and each turn is a hand-over between threads
(measured: about 17 futex calls per message at 4 connections, and a third more CPU per message
than one connection alone). Here the message of one connection is personalised and written
while the server works on another's.

A connection's generator yields:

- ``Awaiting(fileno)``: its message went out, the answer is not read yet. It is resumed once the
  socket is readable; after ``STALL`` seconds with no socket readable the longest waiting one is
  resumed anyway, and its read then waits within the transport's own timeout (a server that
  stopped answering ends as the transport's error, as before; the other connections wait that
  long too).
- ``Sleep(seconds)``: a pause (a reconnect delay, a rate-limit wait); cut short by ``stop``.
  ``Sleep(0)`` gives way: the answers already in are read before it goes on.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable
from typing import NamedTuple

from session_bot.app.ports.mail import Awaiting

BACKGROUND = 10  # niceness of the thread that drives a mailing (``drive_in_background``)
STALL = 1.0  # seconds with no answer on any socket before the oldest waiter reads anyway


class Sleep(NamedTuple):
    seconds: float


Step = Awaiting | Sleep
Work = Generator[Step, None, None]


def drive(works: Iterable[Work], stop: threading.Event) -> None:
    """Run every generator to its end in this thread (each handles its own errors)."""
    ready: deque[Work] = deque(works)
    waiting = _Waiting()
    sleeping: dict[Work, float] = {}  # until (monotonic)
    while ready or waiting or sleeping:
        while ready:
            work = ready.popleft()
            step = next(work, None)
            if step is None:
                continue  # finished
            if isinstance(step, Awaiting):
                waiting.add(work, step.fileno)
            else:
                sleeping[work] = time.monotonic() + max(step.seconds, 0.0)
        if not (waiting or sleeping):
            return
        if sleeping:
            now = time.monotonic()
            wake = [w for w, until in sleeping.items() if until <= now or stop.is_set()]
            for w in wake:
                del sleeping[w]
            ready.extend(wake)
            if ready:
                if waiting:  # a zero sleep yields to the others: read what has come in
                    ready.extend(waiting.answered(0.0))
                continue
            nap = min(until - now for until in sleeping.values())
        else:
            nap = STALL
        if not waiting:
            stop.wait(min(nap, STALL))
            continue
        ready.extend(waiting.answered(min(nap, STALL)))


def drive_in_background(works: list[Work], stop: threading.Event) -> None:
    """``drive`` at the helpers' low priority: on Linux a thread has its own niceness, so the
    daemon's web pages (its other threads) and a mail server on the same host go first when the
    cores are short. The thread ends with the mailing, and its niceness with it."""
    with contextlib.suppress(OSError, AttributeError):
        me = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, me, max(os.getpriority(os.PRIO_PROCESS, me), BACKGROUND))
    drive(works, stop)


class _Waiting:
    """The connections waiting for an answer, by socket, with one ``poll`` object kept across
    looks (registered as they start waiting): made afresh at each look it cost a sixth of the
    loop's own time."""

    def __init__(self) -> None:
        self._poll = select.poll()  # not select(): a daemon's sockets may lie above FD_SETSIZE
        self._by_fd: dict[int, list[Work]] = {}
        self._since: dict[Work, tuple[int, float]] = {}

    def __bool__(self) -> bool:
        return bool(self._since)

    def add(self, work: Work, fd: int) -> None:
        self._since[work] = (fd, time.monotonic())
        works = self._by_fd.get(fd)
        if works is not None:
            works.append(work)
            return
        self._by_fd[fd] = [work]
        if fd >= 0:
            self._poll.register(fd, select.POLLIN)

    def answered(self, timeout: float) -> list[Work]:
        """The waiters whose socket became readable within ``timeout``; else the oldest one if
        it has waited ``STALL`` seconds (its read may be buffered already, or it waits out the
        transport's timeout). Waiters without a socket (-1) go on at once."""
        if -1 in self._by_fd:
            fds = [-1]
        else:
            fds = [fd for fd, _ in self._poll.poll(max(timeout, 0.0) * 1000)]
        if fds:
            return [w for fd in fds for w in self._take_fd(fd)]
        oldest = min(self._since, key=lambda w: self._since[w][1])
        fd, since = self._since[oldest]
        if time.monotonic() - since < STALL:
            return []
        works = self._by_fd[fd]
        works.remove(oldest)
        del self._since[oldest]
        if not works:
            self._drop_fd(fd)
        return [oldest]

    def _take_fd(self, fd: int) -> list[Work]:
        works = self._by_fd.get(fd, [])
        for w in works:
            del self._since[w]
        self._drop_fd(fd)
        return works

    def _drop_fd(self, fd: int) -> None:
        if self._by_fd.pop(fd, None) is not None and fd >= 0:
            self._poll.unregister(fd)
