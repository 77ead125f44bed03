"""The subscriber pages' mails, sent after their responses by a long-lived thread.

A page hands a job (a confirmation, a notice to an address's owner) to the outbox and answers at
once: the time it takes reveals nothing about the address, and no request waits for a mail
server or the Maildir's fsync. The sending thread keeps its transport (an SMTP connection, the
Maildir) while there is work, instead of building one per mail, and ends after
``idle_seconds`` without work, closing it: an idle daemon holds no connection and no thread; the
next job starts a thread again.

One thread by default: with four, a busy ``POST /subscribe`` answered fewer requests (≈ 400–510
instead of ≈ 540–650 a second in ``bench/web.py``), although concurrent fsyncs finish sooner:
every thread that comes back from a system call wants the interpreter lock, which the event
loop needs after each of its socket calls.

A job logs its own failure (the visitor already has the page; nothing is retried). A job that
fails, with a ``SessionBotError`` or anything else, costs its thread the transport, which may be
broken, not the thread itself. ``close`` lets the thread drain what is queued, for at most a
grace period, and logs whatever is left unsent.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Callable

from session_bot.app.ports.subscribe import MailSender
from session_bot.core.errors import SessionBotError

log = logging.getLogger("session_bot.web_subscribe")

Job = Callable[[MailSender], bool]
"""Sends one mail through the transport it is given; False when it failed (and logged why)."""


class ConsentOutbox:
    def __init__(
        self,
        transport: Callable[[], MailSender],
        *,
        threads: int = 1,
        idle_seconds: float = 5.0,
        name: str = "consent-mail",
    ) -> None:
        self._transport = transport
        self._name = name
        self._size = threads
        self._idle_seconds = idle_seconds
        self._jobs: collections.deque[tuple[str, Job]] = collections.deque()
        self._cond = threading.Condition()
        self._workers: set[threading.Thread] = set()
        self._waiting = 0  # threads waiting for a job
        self._closed = False

    def submit(self, what: str, job: Job) -> None:
        """Queue ``job``; ``what`` names it in the log if it is never sent."""
        with self._cond:
            if self._closed:
                log.error("%s not sent: the web app is shutting down", what)
                return
            self._jobs.append((what, job))
            if self._waiting:
                self._cond.notify()
            if len(self._jobs) > self._waiting and len(self._workers) < self._size:
                thread = threading.Thread(
                    target=self._work, name=f"{self._name}-{len(self._workers)}", daemon=True
                )
                self._workers.add(thread)
                thread.start()

    def _next(self) -> tuple[str, Job] | None:
        """The next job; None when this thread should end (closed and drained, or idle)."""
        with self._cond:
            while not self._jobs:
                if self._closed:
                    self._workers.discard(threading.current_thread())
                    return None
                self._waiting += 1
                try:
                    woken = self._cond.wait(self._idle_seconds)
                finally:
                    self._waiting -= 1
                if not woken and not self._jobs:
                    self._workers.discard(threading.current_thread())
                    return None
            return self._jobs.popleft()

    def _work(self) -> None:
        transport: MailSender | None = None
        try:
            while (item := self._next()) is not None:
                what, job = item
                try:
                    if transport is None:
                        transport = self._transport()
                    ok = job(transport)
                except SessionBotError as exc:  # no transport (e.g. the outbox is not writable)
                    log.error("%s not sent: %s", what, exc)
                    ok = False
                except Exception:  # the thread's boundary: one bad job must not end the sending
                    log.exception("%s not sent", what)
                    ok = False
                if not ok and transport is not None:
                    _close(transport)
                    transport = None
        finally:
            if transport is not None:
                _close(transport)

    def close(self, grace: float = 10.0) -> int:
        """Stop taking jobs, let the threads send what is queued for at most ``grace`` seconds,
        then log what is left. Returns how many jobs were left unsent."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
            workers = list(self._workers)
        deadline = time.monotonic() + grace
        for thread in workers:
            thread.join(max(0.0, deadline - time.monotonic()))
        with self._cond:
            left = [what for what, _ in self._jobs]
            self._jobs.clear()
        if left:
            log.error(
                "%d mail(s) not sent at shutdown (the mail server or outbox did not take them "
                "within %.0f s): %s",
                len(left),
                grace,
                "; ".join(left),
            )
        return len(left)


def _close(transport: MailSender) -> None:
    try:
        transport.close()
    except Exception:  # closing what may be broken: nothing to do but say so
        log.warning("closing the consent mails' transport failed", exc_info=True)
