"""Organiser alerts: a held session (invitation due, no topic) gives one alert mail a day.

Runs go through the real runner against the Zoom sandbox; alerts through a real SMTP server
(aiosmtpd) or the Maildir outbox.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport, SmtpTransport, Transport
from session_bot.app.runner import Runner
from session_bot.core.plan import Plan, parse_plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from session_bot.wiring import make_alerter
from tests.support.settings import make_settings as settings_in
from tests.support.smtp_server import CollectingHandler, SmtpServer

BERLIN = ZoneInfo("Europe/Berlin")
ALERTS_TO = "orga-alerts@example.org"
SUBSCRIBER = "anna@example.org"


def plan_text(*, topic: str | None, language: str = "de") -> str:
    sessions = f'    sessions:\n      2025-06-25:\n        topic: "{topic}"\n' if topic else ""
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
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 3
      invitation_time: "09:00"
{sessions}"""


def make_settings(tmp_path: Path, **extra: object) -> Settings:
    return settings_in(tmp_path, plan=tmp_path / "plan.yaml", **extra)


def make_runner(
    settings: Settings,
    plan: Plan,
    store: Store,
    sandbox: ZoomSandbox,
    clock: ManualClock,
    transport: Transport,
) -> Runner:
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    runner = wiring.build_runner(settings, plan, store, zoom, clock, transport=transport)
    runner.on_hold = make_alerter(settings, plan, store, transport)
    return runner


@pytest.fixture
def store_with_subscriber(tmp_path: Path) -> tuple[Settings, Store]:
    settings = make_settings(tmp_path, alert_email=ALERTS_TO)
    store = wiring.open_store(settings)
    t0 = dt.datetime(2025, 6, 1, tzinfo=dt.UTC)
    store.subscribers.add(
        SUBSCRIBER, name="Anna", language="de", status="confirmed", now=t0, confirmed_at=t0
    )
    return settings, store


def test_one_alert_a_day_while_the_topic_is_missing_then_the_invitation(
    tmp_path: Path, store_with_subscriber: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = store_with_subscriber
    held_plan = parse_plan(plan_text(topic=None), str(tmp_path / "plan.yaml"))
    clock = ManualClock(dt.datetime(2025, 6, 22, 6, 0, tzinfo=BERLIN))
    transport = SmtpTransport(smtp_server.host, smtp_server.port, tls="none")
    with ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox:
        runner = make_runner(settings, held_plan, store, sandbox, clock, transport)
        # Hourly safety ticks from before the invitation moment (22 June 09:00) to 24 June 08:00.
        while clock() < dt.datetime(2025, 6, 24, 8, 30, tzinfo=BERLIN):
            report = runner.run("tick")
            assert report.mailings_frozen == 0 and report.meetings_created == 0
            clock.advance(hours=1)
        alerts = smtp_server.handler.to(ALERTS_TO)
        sent_at = [m.message()["Date"].datetime.astimezone(BERLIN) for m in alerts]
        assert [f"{t:%Y-%m-%d %H:%M}" for t in sent_at] == ["2025-06-22 09:00", "2025-06-23 09:00"]
        assert smtp_server.handler.to(SUBSCRIBER) == []
        assert sandbox.meetings == {}

        first = alerts[0].message()
        assert first["Auto-Submitted"] == "auto-generated"
        assert str(first["Subject"]) == (
            "session-bot: Einladung zum 25.06.2025 angehalten – Thema fehlt"
        )
        body = str(first.get_body(("plain",)).get_content())
        assert "Mittwoch, 25. Juni 2025, 12:30 Uhr" in body
        assert f"In der Plandatei {tmp_path / 'plan.yaml'}" in body
        assert "`2025-06-25:`" in body

        # The organiser adds the topic at 08:30; the 09:00 tick sends the (late) invitation.
        runner.transport.close()
        fixed = parse_plan(plan_text(topic="Wohnen statt Unterbringen"), "plan.yaml")
        runner = make_runner(settings, fixed, store, sandbox, clock, transport)
        while clock() < dt.datetime(2025, 6, 25, 13, 0, tzinfo=BERLIN):
            runner.run("tick")
            clock.advance(hours=1)
        transport.close()
    assert len(smtp_server.handler.to(ALERTS_TO)) == 2  # no alert once the topic is there
    got = [m.message() for m in smtp_server.handler.to(SUBSCRIBER)]
    # Only the invitation: it went out at the reminder moment, so it serves as the reminder.
    assert ["Einladung" in str(m["Subject"]) for m in got] == [True]
    assert got[0]["Date"].datetime.astimezone(BERLIN).strftime("%d %H:%M") == "24 09:00"


def test_without_alert_address_the_series_organiser_is_told_in_the_series_language(
    tmp_path: Path,
) -> None:
    settings = make_settings(tmp_path)  # no SESSION_BOT_ALERT_EMAIL
    store = wiring.open_store(settings)
    plan = parse_plan(plan_text(topic=None, language="en"), "plan.yaml")
    clock = ManualClock(dt.datetime(2025, 6, 22, 9, 30, tzinfo=BERLIN))
    outbox = tmp_path / "outbox"
    with ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox:
        runner = make_runner(settings, plan, store, sandbox, clock, MaildirTransport(outbox))
        assert runner.run("manual").held == ["willkommen/2025-06-25: no topic in the plan yet"]
        clock.advance(hours=5)
        runner.run("manual")  # the same day: no second alert
    box = mailbox.Maildir(str(outbox), create=False)
    msgs = [
        email.message_from_bytes(box.get_bytes(k), policy=email.policy.default)
        for k in box.iterkeys()
    ]
    assert len(msgs) == 1
    msg = msgs[0]
    assert isinstance(msg, EmailMessage)
    assert msg["To"] == "kristina.neumann@example.org"
    assert str(msg["Subject"]) == "session-bot: invitation for 2025-06-25 on hold – no topic"
    assert "Wednesday, 25 June 2025, 12:30 (CEST)" in str(msg.get_body(("plain",)).get_content())


def test_a_refused_alert_does_not_stop_the_run(
    tmp_path: Path, store_with_subscriber: tuple[Settings, Store]
) -> None:
    settings, store = store_with_subscriber
    refusing = CollectingHandler(
        on_data=lambda env: "550 5.1.1 no such mailbox" if ALERTS_TO in env.rcpt_tos else None
    )
    plan = parse_plan(plan_text(topic=None), "plan.yaml")
    clock = ManualClock(dt.datetime(2025, 6, 22, 9, 0, tzinfo=BERLIN))
    with SmtpServer(refusing) as srv, ZoomSandbox(clock=clock) as sandbox:
        transport = SmtpTransport(srv.host, srv.port, tls="none")
        runner = make_runner(settings, plan, store, sandbox, clock, transport)
        report = runner.run("tick")
        transport.close()
    assert report.held and store.runs.last() is not None
    assert store.runs.last()["outcome"] == "ok"  # type: ignore[index]
    assert refusing.messages == []


def test_runner_notices_are_mailed_once_a_day(
    tmp_path: Path, store_with_subscriber: tuple[Settings, Store], smtp_server: SmtpServer
) -> None:
    settings, store = store_with_subscriber
    plan = parse_plan(plan_text(topic="Wohnen statt Unterbringen"), "plan.yaml")
    clock = ManualClock(dt.datetime(2025, 6, 22, 9, 0, tzinfo=BERLIN))
    transport = SmtpTransport(smtp_server.host, smtp_server.port, tls="none")
    with ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox:
        runner = make_runner(settings, plan, store, sandbox, clock, transport)
        runner.on_alert = make_alerter(settings, plan, store, transport, clock).notice
        runner.run("schedule")  # meeting + invitation
        # Someone deletes the meeting in Zoom; the reminder run notices and makes a new one.
        (meeting_id,) = sandbox.meetings
        runner.zoom.delete_meeting(meeting_id)
        clock.set(dt.datetime(2025, 6, 24, 9, 0, tzinfo=BERLIN))
        runner.run("schedule")
        transport.close()
    alerts = [m.message() for m in smtp_server.handler.to(ALERTS_TO)]
    assert [str(m["Subject"]) for m in alerts] == [
        "Zoom-Meeting für willkommen/2025-06-25 wurde in Zoom gelöscht"
    ]
    assert len(sandbox.meetings) == 1 and meeting_id not in sandbox.meetings
    # The same notice again on the same day is not mailed twice.
    again = make_alerter(settings, plan, store, transport, clock)
    assert again.send_notice(str(alerts[0]["Subject"]), "body", clock()) is False
