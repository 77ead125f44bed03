"""Pushes a frozen mailing's delivery rows through parallel connections, recording every outcome.

In one transaction the process records the outcomes of the rows sent since its last claim and
claims the next rows (``sending``) for all its connections at once: ``connections × batch``
less the rows its connections still hold. Each connection takes rows from that shared queue,
personalises and sends them; the one that finds it empty claims again. One claim for all
connections instead of one each: a quarter of the transactions at 4 connections, for the same
crash bound. One thread drives all the connections (``app.connection_loop``): while a server
reads one connection's message, the next is personalised and written on another.
Rows are streamed from the store in small claims, never held as a list, so memory stays flat at
any list size.

What a crash can cost: the rows in ``sending`` at that moment, at most ``connections × batch``, are
sent again by the next run (the server may or may not have taken them). Nothing is lost: every
other row is either recorded with the server's answer or still ``pending``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections import deque
from collections.abc import Callable, Generator, Iterator, Sequence
from typing import cast

from session_bot.app.connection_loop import Sleep, Work, drive_in_background
from session_bot.app.delivery_policy import (
    MAX_ATTEMPTS,
    DeliveryPolicy,
    DeliveryReport,
    RateLimits,
    backoff,
)
from session_bot.app.delivery_progress import Display, display
from session_bot.app.ports.mail import Awaiting, SendResult, SteppedTransport, Transport
from session_bot.app.ports.store import Store
from session_bot.core.clock import Clock
from session_bot.core.errors import MailError
from session_bot.core.records import DeliveryOutcome, DeliveryRow, OutcomeStatus

log = logging.getLogger("session_bot.delivery")  # the component name admins filter by

Personalise = Callable[[DeliveryRow], bytes]


def deliver_mailing(
    store: Store,
    transport: Transport,
    mailing_id: int,
    personalise: Personalise,
    *,
    sender: str,
    clock: Clock,
    worker: str = "",
    connections: int = 1,
    rate: RateLimits | None = None,
    policy: DeliveryPolicy | None = None,
    progress: bool = False,
    stop: threading.Event | None = None,
) -> DeliveryReport:
    """Send every due row of the mailing over ``connections`` parallel connections.

    ``transport`` is the first connection (the caller closes it); the others are its clones.
    ``stop`` ends the mailing early once set (the rows not sent stay pending).
    ``progress`` shows a rich progress bar and summary on stderr (for a human at a terminal);
    otherwise progress goes to the log. Raises ``MailError`` if no connection could be used
    while rows were left; those rows stay pending for the next run.
    """
    run = _Delivery(
        store, mailing_id, personalise, sender, clock, worker, rate, policy or DeliveryPolicy()
    )
    if stop is not None:
        # SIGTERM in the daemon: each connection finishes its message, the rest stays pending.
        run.stop = stop
    transports = [transport] + [transport.clone() for _ in range(max(connections, 1) - 1)]
    counts = store.mailings.delivery_counts(mailing_id)
    todo = counts.get("pending", 0) + counts.get("sending", 0)
    run.connections = len(transports)
    with display(progress, mailing_id, todo) as show:
        run.show = show
        works = [run.work(t, i) for i, t in enumerate(transports)]
        # Not the caller's thread: Ctrl-C lands there, and each connection finishes its message.
        thread = threading.Thread(
            target=drive_in_background, args=(works, run.stop), name=f"deliver-{mailing_id}"
        )
        thread.start()
        try:
            thread.join()
        except BaseException:
            # Ctrl-C: every connection finishes its message and releases the rest of its batch.
            run.stop.set()
            thread.join()
            raise
        finally:
            for extra in transports[1:]:
                if extra is not transport:
                    extra.close()
        report = run.finish()
        show.done(report)
    return report


class _Delivery:
    """State shared by the connections of one ``deliver_mailing`` call (one thread drives them;
    helper processes have their own)."""

    def __init__(
        self,
        store: Store,
        mailing_id: int,
        personalise: Personalise,
        sender: str,
        clock: Clock,
        worker: str,
        rate: RateLimits | None,
        policy: DeliveryPolicy,
    ) -> None:
        self.store, self.mailing_id, self.personalise = store, mailing_id, personalise
        self.sender, self.clock, self.worker, self.policy = sender, clock, worker, policy
        self.windows: Sequence[tuple[dt.timedelta, int]] = rate.windows if rate else ()
        self.started = clock()
        self.report = DeliveryReport()
        self.stop = threading.Event()
        self.cursor = 0  # highest row id claimed: fresh claims seek past it
        # Claimed for all connections at once: rows no connection has taken yet, rows taken and
        # not yet answered (``held``), and the outcomes the next claim records.
        self.queue: deque[DeliveryRow] = deque()
        self.held = 0
        self.active = 0  # connections still working: the last one out releases the queue
        self.outcomes: list[DeliveryOutcome] = []
        self.errors: list[BaseException] = []
        self.gave_up: list[MailError] = []  # one per connection that could not be used
        self.connections = 1
        self.show: Display = Display(None, mailing_id, 0)

    # --- one connection --------------------------------------------------------------------
    def work(self, transport: Transport, index: int) -> Work:
        p = self.policy
        failures = 0
        sweep = True  # look from the first row: due retries and released rows lie behind the cursor
        self.active += 1
        try:
            while True:
                stopping = self.stop.is_set()
                if self.queue and not stopping:
                    error = yield from self._send_batch(transport)
                    if error is None:
                        failures = 0
                        continue
                    failures += 1
                    # Record the released rows now, so other connections can take them.
                    self._record()
                    if failures > len(p.reconnect_delays):
                        log.warning("connection %s gives up: %s", index, error)
                        self.gave_up.append(error)
                        return
                    delay = p.reconnect_delays[failures - 1]
                    log.warning("connection %s: %s; trying again in %.1f s", index, error, delay)
                    yield Sleep(delay)
                    sweep = True
                    continue
                room = p.batch * self.connections - self.held
                if room <= 0 and not stopping:
                    # The others hold the whole bound: wait for their answers (a millisecond's
                    # poll, not a spin: a distant server takes far longer to answer).
                    yield Sleep(0.001)
                    continue
                after = 0 if sweep else self.cursor
                if stopping:
                    self._release_queue()
                # The claim for every connection of the process: the rows they hold count, so
                # that no more than ``connections × batch`` are ever in `sending` at once.
                claim = self.store.deliveries.claim(
                    self.mailing_id,
                    clock=self.clock,
                    worker=self.worker,
                    limit=0 if stopping else room,
                    after=after,
                    resume_before=self.started,
                    stale_after=p.stale_after,
                    outcomes=self.outcomes,
                    bounce_limit=p.bounce_limit,
                    rate=self.windows,
                    inflight_bound=p.inflight_bound,
                )
                self.outcomes = []
                if stopping:
                    return
                if claim.rows:
                    sweep = False
                    self.cursor = max(self.cursor, claim.rows[-1].id)
                    self.queue.extend(claim.rows)
                    continue
                if claim.wait_until is None:
                    return  # nothing left to send
                wait = (claim.wait_until - self.clock()).total_seconds()
                if wait > p.linger.total_seconds():
                    return  # left for the next run
                if wait > 0 or after == 0:
                    yield Sleep(min(max(wait, 0.02), p.poll))
                sweep = True
        except BaseException as exc:
            # Hand any failure (a template error in personalise, the database) to the caller's
            # thread; the rows it held are released below, never left claimed.
            self._fail(exc)
        finally:
            self.active -= 1
            try:
                if self.stop.is_set() or self.active == 0:
                    self._release_queue()  # the last connection (or stop): nobody takes them
                self._record()
            except BaseException as exc:
                self._fail(exc)

    def _record(self) -> None:
        outcomes, self.outcomes = self.outcomes, []
        self.store.deliveries.record_outcomes(outcomes, self.policy.bounce_limit)

    def _release_queue(self) -> None:
        """Claimed rows no connection has taken: as if never claimed (stop, a failure)."""
        now = self.clock()
        self.outcomes.extend(
            DeliveryOutcome(r.id, r.subscriber_id, "released", now) for r in self.queue
        )
        self.queue.clear()

    def _fail(self, exc: BaseException) -> None:
        self.errors.append(exc)
        self.stop.set()

    def _send_batch(self, transport: Transport) -> Generator[Awaiting, None, MailError | None]:
        """Send rows from the shared queue until it is empty (or stop, or this connection
        fails); every row taken is recorded, or released if it was not attempted."""
        taken: list[DeliveryRow] = []
        given: deque[DeliveryRow] = deque()  # handed to the transport, answer not yet read
        recorded: set[int] = set()
        guard = self.policy.inflight_bound / 2
        error: MailError | None = None

        def done(outcome: DeliveryOutcome) -> None:
            self.outcomes.append(outcome)
            recorded.add(outcome.delivery_id)
            self.held -= 1

        def messages() -> Iterator[tuple[str, bytes]]:
            # Taken and personalised one at a time, as the transport asks (at most one ahead).
            queue = self.queue
            while queue and not self.stop.is_set():
                row = queue[0]
                if self.windows and row.claimed_at and self.clock() - row.claimed_at > guard:
                    self._release_queue()  # too late to start: the limiter counts a claim so long
                    return
                queue.popleft()
                taken.append(row)
                self.held += 1
                if row.subscriber_status != "confirmed":
                    # Unsubscribed (or bounced) after the mailing was frozen: nothing more.
                    reason = f"subscriber is {row.subscriber_status}"
                    done(
                        DeliveryOutcome(
                            row.id, row.subscriber_id, "skipped", self.clock(), response=reason
                        )
                    )
                    self._tally("skipped")
                    continue
                message = self.personalise(row)
                given.append(row)
                yield row.email, message

        try:
            results = _steps(transport, self.sender, messages())
            try:
                for step in results:
                    if isinstance(step, Awaiting):
                        yield step
                        continue
                    row = given.popleft()
                    done(self._outcome(row, step))
            except MailError as exc:
                error = exc
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()
        finally:
            now = self.clock()
            for r in taken:
                if r.id not in recorded:
                    done(DeliveryOutcome(r.id, r.subscriber_id, "released", now))
        return error

    def _outcome(self, row: DeliveryRow, result: SendResult) -> DeliveryOutcome:
        now = self.clock()
        p = self.policy
        if result.outcome == "sent":
            self._tally("sent")
            return DeliveryOutcome(
                row.id,
                row.subscriber_id,
                "sent",
                now,
                result.code,
                result.response,
                clears_bounces=row.hard_bounces > 0,
            )
        attempt = row.attempts + 1
        if result.outcome == "temporary" and attempt < p.max_attempts:
            retry_at = now + p.backoff(attempt)
            log.info(
                "delivery %s to %s: temporary failure (%s %s), retry at %s",
                row.id,
                row.email,
                result.code,
                result.response,
                retry_at.isoformat(timespec="seconds"),
            )
            self._tally("ambiguous" if result.ambiguous else "retry")
            status: OutcomeStatus = "unknown" if result.ambiguous else "pending"
            return DeliveryOutcome(
                row.id, row.subscriber_id, status, now, result.code, result.response, retry_at
            )
        response = result.response
        if result.outcome == "temporary":
            response = f"{response} (gave up after {attempt} attempts)"
        log.warning("delivery %s to %s failed: %s %s", row.id, row.email, result.code, response)
        self._tally("failed", f"{row.email}: {result.code} {response}", result.hard_bounce)
        return DeliveryOutcome(
            row.id,
            row.subscriber_id,
            "failed",
            now,
            result.code,
            response,
            hard_bounce=result.hard_bounce,
        )

    def _tally(self, what: str, failure: str = "", hard_bounce: bool = False) -> None:
        r = self.report
        if what == "sent":
            r.sent += 1
        elif what == "skipped":
            r.skipped += 1
        elif what in ("retry", "ambiguous"):
            r.retries += 1
            r.ambiguous += what == "ambiguous"
        else:
            r.permanent += 1
            r.bounced += int(hard_bounce)
            r.failures.append(failure)
        if what in ("sent", "skipped", "failed"):
            self.show.advance(r.sent + r.skipped + r.permanent, self.report)

    # --- the end ---------------------------------------------------------------------------
    def finish(self) -> DeliveryReport:
        r = self.report
        r.seconds = (self.clock() - self.started).total_seconds()
        if self.errors:
            raise self.errors[0]
        settle(self.store, self.mailing_id, r, clock=self.clock, worker=self.worker)
        if r.temporary and len(self.gave_up) == self.connections:
            raise MailError(
                f"{self.gave_up[-1]} (mailing {self.mailing_id}: {r.sent} sent in this run, "
                f"{r.temporary} left pending for the next run; nothing was lost)"
            )
        log.info("mailing %s: %s", self.mailing_id, r.summary())
        return r


def _steps(
    transport: Transport, sender: str, messages: Iterator[tuple[str, bytes]]
) -> Iterator[SendResult | Awaiting]:
    """The transport's results with its pauses, if it has them (``SteppedTransport``)."""
    stepped = getattr(transport, "send_steps", None)
    if stepped is not None:
        return cast(SteppedTransport, transport).send_steps(sender, messages)
    return transport.send_many(sender, messages)


def settle(store: Store, mailing_id: int, r: DeliveryReport, *, clock: Clock, worker: str) -> None:
    """Close the mailing if nothing is owed; else say in ``r`` how much and when it is next due."""
    store.mailings.finish_if_done(mailing_id, clock())
    counts = store.mailings.delivery_counts(mailing_id)
    r.temporary = counts.get("pending", 0) + counts.get("sending", 0)
    r.next_attempt_at = None
    if r.temporary:
        claim = store.deliveries.claim(mailing_id, clock=clock, worker=worker, limit=0)
        r.next_attempt_at = claim.wait_until


__all__ = [
    "MAX_ATTEMPTS",
    "DeliveryPolicy",
    "DeliveryReport",
    "RateLimits",
    "backoff",
    "deliver_mailing",
    "settle",
]
