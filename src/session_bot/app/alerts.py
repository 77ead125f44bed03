"""Alert mails to the organiser when session-bot needs them (plain text, German or English).

A session whose invitation is due but which has no topic is held; its organiser gets one alert a
day (per local calendar day of the series, not before the invitation time of day) until the plan
has a topic. A failing run is reported
the same way. Alerts go through the transport the runner uses; nothing here speaks SMTP.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, formataddr, make_msgid
from zoneinfo import ZoneInfo

from session_bot.app.alert_texts import held_text, run_failed_text
from session_bot.app.ports.mail import Transport
from session_bot.app.ports.store import Store
from session_bot.core.errors import MailError
from session_bot.core.plan import Occurrence, Plan

log = logging.getLogger("session_bot.alerts")  # the component name admins filter by

# The store's alert rows are keyed per local day, so "once a day" never drifts with run times.
_KEEP = dt.timedelta(days=400)

# The signature delimiter is "-- " with its trailing space (RFC 3676).
_SIGNATURE = "\n-- \nsession-bot\n"


@dataclass
class Alerter:
    """Sends organiser alerts, at most one per key and local day."""

    store: Store
    transport: Transport
    to: str | None  # None: the series organiser's address from the plan
    sender: str  # envelope sender (bounces)
    from_address: str
    plan_source: str = ""
    console_url: str | None = None  # set when the plan lives in the database (edited there)
    organiser: str | None = None  # fallback recipient of ``notice`` (the plan's first organiser)
    zone: ZoneInfo | None = None  # whose calendar day "once a day" means (the plan's first series)
    clock: Callable[[], dt.datetime] | None = field(default=None, repr=False)  # for ``notice``

    def __call__(self, occ: Occurrence, now: dt.datetime) -> None:
        """The runner's ``on_hold`` hook."""
        self.held(occ, now)

    def held(self, occ: Occurrence, now: dt.datetime) -> bool:
        """Alert about a held session unless one went out today; True if one was sent."""
        local_now = now.astimezone(occ.series.zone)
        hour, minute = (int(x) for x in occ.series.lead.invitation_time.split(":"))
        if local_now.time() < dt.time(hour, minute):
            return False  # no alerts at night: from the invitation time of day on
        local_day = local_now.date()
        if not self.store.counters.alert_due(f"hold:{occ.key}:{local_day}", now, _KEEP):
            return False
        subject, body = held_text(occ, self.plan_source, occ.series.language, self.console_url)
        to = self.to or occ.series.organiser.email
        log.info("alert: session %s held (no topic); telling %s", occ.key, to)
        return self._send(to, subject, body, now)

    def notice(self, subject: str, body: str) -> None:
        """The runner's ``on_alert`` hook (Zoom meeting deleted or changed behind our back)."""
        if self.clock is None:
            raise ValueError(
                "Alerter.notice needs the alerter's clock (wiring.make_alerter(..., clock=))"
            )
        self.send_notice(subject, body, self.clock())

    def send_notice(self, subject: str, body: str, now: dt.datetime) -> bool:
        """Any other alert: at most once a day per subject."""
        day = now.astimezone(self.zone or dt.UTC).date()
        digest = hashlib.sha256(subject.encode()).hexdigest()[:16]
        if not self.store.counters.alert_due(f"notice:{digest}:{day}", now, _KEEP):
            return False
        to = self.to or self.organiser
        if to is None:
            log.warning("alert not mailed (set SESSION_BOT_ALERT_EMAIL): %s", subject)
            return False
        return self._send(to, subject, body, now)

    def run_failed(self, error: Exception, now: dt.datetime, plan: Plan) -> bool:
        """Alert about a failed run, once a day per kind of error."""
        series = plan.series[0]
        local_day = now.astimezone(series.zone).date()
        key = f"run-failed:{type(error).__name__}:{local_day}"
        if not self.store.counters.alert_due(key, now, _KEEP):
            return False
        to = self.to or series.organiser.email
        subject, body = run_failed_text(str(error), series.language)
        log.info("alert: run failed; telling %s", to)
        return self._send(to, subject, body, now)

    def _send(self, to: str, subject: str, body: str, now: dt.datetime) -> bool:
        msg = EmailMessage(policy=SMTP)
        msg["From"] = formataddr(("session-bot", self.from_address))
        msg["To"] = to
        msg["Subject"] = subject
        msg["Date"] = format_datetime(now)
        msg["Message-ID"] = make_msgid("alert", self.from_address.rpartition("@")[2] or "localhost")
        # Vacation responders must not answer a robot.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Auto-Response-Suppress"] = "All"
        msg.set_content(body + _SIGNATURE, charset="utf-8")
        try:
            result = self.transport.send(self.sender, to, msg.as_bytes())
        except MailError as exc:
            log.error("alert to %s not sent: %s", to, exc)
            return False
        if result.outcome != "sent":
            log.error("alert to %s not sent: %s %s", to, result.code, result.response)
            return False
        return True
