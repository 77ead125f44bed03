"""Pushes a frozen mailing's delivery rows through parallel connections, recording every outcome.

Each connection runs in a thread of its own and loops: in one transaction it records the results
of its last batch and claims the next few rows (``sending``), then personalises and sends them.
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
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SendResult, Transport
from session_bot.core.errors import MailError
from session_bot.core.records import DeliveryOutcome, DeliveryRow, OutcomeStatus

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger(__name__)

Personalise = Callable[[DeliveryRow], bytes]
Clock = Callable[[], dt.datetime]
MAX_ATTEMPTS = 8


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 … minutes after the n-th failed attempt, capped at 2 hours."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


@dataclass(frozen=True)
class RateLimits:
    """At most ``n`` messages in any window of length ``w`` (sliding: every moment, not per tick)."""

    windows: tuple[tuple[dt.timedelta, int], ...]

    @classmethod
    def of(
        cls,
        *,
        per_second: int | None = None,
        per_minute: int | None = None,
        per_hour: int | None = None,
    ) -> RateLimits | None:
        """From the settings ``rate_per_second``/``_minute``/``_hour``; None when none is set."""
        limits = (
            (dt.timedelta(seconds=1), per_second),
            (dt.timedelta(minutes=1), per_minute),
            (dt.timedelta(hours=1), per_hour),
        )
        windows = tuple((w, n) for w, n in limits if n is not None)
        return cls(windows) if windows else None


@dataclass(frozen=True)
class DeliveryPolicy:
    """Tuning; the defaults suit a real provider, tests shorten the waits."""

    # Rows a connection claims at a time: also how many a crash can leave ambiguous per connection.
    batch: int = 10
    max_attempts: int = MAX_ATTEMPTS
    backoff: Callable[[int], dt.timedelta] = backoff
    # Consecutive "mailbox does not exist" answers that set a subscriber aside as bounced.
    bounce_limit: int = 3
    # Wait within this call for retries or rate-limit slots due this soon; later ones are left
    # for the next run (``DeliveryReport.next_attempt_at`` says when).
    linger: dt.timedelta = dt.timedelta(minutes=5)
    # Seconds between attempts to (re)connect; after the last, the connection gives up.
    reconnect_delays: tuple[float, ...] = (1.0, 5.0, 15.0)
    # A `sending` row of another worker this old is taken to be from a dead process.
    stale_after: dt.timedelta = dt.timedelta(minutes=15)
    # With rate limits: a claimed message reaches the server within this time (a message not
    # started within half of it is released instead), so the limiter can count it until then.
    inflight_bound: dt.timedelta = dt.timedelta(minutes=10)
    poll: float = 1.0  # longest sleep between looks while waiting


@dataclass
class DeliveryReport:
    sent: int = 0
    temporary: int = 0  # rows still waiting for a retry when the call returned
    permanent: int = 0
    skipped: int = 0
    bounced: int = 0  # permanent failures that were "mailbox does not exist"
    retries: int = 0  # temporary failures met along the way
    ambiguous: int = 0  # connections cut after the data, before the answer (may duplicate)
    failures: list[str] = field(default_factory=list)
    next_attempt_at: dt.datetime | None = None
    seconds: float = 0.0

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.temporary += other.temporary
        self.permanent += other.permanent
        self.skipped += other.skipped
        self.bounced += other.bounced
        self.retries += other.retries
        self.ambiguous += other.ambiguous
        self.failures.extend(other.failures)
        self.seconds += other.seconds
        if other.next_attempt_at is not None and (
            self.next_attempt_at is None or other.next_attempt_at < self.next_attempt_at
        ):
            self.next_attempt_at = other.next_attempt_at

    def summary(self) -> str:
        parts = [f"{self.sent} sent"]
        if self.permanent:
            parts.append(f"{self.permanent} failed ({self.bounced} hard bounce(s))")
        if self.skipped:
            parts.append(f"{self.skipped} skipped")
        if self.temporary:
            parts.append(f"{self.temporary} to retry")
        rate = f", {self.sent / self.seconds:.0f}/s" if self.seconds > 0 and self.sent else ""
        return ", ".join(parts) + f" in {self.seconds:.1f} s{rate}"


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
    with _display(progress, mailing_id, todo) as show:
        run.show = show
        threads = [
            threading.Thread(target=run.work, args=(t, i), name=f"deliver-{mailing_id}-{i}")
            for i, t in enumerate(transports)
        ]
        for t in threads:
            t.start()
        try:
            for t in threads:
                t.join()
        except BaseException:
            # Ctrl-C: every connection finishes its message and releases the rest of its batch.
            run.stop.set()
            for t in threads:
                t.join()
            raise
        finally:
            for extra in transports[1:]:
                if extra is not transport:
                    extra.close()
        report = run.finish()
        show.done(report)
    return report


class _Delivery:
    """State shared by the connection threads of one ``deliver_mailing`` call."""

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
        self.lock = threading.Lock()
        self.cursor = 0  # highest row id claimed: fresh claims seek past it
        self.errors: list[BaseException] = []
        self.gave_up: list[MailError] = []  # one per connection that could not be used
        self.connections = 1
        self.show: _Display = _Display(None, mailing_id, 0)

    # --- one connection --------------------------------------------------------------------
    def work(self, transport: Transport, index: int) -> None:
        outcomes: list[DeliveryOutcome] = []
        p = self.policy
        failures = 0
        sweep = True  # look from the first row: due retries and released rows lie behind the cursor
        try:
            while True:
                stopping = self.stop.is_set()
                after = 0 if sweep else self.cursor
                claim = self.store.deliveries.claim(
                    self.mailing_id,
                    clock=self.clock,
                    worker=self.worker,
                    limit=0 if stopping else p.batch,
                    after=after,
                    resume_before=self.started,
                    stale_after=p.stale_after,
                    outcomes=outcomes,
                    bounce_limit=p.bounce_limit,
                    rate=self.windows,
                    inflight_bound=p.inflight_bound,
                )
                outcomes = []
                if stopping:
                    return
                if claim.rows:
                    sweep = False
                    with self.lock:
                        self.cursor = max(self.cursor, claim.rows[-1].id)
                    error = self._send_batch(transport, claim.rows, outcomes)
                    if error is None:
                        failures = 0
                        continue
                    failures += 1
                    # Record the released rows now, so other connections can take them.
                    self.store.deliveries.record_outcomes(outcomes, p.bounce_limit)
                    outcomes = []
                    if failures > len(p.reconnect_delays):
                        log.warning("connection %s gives up: %s", index, error)
                        with self.lock:
                            self.gave_up.append(error)
                        return
                    delay = p.reconnect_delays[failures - 1]
                    log.warning("connection %s: %s; trying again in %.1f s", index, error, delay)
                    self.stop.wait(delay)
                    sweep = True
                    continue
                if claim.wait_until is None:
                    return  # nothing left to send
                wait = (claim.wait_until - self.clock()).total_seconds()
                if wait > p.linger.total_seconds():
                    return  # left for the next run
                if wait > 0 or after == 0:
                    self.stop.wait(min(max(wait, 0.02), p.poll))
                sweep = True
        except BaseException as exc:
            # Hand any failure (a template error in personalise, the database) to the caller's
            # thread; the rows of this batch are released below, never left claimed.
            self._fail(exc)
        finally:
            try:
                self.store.deliveries.record_outcomes(outcomes, p.bounce_limit)
            except BaseException as exc:
                self._fail(exc)

    def _fail(self, exc: BaseException) -> None:
        with self.lock:
            self.errors.append(exc)
        self.stop.set()

    def _send_batch(
        self, transport: Transport, rows: list[DeliveryRow], out: list[DeliveryOutcome]
    ) -> MailError | None:
        """Send the claimed rows in order; rows not attempted are released, whatever happens."""
        recorded: set[int] = set()
        guard = self.policy.inflight_bound / 2
        to_send: list[DeliveryRow] = []
        error: MailError | None = None

        def messages() -> Iterator[tuple[str, bytes]]:
            # Personalised one at a time, as the transport asks (at most one ahead).
            for row in to_send:
                if self.stop.is_set():
                    return
                if self.windows and row.claimed_at and self.clock() - row.claimed_at > guard:
                    return  # too late to start: the limiter counts this claim only so long
                yield row.email, self.personalise(row)

        try:
            for row in rows:
                if row.subscriber_status == "confirmed":
                    to_send.append(row)
                    continue
                # Unsubscribed (or bounced) after the mailing was frozen: nothing more.
                reason = f"subscriber is {row.subscriber_status}"
                out.append(
                    DeliveryOutcome(
                        row.id, row.subscriber_id, "skipped", self.clock(), response=reason
                    )
                )
                recorded.add(row.id)
                self._tally("skipped")
            results = transport.send_many(self.sender, messages())
            try:
                for row, result in zip(to_send, results, strict=False):
                    out.append(self._outcome(row, result))
                    recorded.add(row.id)
            except MailError as exc:
                error = exc
            finally:
                close = getattr(results, "close", None)
                if close is not None:
                    close()
        finally:
            now = self.clock()
            out.extend(
                DeliveryOutcome(r.id, r.subscriber_id, "released", now)
                for r in rows
                if r.id not in recorded
            )
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
        with self.lock:
            r = self.report
            if what == "sent":
                r.sent += 1
            elif what == "skipped":
                r.skipped += 1
            elif what == "retry":
                r.retries += 1
            elif what == "ambiguous":
                r.retries += 1
                r.ambiguous += 1
            else:
                r.permanent += 1
                r.bounced += int(hard_bounce)
                r.failures.append(failure)
            done = r.sent + r.skipped + r.permanent
        if what in ("sent", "skipped", "failed"):
            self.show.advance(done, self.report)

    # --- the end ---------------------------------------------------------------------------
    def finish(self) -> DeliveryReport:
        r = self.report
        r.seconds = (self.clock() - self.started).total_seconds()
        if self.errors:
            raise self.errors[0]
        self.store.mailings.finish_if_done(self.mailing_id, self.clock())
        counts = self.store.mailings.delivery_counts(self.mailing_id)
        r.temporary = counts.get("pending", 0) + counts.get("sending", 0)
        if r.temporary:
            claim = self.store.deliveries.claim(
                self.mailing_id, clock=self.clock, worker=self.worker, limit=0
            )
            r.next_attempt_at = claim.wait_until
        if r.temporary and len(self.gave_up) == self.connections:
            raise MailError(
                f"{self.gave_up[-1]} (mailing {self.mailing_id}: {r.sent} sent in this run, "
                f"{r.temporary} left pending for the next run; nothing was lost)"
            )
        log.info("mailing %s: %s", self.mailing_id, r.summary())
        return r


class _Display:
    """Progress for a human (rich, on stderr) or for the log (a line every 10 s)."""

    def __init__(self, bar: Progress | None, mailing_id: int, total: int) -> None:
        self._bar = bar
        self._task = bar.add_task("deliver", total=total, mailing=mailing_id) if bar else None
        self._mailing_id = mailing_id
        self._total = total
        self._last_log = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, done: int, report: DeliveryReport) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last_log < 10.0:
                return
            self._last_log = now
        log.info(
            "mailing %s: %d/%d done (%d sent, %d failed, %d retries)",
            self._mailing_id,
            done,
            self._total,
            report.sent,
            report.permanent,
            report.retries,
        )

    def done(self, report: DeliveryReport) -> None:
        if self._bar is None:
            return
        self._bar.stop()
        console = self._bar.console
        console.print(f"[bold]mailing {self._mailing_id}[/]: {report.summary()}")
        for failure in report.failures[:10]:
            console.print(f"  [red]failed[/] {failure}", markup=True, highlight=False)
        if len(report.failures) > 10:
            console.print(f"  … and {len(report.failures) - 10} more")


@contextmanager
def _display(progress: bool, mailing_id: int, total: int) -> Iterator[_Display]:
    if not progress:
        yield _Display(None, mailing_id, total)
        return
    # rich only when a human watches: `session-bot --help` and the daemon stay light.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("mailing {task.fields[mailing]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    display = _Display(bar, mailing_id, total)
    bar.start()
    try:
        yield display
    finally:
        bar.stop()
