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
"""

from __future__ import annotations

import select
import threading
import time
from collections import deque
from collections.abc import Generator, Iterable
from dataclasses import dataclass

from session_bot.app.ports.mail import Awaiting

STALL = 1.0  # seconds with no answer on any socket before the oldest waiter reads anyway


@dataclass(frozen=True)
class Sleep:
    seconds: float


Step = Awaiting | Sleep
Work = Generator[Step, None, None]


def drive(works: Iterable[Work], stop: threading.Event) -> None:
    """Run every generator to its end in this thread (each handles its own errors)."""
    ready: deque[Work] = deque(works)
    waiting: dict[Work, tuple[int, float]] = {}  # fileno, since when
    sleeping: dict[Work, float] = {}  # until (monotonic)
    while ready or waiting or sleeping:
        while ready:
            work = ready.popleft()
            step = next(work, None)
            if step is None:
                continue  # finished
            if isinstance(step, Awaiting):
                waiting[work] = (step.fileno, time.monotonic())
            else:
                sleeping[work] = time.monotonic() + max(step.seconds, 0.0)
        if not (waiting or sleeping):
            return
        now = time.monotonic()
        wake = [w for w, until in sleeping.items() if until <= now or stop.is_set()]
        for w in wake:
            del sleeping[w]
        ready.extend(wake)
        if ready:
            continue
        nap = min((until - now for until in sleeping.values()), default=STALL)
        if not waiting:
            stop.wait(min(nap, STALL))
            continue
        ready.extend(_answered(waiting, min(nap, STALL)))


def _answered(waiting: dict[Work, tuple[int, float]], timeout: float) -> list[Work]:
    """The waiters whose socket became readable within ``timeout`` (removed from ``waiting``);
    else the oldest one if it has waited ``STALL`` seconds (its read may be buffered already,
    or it waits out the transport's timeout)."""
    by_fd: dict[int, list[Work]] = {}
    blind: list[Work] = []
    for work, (fd, _) in waiting.items():
        (by_fd.setdefault(fd, []) if fd >= 0 else blind).append(work)
    if blind:
        chosen = blind
    else:
        poll = select.poll()  # not select(): a daemon's sockets may lie above FD_SETSIZE
        for fd in by_fd:
            poll.register(fd, select.POLLIN)
        events = poll.poll(max(timeout, 0.0) * 1000)
        chosen = [w for fd, _ in events for w in by_fd[fd]]
        if not chosen:
            oldest = min(waiting, key=lambda w: waiting[w][1])
            chosen = [oldest] if time.monotonic() - waiting[oldest][1] >= STALL else []
    for work in chosen:
        del waiting[work]
    return chosen
