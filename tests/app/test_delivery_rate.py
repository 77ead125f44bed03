"""Rate limits hold in every sliding window, measured at the SMTP server, across processes."""

from __future__ import annotations

import datetime as dt
import threading

from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.app.delivery import DeliveryReport, RateLimits, deliver_mailing
from tests.support.delivery import (
    SENDER,
    add_subscribers,
    fast_policy,
    frozen_mailing,
    personalise,
    utc_now,
)
from tests.support.smtp_server import SmtpServer

# Short windows keep the test fast; the limiter treats a second, a minute and an hour the same.
LIMITS = RateLimits(((dt.timedelta(seconds=0.4), 4), (dt.timedelta(seconds=1.5), 12)))


def busiest_window(times: list[float], window: float) -> int:
    """The most messages the server received within any window of this length."""
    times = sorted(times)
    return max(sum(1 for t in times[i:] if t < start + window) for i, start in enumerate(times))


def test_no_window_holds_more_than_the_limit_across_processes_and_restarts(
    store: Store,
) -> None:
    add_subscribers(store, 14)
    mailings = [frozen_mailing(store, f"willkommen/2025-0{m}-26") for m in (2, 3, 4)]
    reports: dict[int, DeliveryReport] = {}

    def process(mailing: int, srv: SmtpServer) -> None:
        # Each "process" has a store (engine, connections) and transports of its own.
        own = Store(store.url)
        transport = SmtpTransport(srv.host, srv.port, tls="none")
        try:
            reports[mailing] = deliver_mailing(
                own, transport, mailing, personalise, sender=SENDER, clock=utc_now,
                connections=2, rate=LIMITS, policy=fast_policy(batch=5),
            )  # fmt: skip
        finally:
            transport.close()
            own.close()

    with SmtpServer() as srv:
        first = threading.Thread(target=process, args=(mailings[0], srv))
        second = threading.Thread(target=process, args=(mailings[1], srv))
        first.start()
        second.start()
        first.join()
        # A restart while the other process still sends: the new one inherits the windows.
        third = threading.Thread(target=process, args=(mailings[2], srv))
        third.start()
        second.join()
        third.join()
        times = [m.at for m in srv.handler.messages]
    assert sorted(r.sent for r in reports.values()) == [14, 14, 14]
    assert len(times) == 42
    for window, most in LIMITS.windows:
        assert busiest_window(times, window.total_seconds()) <= most


def test_rate_limits_from_settings() -> None:
    assert RateLimits.of() is None
    limits = RateLimits.of(per_second=10, per_hour=5000)
    assert limits is not None
    assert limits.windows == ((dt.timedelta(seconds=1), 10), (dt.timedelta(hours=1), 5000))
