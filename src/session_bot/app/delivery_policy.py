"""How a mailing is delivered: retry backoff, rate limits, the delivery policy, and the report."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field

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


# One process sends a few thousand messages a second; a limit below this needs no second one.
ONE_PROCESS_RATE = 1000.0


def worker_processes(configured: int, cores: int, *, local_server: bool) -> int:
    """The most processes a large mailing may use: ``configured`` if set, else one per core, less
    one for a mail server on this host. It works for every message we send (smtp-sink, the
    lightest there is, took ≈ 65 µs a message on 2 cores); a second process of ours on the core it
    needs made both slower (2 cores: ≈ 9.7k/s with two processes, ≈ 10.7k/s with one)."""
    if configured:
        return configured
    return max(1, cores - 1) if local_server else max(1, cores)


def processes_for(
    owed: int, connections: int, rate: RateLimits | None, *, most: int, threshold: int
) -> int:
    """How many processes deliver a mailing owing ``owed`` messages: one below ``threshold``,
    else up to ``most`` (the cores), never more than the connections (the provider's limit is on
    connections, so they are shared out, not multiplied) and one when the rate limit is slower
    than one process anyway."""
    if owed < threshold or most <= 1 or connections <= 1:
        return 1
    if rate is not None:
        fastest = min(n / w.total_seconds() for w, n in rate.windows)
        if fastest < ONE_PROCESS_RATE:
            return 1
    return min(most, connections)


@dataclass(frozen=True)
class DeliveryPolicy:
    """Tuning; the defaults suit a real provider, tests shorten the waits."""

    # Rows a connection claims at a time: also how many a crash can leave ambiguous per connection
    # (the crash bound is processes × connections × batch; DESIGN.md, "Mail").
    batch: int = 20  # DESIGN.md, "Mail": the trade-off between claim cost and crash bound
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
    # Mailings that could not go out at all this time (cannot be rendered, session gone from the
    # plan), each with why; their rows stay pending and the run says so.
    stuck: list[str] = field(default_factory=list)
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
        self.stuck.extend(other.stuck)
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
        if self.stuck:
            parts.append(f"{len(self.stuck)} mailing(s) could not be sent")
        rate = f", {self.sent / self.seconds:.0f}/s" if self.seconds > 0 and self.sent else ""
        return ", ".join(parts) + f" in {self.seconds:.1f} s{rate}"
