"""The walking skeleton end to end: plan → Zoom sandbox over HTTP → invitation → outbox / SMTP."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import os
import subprocess
import sys
from email.message import EmailMessage
from pathlib import Path

import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport, SmtpTransport
from session_bot.cli.demo import seed_subscribers
from session_bot.core.plan import Plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from tests.conftest import EXAMPLE_PLAN, ROOT, SEED_MEETING
from tests.support.smtp_server import SmtpServer

SUBSCRIBERS = ROOT / "examples" / "subscribers.csv"


def runner_for(
    settings: Settings,
    plan: Plan,
    store: Store,
    sandbox: ZoomSandbox,
    clock: ManualClock,
    transport,
):  # type: ignore[no-untyped-def]
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    return wiring.build_runner(settings, plan, store, zoom, clock, transport=transport)


def text_part(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def check_invitation(msg: EmailMessage) -> None:
    body = text_part(msg)
    assert "https://bertelsmann-stiftung-de.zoom.us/j/66547677759" in body
    assert "Meeting-ID: 665 4767 7759, Kenncode: 717531, Schnelleinwahl mobil +496950500952" in body
    assert "Mittwoch, 26. Februar 2025" in body
    assert "von 12:30-13:30 Uhr" in body
    assert msg["List-Unsubscribe"] and "https://session-bot.example.org/unsubscribe/" in str(
        msg["List-Unsubscribe"]
    )
    html = msg.get_body(preferencelist=("html",))
    assert html is not None and "66547677759" in str(html.get_content())
    attachments = [p for p in msg.iter_attachments() if p.get_content_type() == "text/calendar"]
    assert len(attachments) == 1


def test_runner_creates_meeting_and_delivers_to_the_outbox_once(
    settings: Settings, example_plan: Plan, store: Store, sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    assert seed_subscribers(store, SUBSCRIBERS, clock()) == 5
    sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
    outbox = settings.var_dir / "outbox"
    runner = runner_for(settings, example_plan, store, sandbox, clock, MaildirTransport(outbox))

    report = runner.run("test")
    assert report.meetings_created == 1 and report.delivery.sent == 5
    assert sandbox.create_calls == 1
    assert list(sandbox.meetings) == [66547677759]
    created = sandbox.meetings[66547677759]
    assert (created["start_time"], created["timezone"]) == ("2025-02-26T11:30:00Z", "Europe/Berlin")

    box = mailbox.Maildir(str(outbox), create=False)
    messages = [email.message_from_bytes(m.as_bytes(), policy=email.policy.default) for m in box]
    assert sorted(str(m["To"]) for m in messages) == sorted(
        [
            "Kristina Neumann <kristina.neumann@example.org>",
            "Amir Rahimi <amir.rahimi@example.org>",
            "Jutta Becker <jutta.becker@example.net>",
            "sozialamt@landkreis-beispiel.example",
            "Olena Kovalenko <olena.kovalenko@example.com>",
        ]
    )
    for msg in messages:
        assert isinstance(msg, EmailMessage)
        if "olena" in str(msg["To"]):
            continue  # English recipient: checked below
        check_invitation(msg)

    # Re-running at the same or a later moment changes nothing: no Zoom call at all, no mail.
    sandbox.clear_requests()
    clock.advance(hours=3)
    again = runner_for(settings, example_plan, store, sandbox, clock, MaildirTransport(outbox)).run(
        "test"
    )
    assert again.nothing_to_do
    assert sandbox.requests == []
    assert len(list(mailbox.Maildir(str(outbox), create=False))) == 5
    assert len(sandbox.meetings) == 1


def test_runner_delivers_over_real_smtp(
    settings: Settings, example_plan: Plan, store: Store, sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    seed_subscribers(store, SUBSCRIBERS, clock())
    sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
    with SmtpServer() as smtp:
        transport = SmtpTransport(smtp.host, smtp.port, tls="none")
        report = runner_for(settings, example_plan, store, sandbox, clock, transport).run("test")
        transport.close()
        assert report.delivery.sent == 5
        received = smtp.handler.messages
        assert len(received) == 5
        assert all(r.mail_from == "kristina.neumann@bertelsmann-stiftung.de" for r in received)
        for r in received:
            msg = r.message()
            assert [str(msg["To"]).split("<")[-1].rstrip(">")] == r.rcpt_tos
            if r.rcpt_tos != ["olena.kovalenko@example.com"]:
                check_invitation(msg)


@pytest.mark.slow
def test_demo_command_twice(tmp_path: Path) -> None:
    """`session-bot demo` as a user runs it: a real process, twice, in a fresh directory."""
    exe = [sys.executable, "-m", "session_bot.cli", "demo"]
    args = ["--plan", str(EXAMPLE_PLAN), "--subscribers", str(SUBSCRIBERS)]
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    first = subprocess.run(
        exe + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    assert "https://bertelsmann-stiftung-de.zoom.us/j/66547677759" in first.stdout
    assert "665 4767 7759" in first.stdout
    assert "5 message(s) sent" in first.stdout
    outbox = tmp_path / "var" / "demo" / "outbox" / "new"
    assert len(list(outbox.iterdir())) == 5
    second = subprocess.run(
        exe + args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert second.returncode == 0, second.stderr
    assert "Nothing to do" in second.stdout
    assert len(list(outbox.iterdir())) == 5
    sandbox_state = json.loads((tmp_path / "var" / "demo" / "zoom-sandbox.json").read_text())
    (meeting,) = sandbox_state["meetings"].values()
    assert meeting["start_time"] == "2025-02-26T11:30:00Z"


def test_invalid_plan_sends_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "plan.yaml"
    bad.write_text(EXAMPLE_PLAN.read_text().replace('start: "12:30"', 'start: "12:3O"'))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "session_bot.cli",
            "demo",
            "--plan",
            str(bad),
            "--subscribers",
            str(SUBSCRIBERS),
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert f"{bad}:10: series[willkommen].start:" in out.stderr
    assert "Traceback" not in out.stderr
    assert not (tmp_path / "var" / "demo" / "outbox").exists()
