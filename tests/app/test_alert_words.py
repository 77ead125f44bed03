"""Alerts speak wholly the organiser's language (the series'), and the Zoom alert fires only for a
change made in Zoom — not after the organiser moved the session in the plan (issue 19).

Runs go through the real runner against the Zoom sandbox; alerts through the real alerter to a
real SMTP server, read as the organiser reads them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.app.alert_texts import (
    held_text,
    run_failed_text,
    stuck_text,
    zoom_changed_text,
    zoom_deleted_text,
)
from session_bot.core.meeting import MeetingRequest
from session_bot.core.plan import find_occurrence, parse_plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from tests.support.settings import make_settings
from tests.support.smtp_server import SmtpServer

BERLIN = ZoneInfo("Europe/Berlin")
ALERTS_TO = "orga-alerts@example.org"
SUBSCRIBER = "anna@example.org"
INVITATION_AT = dt.datetime(2025, 6, 22, 9, 0, tzinfo=BERLIN)  # 3 days ahead, 09:00
SESSION = dt.date(2025, 6, 25)

# Words that give a text away as the other language.
ENGLISH = (" the ", " and ", " was ", " of ", " is ", "Hello", " to ")
GERMAN = (" der ", " die ", " und ", " wurde ", " ist ", "Hallo", " zum ")


def plan_text(*, language: str = "de", start: str = "12:30") -> str:
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYDAY=-1WE"
    starts_on: 2025-06-01
    until: 2025-06-30
    start: "12:30"
    timezone: Europe/Berlin
    language: {language}
    updates: automatic
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 3
      invitation_time: "09:00"
    texts:
      translations:
        en:
          title: "Welcome: Online Exchange"
    sessions:
      2025-06-25:
        topic: "Wohnen statt Unterbringen"
        start: "{start}"
"""


def assert_wholly(language: str, *texts: str) -> None:
    other = ENGLISH if language == "de" else GERMAN
    for text in texts:
        found = [w for w in other if w in text]
        assert not found, f"{found} in a {language} text:\n{text}"


class Organiser:
    """One series run step by step; the organiser's alert mails as she reads them."""

    def __init__(
        self, settings: Settings, store: Store, sandbox: ZoomSandbox, smtp: SmtpServer,
        clock: ManualClock, language: str,
    ) -> None:  # fmt: skip
        self.settings, self.store, self.sandbox, self.smtp, self.clock = (
            settings, store, sandbox, smtp, clock,
        )  # fmt: skip
        self.language = language
        self.start = "12:30"

    def run(self, at: dt.datetime) -> None:
        self.clock.set(at)
        plan = parse_plan(plan_text(language=self.language, start=self.start), "plan.yaml")
        zoom = wiring.sandbox_zoom(self.settings, self.store, self.clock, self.sandbox)
        transport = SmtpTransport(self.smtp.host, self.smtp.port, tls="none")
        runner = wiring.build_runner(self.settings, plan, self.store, zoom, self.clock, transport)
        runner.on_alert = wiring.make_alerter(
            self.settings, plan, self.store, transport, self.clock
        ).notice
        try:
            runner.run("test")
        finally:
            transport.close()

    def alerts(self) -> list[EmailMessage]:
        return [m.message() for m in self.smtp.handler.to(ALERTS_TO)]

    def mails(self) -> list[str]:
        return [str(m.message()["Subject"]) for m in self.smtp.handler.to(SUBSCRIBER)]

    def change_in_zoom(self, start: dt.datetime) -> int:
        """Somebody moves the meeting in Zoom itself (not through the plan)."""
        (meeting_id,) = self.sandbox.meetings
        zoom = wiring.sandbox_zoom(self.settings, self.store, self.clock, self.sandbox)
        zoom.update_meeting(
            meeting_id,
            MeetingRequest(topic="Umbenannt", agenda="x", start=start, duration=30,
                           timezone="Europe/Berlin"),
        )  # fmt: skip
        return meeting_id


@pytest.fixture(params=["de", "en"])
def organiser(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Organiser]:
    settings = make_settings(tmp_path, plan=tmp_path / "plan.yaml", alert_email=ALERTS_TO)
    store = wiring.open_store(settings)
    t0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    store.subscribers.add(
        SUBSCRIBER, name="Anna", language="de", status="confirmed", now=t0, confirmed_at=t0
    )
    clock = ManualClock(INVITATION_AT)
    with (
        ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox,
        SmtpServer() as smtp,
    ):
        yield Organiser(settings, store, sandbox, smtp, clock, request.param)
    store.close()


def body(msg: EmailMessage) -> str:
    part = msg.get_body(("plain",))
    assert part is not None
    return str(part.get_content())


def test_a_time_change_in_the_plan_moves_the_meeting_without_an_alert(
    organiser: Organiser,
) -> None:
    organiser.run(INVITATION_AT)
    assert len(organiser.mails()) == 1  # the invitation
    organiser.start = "14:00"  # the organiser moves the session in the plan
    organiser.run(INVITATION_AT + dt.timedelta(hours=2))
    (meeting,) = organiser.sandbox.meetings.values()
    assert meeting["start_time"] == "2025-06-25T12:00:00Z"  # Zoom followed the plan
    assert len(organiser.mails()) == 2  # subscribers got the update
    assert organiser.alerts() == []  # and nobody is told that Zoom changed


def test_a_change_made_in_zoom_is_restored_and_alerted_in_the_series_language(
    organiser: Organiser,
) -> None:
    organiser.run(INVITATION_AT)
    organiser.start = "14:00"  # first a plan change (no alert) …
    organiser.run(INVITATION_AT + dt.timedelta(hours=2))
    # … then somebody moves the meeting in Zoom; the reminder run reads it back.
    meeting_id = organiser.change_in_zoom(dt.datetime(2025, 6, 25, 15, 0, tzinfo=BERLIN))
    organiser.run(dt.datetime(2025, 6, 24, 9, 0, tzinfo=BERLIN))
    assert organiser.sandbox.meetings[meeting_id]["start_time"] == "2025-06-25T12:00:00Z"
    (alert,) = organiser.alerts()
    subject, text = str(alert["Subject"]), body(alert)
    if organiser.language == "de":
        assert subject == "Zoom-Meeting für willkommen/2025-06-25 wurde in Zoom geändert"
        assert "Hallo Kristina Neumann," in text
        assert "in Zoom:  Mittwoch, 25. Juni 2025, 15:00 Uhr (CEST), 30 Minuten" in text
        assert "im Plan:  Mittwoch, 25. Juni 2025, 14:00 Uhr (CEST), 60 Minuten" in text
    else:
        assert subject == "Zoom meeting for willkommen/2025-06-25 was changed in Zoom"
        assert "Hello Kristina Neumann," in text
        assert "in Zoom:  Wednesday, 25 June 2025, 15:00 (CEST), 30 minutes" in text
        assert "in plan:  Wednesday, 25 June 2025, 14:00 (CEST), 60 minutes" in text
    assert_wholly(organiser.language, subject, text)


def test_a_meeting_deleted_in_zoom_is_alerted_in_the_series_language(
    organiser: Organiser,
) -> None:
    organiser.run(INVITATION_AT)
    (meeting_id,) = organiser.sandbox.meetings
    wiring.sandbox_zoom(
        organiser.settings, organiser.store, organiser.clock, organiser.sandbox
    ).delete_meeting(meeting_id)
    organiser.run(dt.datetime(2025, 6, 24, 9, 0, tzinfo=BERLIN))
    (alert,) = organiser.alerts()
    subject, text = str(alert["Subject"]), body(alert)
    word = "gelöscht" if organiser.language == "de" else "deleted"
    assert word in subject
    assert_wholly(organiser.language, subject, text)


@pytest.mark.parametrize("language", ["de", "en"])
def test_every_alert_text_is_wholly_in_one_language(language: str) -> None:
    plan = parse_plan(plan_text(language=language), "plan.yaml")
    occ = find_occurrence(plan, SESSION)
    found = (occ.start, 30, "Umbenannt")
    texts = [
        *held_text(occ, "plan.yaml", language),
        *run_failed_text("plan.yaml: plan file not found", language),
        *zoom_changed_text(occ, "123 4567 8901", found, language),
        *zoom_deleted_text(occ, "123 4567 8901", language),
        *stuck_text("willkommen/2025-06-25: de/update.txt:3", language),  # the reason as given
    ]
    assert_wholly(language, *texts)
    greeting = "Hallo" if language == "de" else "Hello"
    assert all(t.startswith(greeting) for t in texts[1::2]), "every body greets"
