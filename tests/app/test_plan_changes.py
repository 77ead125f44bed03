"""Plan edits and Zoom-side changes after the invitation: everyone hears it exactly once."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import icalendar
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.adapters.zoom import ZoomClient
from session_bot.cli.demo import seed_subscribers
from session_bot.core.plan import parse_plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from tests.conftest import EXAMPLE_PLAN, ROOT, SEED_INVITATION_AT, SEED_JOIN_HOST, SEED_MEETING
from tests.support.plans import automatic_updates
from tests.support.smtp_server import Received, SmtpServer

# These tests follow the mail itself: changes go out with the next run (no review).
BASE = automatic_updates(EXAMPLE_PLAN.read_text(encoding="utf-8"))
SESSION = "      2025-02-26:\n"


class World:
    """Plan text, store, sandbox, SMTP server and a manual clock, run step by step."""

    def __init__(self, settings: Settings, store: Store, sandbox: ZoomSandbox, smtp: SmtpServer,
                 clock: ManualClock) -> None:  # fmt: skip
        self.settings, self.store, self.sandbox, self.smtp, self.clock = (
            settings, store, sandbox, smtp, clock,
        )  # fmt: skip
        self.plan_text = BASE
        self.alerts: list[str] = []
        self.seen = 0

    def edit(self, extra_for_seed_session: str) -> None:
        """Add lines to the 2025-02-26 session's mapping."""
        self.plan_text = self.plan_text.replace(SESSION, SESSION + extra_for_seed_session, 1)

    def run(self, at: dt.datetime) -> list[Received]:
        self.clock.set(at)
        plan = parse_plan(self.plan_text, "plan.yaml")
        zoom = wiring.sandbox_zoom(self.settings, self.store, self.clock, self.sandbox)
        transport = SmtpTransport(self.smtp.host, self.smtp.port, tls="none")
        runner = wiring.build_runner(self.settings, plan, self.store, zoom, self.clock, transport)
        runner.on_alert = lambda subject, body: self.alerts.append(subject)
        runner.run("test")
        transport.close()
        new = self.smtp.handler.messages[self.seen :]
        self.seen = len(self.smtp.handler.messages)
        return new

    def zoom_admin(self) -> ZoomClient:
        """Somebody else working in Zoom directly."""
        return ZoomClient(
            api_url=self.sandbox.api_url, oauth_url=self.sandbox.oauth_url, account_id="a",
            client_id="c", client_secret="s", user="organiser@example.org", clock=self.clock,
        )  # fmt: skip


def cal(msg: Received) -> icalendar.Calendar:
    for part in msg.message().iter_attachments():
        if part.get_content_type() == "text/calendar":
            return icalendar.Calendar.from_ical(part.get_payload(decode=True))
    raise AssertionError("no .ics attached")


def event(msg: Received) -> icalendar.Event:
    return next(iter(cal(msg).walk("VEVENT")))


def text(msg: Received) -> str:
    body = msg.message().get_body(preferencelist=("plain",))
    assert body is not None
    return str(body.get_content())


def berlin(*a: int) -> dt.datetime:
    from zoneinfo import ZoneInfo

    return dt.datetime(*a, tzinfo=ZoneInfo("Europe/Berlin"))


@pytest.fixture
def world(settings: Settings, store: Store, tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(SEED_INVITATION_AT)
    seed_subscribers(store, ROOT / "examples" / "subscribers.csv", clock())
    with (
        ZoomSandbox(state_file=tmp_path / "z.json", join_host=SEED_JOIN_HOST, clock=clock) as sb,
        SmtpServer() as smtp,
    ):
        sb.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
        yield World(settings, store, sb, smtp, clock)


def test_time_change_topic_change_zoom_deletion_and_cancellation(world: World) -> None:
    invitations = world.run(SEED_INVITATION_AT)
    assert len(invitations) == 5
    first = event(invitations[0])
    uid = str(first["UID"])
    assert cal(invitations[0])["METHOD"] == "PUBLISH" and int(first["SEQUENCE"]) == 0

    # 1. The time moves to 14:00: Zoom follows, everyone gets one update with SEQUENCE 1.
    world.edit('        start: "14:00"\n')
    updates = world.run(berlin(2025, 2, 13, 10))
    assert len(updates) == 5
    ev = event(updates[0])
    assert str(ev["UID"]) == uid and int(ev["SEQUENCE"]) == 1
    assert ev.decoded("DTSTART").astimezone(dt.UTC) == dt.datetime(2025, 2, 26, 13, tzinfo=dt.UTC)
    assert "Neuer Termin: Mittwoch, 26. Februar 2025, 14:00–15:00 Uhr" in text(updates[0])
    assert world.sandbox.meetings[66547677759]["start_time"] == "2025-02-26T13:00:00Z"
    assert world.run(berlin(2025, 2, 13, 11)) == []  # exactly once

    # 2. A minor edit (typo in the topic) sends nothing.
    world.plan_text = world.plan_text.replace("Welcome-Strukturen zur", "Welcome-Strukturen  zur")
    world.edit("        minor_change: true\n")
    assert world.run(berlin(2025, 2, 14, 10)) == []

    # 3. Someone deletes the meeting in Zoom: before the reminder it is recreated, the organiser
    #    is alerted, subscribers get one update with the new link, then the reminder.
    world.zoom_admin().delete_meeting(66547677759)
    before_reminder = world.run(berlin(2025, 2, 25, 9))
    kinds = sorted(str(m.message()["Subject"]).split(":")[0] for m in before_reminder)
    assert len(before_reminder) == 10, kinds
    assert len(world.sandbox.meetings) == 1
    (new_id,) = world.sandbox.meetings
    assert new_id != 66547677759
    assert any("gelöscht" in a for a in world.alerts)
    reminders = [
        m for m in before_reminder
        if str(m.message()["Subject"]).startswith(("Erinnerung:", "Reminder:"))
    ]  # fmt: skip
    updates = [m for m in before_reminder if m not in reminders]
    assert len(updates) == 5 and len(reminders) == 5
    # Both carry the calendar state after the change: the new link and SEQUENCE 2.
    assert {int(event(m)["SEQUENCE"]) for m in before_reminder} == {2}
    assert all(f"/j/{new_id}" in text(m) for m in reminders)
    assert f"/j/{new_id}" in text(updates[0])
    assert "Neue Zugangsdaten" in text(updates[0])

    # 4. Cancelled with a reason: Zoom DELETE, METHOD:CANCEL with the same UID, then silence.
    world.edit('        cancelled: true\n        reason: "Die Referentin ist erkrankt."\n')
    cancels = world.run(berlin(2025, 2, 25, 12))
    assert len(cancels) == 5
    c = cal(cancels[0])
    assert c["METHOD"] == "CANCEL"
    ev = event(cancels[0])
    assert str(ev["UID"]) == uid and str(ev["STATUS"]) == "CANCELLED"
    assert int(ev["SEQUENCE"]) == 3
    assert "Die Referentin ist erkrankt." in text(cancels[0])
    assert world.sandbox.meetings == {}
    assert world.run(berlin(2025, 2, 26, 9)) == []


def test_meeting_changed_in_zoom_is_restored_without_mail(world: World) -> None:
    assert len(world.run(SEED_INVITATION_AT)) == 5
    from session_bot.adapters.zoom import MeetingRequest

    world.zoom_admin().update_meeting(
        66547677759,
        MeetingRequest(topic="Umbenannt", agenda="x", start=berlin(2025, 2, 26, 15),
                       duration=30, timezone="Europe/Berlin"),
    )  # fmt: skip
    sent = world.run(berlin(2025, 2, 25, 9))
    subjects = [str(m.message()["Subject"]) for m in sent]
    assert len(sent) == 5, (subjects, world.alerts)
    assert all(s.startswith(("Erinnerung:", "Reminder:")) for s in subjects), subjects
    meeting = world.sandbox.meetings[66547677759]
    assert meeting["start_time"] == "2025-02-26T11:30:00Z" and meeting["duration"] == 60
    assert any("geändert" in a for a in world.alerts)


def test_cancelled_before_invitation_only_deletes_the_meeting(world: World) -> None:
    world.plan_text = world.plan_text.replace(
        "      2025-03-26:\n", '      2025-03-26:\n        cancelled: true\n        reason: "x"\n'
    )
    assert len(world.run(SEED_INVITATION_AT)) == 5
    assert world.run(berlin(2025, 3, 12, 9)) == []
    assert len(world.sandbox.meetings) == 1  # only February's


def test_status_shows_what_was_announced_and_what_changed(world: World) -> None:
    from session_bot.cli.status import collect_status, format_status

    world.run(SEED_INVITATION_AT)
    world.edit('        start: "14:00"\n')
    plan = parse_plan(world.plan_text, "plan.yaml")
    data = collect_status(world.settings, plan, berlin(2025, 2, 13, 8))
    entry = data["sessions"][0]
    assert entry["announced"]["start"] == "2025-02-26T12:30:00+01:00"
    assert entry["announced"]["sequence"] == 0
    assert entry["changed_since"] == ["time"]
    assert "Geändert seit der letzten Nachricht (Datum/Uhrzeit)" in format_status(data)
    world.run(berlin(2025, 2, 13, 10))
    after = collect_status(world.settings, plan, berlin(2025, 2, 13, 11))["sessions"][0]
    assert after["changed_since"] == [] and after["announced"]["sequence"] == 1


def test_status_names_an_invited_session_that_vanished_from_the_plan(world: World) -> None:
    from session_bot.cli.status import collect_status, format_status

    world.run(SEED_INVITATION_AT)
    world.plan_text = world.plan_text.replace(
        "      2025-02-26:\n", "      2025-02-19:\n        extra: true\n", 1
    )
    plan = parse_plan(world.plan_text, "plan.yaml")
    data = collect_status(world.settings, plan, berlin(2025, 2, 13, 8))
    assert data["orphaned"] == ["willkommen/2025-02-26"]
    assert "nicht mehr im Plan" in format_status(data)
