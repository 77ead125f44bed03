"""`session-bot send`: a deliberate re-send as a new mailing sequence, or one [TEST] message."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import icalendar
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.cli.serve import send_mailing
from session_bot.core.errors import PlanError
from session_bot.core.plan import Plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from tests.conftest import SEED_INVITATION_AT
from tests.support.settings import make_settings as settings_in
from tests.support.smtp_server import SmtpServer

SUBSCRIBERS = ["anna@example.org", "ben@example.org"]
ORGANISER = "orga@example.org"


def make_settings(tmp_path: Path, smtp: SmtpServer) -> Settings:
    settings = settings_in(tmp_path, smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="none")
    store = wiring.open_store(settings)
    t0 = SEED_INVITATION_AT - dt.timedelta(days=30)
    for a in SUBSCRIBERS:
        store.subscribers.add(a, name=None, language="de", status="confirmed", now=t0)
    store.close()
    return settings


def ics_sequence(data: bytes) -> int:
    from email import message_from_bytes, policy

    msg = message_from_bytes(data, policy=policy.default)
    for part in msg.walk():
        if part.get_content_type() == "text/calendar":
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            return int(next(iter(cal.walk("VEVENT")))["SEQUENCE"])
    raise AssertionError("no calendar part")


def test_resend_is_a_new_mailing_with_a_higher_sequence_and_the_schedule_stays_calm(
    tmp_path: Path, example_plan: Plan, smtp_server: SmtpServer
) -> None:
    settings = make_settings(tmp_path, smtp_server)
    clock = ManualClock(SEED_INVITATION_AT)
    said: list[str] = []
    with ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox:
        api = (sandbox.api_url, sandbox.oauth_url)
        # The first send of an invitation that is not due yet: sequence 0, the meeting is made.
        clock.set(SEED_INVITATION_AT - dt.timedelta(days=2))
        code = send_mailing(
            settings, example_plan, "2025-02-26", "invitation", to=None, clock=clock,
            echo=said.append, zoom_api=api,
        )  # fmt: skip
        assert code == 0 and len(sandbox.meetings) == 1
        clock.set(SEED_INVITATION_AT + dt.timedelta(days=1))
        code = send_mailing(
            settings, example_plan, "2025-02-26", "invitation", to=None, clock=clock,
            echo=said.append, zoom_api=api,
        )  # fmt: skip
        assert code == 0 and len(sandbox.meetings) == 1  # the same meeting

        # The scheduled run afterwards finds nothing to do: the invitation went out.
        store = wiring.open_store(settings)
        zoom = wiring.make_zoom(
            settings, store, clock, api_url=api[0], oauth_url=api[1], sandbox_credentials=True
        )
        runner = wiring.build_runner(settings, example_plan, store, zoom, clock)
        assert runner.run("tick").done == []
        runner.transport.close()
    hints = [line for line in said if line.startswith("Hinweis: ")]
    said = [line for line in said if not line.startswith("Hinweis: ")]
    assert "sie ersetzt die geplante Einladung am Mittwoch, 12.02.2025 um 09:00 Uhr" in hints[0]
    assert "die geplante Erinnerung am Dienstag, 25.02.2025 um 09:00 Uhr geht trotzdem" in hints[1]
    assert said[0].startswith("invitation for willkommen/2025-02-26 sent as mailing")
    assert "re-sent as mailing" in said[1] and "(sequence 1)" in said[1]
    assert "2 sent, 0 to retry, 0 failed" in said[1]
    for address in SUBSCRIBERS:
        got = smtp_server.handler.to(address)
        assert [ics_sequence(m.data) for m in got] == [0, 1]
    row = store.sessions.get("willkommen/2025-02-26")
    assert row is not None and row.sequence == 1
    assert [(m.kind, m.sequence) for m in store.mailings.of_session(row.id)] == [
        ("invitation", 0),
        ("invitation", 1),
    ]
    store.close()


def test_test_send_goes_to_one_address_only_marked_test(
    tmp_path: Path, example_plan: Plan, smtp_server: SmtpServer
) -> None:
    settings = make_settings(tmp_path, smtp_server)
    said: list[str] = []
    clock = ManualClock(SEED_INVITATION_AT - dt.timedelta(days=5))
    code = send_mailing(
        settings, example_plan, "2025-02-26", "reminder", to=ORGANISER, clock=clock,
        echo=said.append,
    )  # fmt: skip
    assert code == 0
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [[ORGANISER]]
    msg = smtp_server.handler.messages[0].message()
    assert str(msg["Subject"]).startswith("[TEST] ")
    assert "sample join details" in said[0]
    store = wiring.open_store(settings)
    assert store.sessions.get("willkommen/2025-02-26") is None  # nothing recorded
    store.close()


@pytest.mark.parametrize(
    ("date", "kind", "message"),
    [
        ("2025-12-31", "invitation", "is skipped (listed as an exception"),
        ("2025-06-25", "invitation", "has no topic yet"),
        ("2025-02-26", "update", "unknown kind 'update'"),
        ("2025-02-27", "invitation", "no session on 2025-02-27"),
        ("26.02.2025", "invitation", "is not a date like"),
    ],
)
def test_send_refuses_what_cannot_be_sent(
    tmp_path: Path,
    example_plan: Plan,
    smtp_server: SmtpServer,
    date: str,
    kind: str,
    message: str,
) -> None:
    settings = make_settings(tmp_path, smtp_server)
    clock = ManualClock(SEED_INVITATION_AT - dt.timedelta(days=30))
    with pytest.raises(PlanError) as err:
        send_mailing(settings, example_plan, date, kind, to=None, clock=clock, echo=print)
    assert message in str(err.value)
    assert smtp_server.handler.messages == []


def test_send_after_the_session_started_is_refused(
    tmp_path: Path, example_plan: Plan, smtp_server: SmtpServer
) -> None:
    settings = make_settings(tmp_path, smtp_server)
    clock = ManualClock(dt.datetime(2025, 2, 26, 12, 0, tzinfo=dt.UTC))  # 13:00 Berlin
    with pytest.raises(PlanError, match="has already started"):
        send_mailing(settings, example_plan, "2025-02-26", "reminder", to=None, clock=clock,
                     echo=print)  # fmt: skip


def test_send_command_line(tmp_path: Path, smtp_server: SmtpServer) -> None:
    day = dt.date.today() + dt.timedelta(days=40)
    plan = tmp_path / "plan.yaml"
    plan.write_text(
        f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYMONTHDAY={day.day}"
    starts_on: {day.isoformat()}
    start: "12:30"
    timezone: Europe/Berlin
    organiser: {{name: Kristina Neumann, email: kristina.neumann@example.org}}
    sessions:
      {day.isoformat()}:
        topic: "Ein Thema"
""",
        encoding="utf-8",
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    env.update(
        SESSION_BOT_VAR_DIR=str(tmp_path / "var"),
        SESSION_BOT_PLAN=str(plan),
        SESSION_BOT_SECRET_KEY="test-secret-key-0123456789abcdef",
        SESSION_BOT_SMTP_HOST=smtp_server.host,
        SESSION_BOT_SMTP_PORT=str(smtp_server.port),
        SESSION_BOT_SMTP_TLS="none",
    )
    cmd = [sys.executable, "-m", "session_bot.cli", "send", day.isoformat()]
    ok = subprocess.run(
        [*cmd, "--kind", "invitation", "--to", ORGANISER],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert ok.returncode == 0, ok.stderr
    assert f"sent to {ORGANISER}" in ok.stdout
    assert [m.rcpt_tos for m in smtp_server.handler.messages] == [[ORGANISER]]
    bad = subprocess.run(
        [*cmd, "--kind", "cancellation"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert bad.returncode == 2 and "unknown kind 'cancellation'" in bad.stderr
    assert "Traceback" not in bad.stderr
