"""The daemon with an update still pending close to its session: the organiser is alerted once
(from a day before the reminder), and subscribers hear nothing until she sends it."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
from pathlib import Path

from session_bot.adapters.clock import ManualClock
from session_bot.core.plan import find_occurrence
from tests.conftest import SEED_INVITATION_AT
from tests.daemon.test_daemon import REMINDER_AT, add_subscribers, make_daemon, make_settings
from tests.support.waiting import wait_for

ORGANISER = "orga@example.org"


def alerts(outbox: Path) -> list[email.message.EmailMessage]:
    """The "still waiting for you" alerts in the outbox (the subscribers' mail beside them)."""
    found = []
    for raw in mailbox.Maildir(str(outbox), create=False):
        msg = email.message_from_bytes(raw.as_bytes(), policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        if "wartet noch auf Sie" in str(msg["Subject"]):
            found.append(msg)
    return found


def test_a_pending_update_near_its_session_alerts_the_organiser_once(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, alert_email=ORGANISER)
    add_subscribers(settings, 3)
    clock = ManualClock(SEED_INVITATION_AT)
    daemon = make_daemon(settings, clock, plan_check_seconds=0.2)
    daemon.start()
    try:
        wait_for(lambda: daemon.store.mailings.delivery_counts() == {"sent": 3}, "invitations")
        assert settings.plan is not None
        text = settings.plan.read_text(encoding="utf-8")
        settings.plan.write_text(
            text.replace("      2025-02-26:\n", '      2025-02-26:\n        start: "14:00"\n', 1),
            encoding="utf-8",
        )
        day = dt.date(2025, 2, 26)
        wait_for(lambda: find_occurrence(daemon.plan, day).start.hour == 14, "the reload")

        # Days ahead: the change waits quietly.
        clock.set(REMINDER_AT - dt.timedelta(days=5))
        assert daemon.run_once("manual")["ok"]
        assert alerts(settings.resolved_outbox) == []
        # A day before the reminder: one alert to the organiser…
        clock.set(REMINDER_AT - dt.timedelta(hours=23))
        assert daemon.run_once("manual")["ok"]
        assert len(alerts(settings.resolved_outbox)) == 1
        # …and not again, not even on the next calendar day (each change alerts once).
        clock.set(REMINDER_AT - dt.timedelta(hours=2))
        assert daemon.run_once("manual")["ok"]
        assert daemon.store.mailings.delivery_counts() == {"sent": 3}  # no update went out
    finally:
        daemon.stop()
    (alert,) = alerts(settings.resolved_outbox)
    assert [a.addr_spec for a in alert["To"].addresses] == [ORGANISER]
    assert str(alert["Subject"]) == "Änderungsmitteilung für den 26.02.2025 wartet noch auf Sie"
    body = alert.get_body(preferencelist=("plain",))
    assert body is not None and "session-bot updates send 2025-02-26" in body.get_content()
