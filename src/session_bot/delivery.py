"""Pushes a frozen mailing's delivery rows through a transport, recording every outcome.

A row is marked ``sending`` before the message is handed to the transport and ``sent`` after the
server's 2xx, so a crash leaves at most the in-flight messages ambiguous and loses none.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field

from session_bot.mailer import Transport
from session_bot.store import DeliveryRow, Store

log = logging.getLogger(__name__)

Personalise = Callable[[DeliveryRow], bytes]
MAX_ATTEMPTS = 8


@dataclass
class DeliveryReport:
    sent: int = 0
    temporary: int = 0
    permanent: int = 0
    skipped: int = 0
    failures: list[str] = field(default_factory=list)

    def add(self, other: DeliveryReport) -> None:
        self.sent += other.sent
        self.temporary += other.temporary
        self.permanent += other.permanent
        self.skipped += other.skipped
        self.failures.extend(other.failures)


def backoff(attempts: int) -> dt.timedelta:
    """1, 2, 4 … minutes, capped at 2 hours."""
    return dt.timedelta(minutes=min(2 ** max(attempts - 1, 0), 120))


def deliver_mailing(
    store: Store,
    transport: Transport,
    mailing_id: int,
    personalise: Personalise,
    *,
    sender: str,
    clock: Callable[[], dt.datetime],
    worker: str = "",
) -> DeliveryReport:
    report = DeliveryReport()
    for row in store.iter_deliverable(mailing_id, clock()):
        if row.subscriber_status != "confirmed":
            # Unsubscribed (or bounced) after the mailing was frozen: they get nothing more.
            store.mark_skipped(row.id, f"subscriber is {row.subscriber_status}")
            report.skipped += 1
            continue
        message = personalise(row)
        store.mark_sending(row.id, clock(), worker)
        result = transport.send(sender, row.email, message)
        now = clock()
        if result.outcome == "sent":
            store.mark_result(row.id, "sent", now, result.code, result.response)
            report.sent += 1
        elif result.outcome == "temporary" and row.attempts + 1 < MAX_ATTEMPTS:
            retry_at = now + backoff(row.attempts + 1)
            store.mark_result(row.id, "pending", now, result.code, result.response, retry_at)
            report.temporary += 1
            log.warning(
                "temporary failure for delivery %s: %s %s", row.id, result.code, result.response
            )
        else:
            store.mark_result(row.id, "failed", now, result.code, result.response)
            report.permanent += 1
            report.failures.append(f"{row.email}: {result.code} {result.response}")
            log.warning(
                "permanent failure for delivery %s: %s %s", row.id, result.code, result.response
            )
    store.finish_mailing_if_done(mailing_id, clock())
    return report
