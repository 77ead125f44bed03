"""A mailing that cannot go out holds back no other, and a run that leaves mail owed says so.

Issue 14, findings 1 and 10: an invitation left undelivered (SMTP refused it) and then its session
cancelled stopped every later run ("invitation … needs the session's meeting"); a run whose mail
the server refused ended "OK … 5 to retry".
"""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import update
from typer.testing import CliRunner

from session_bot.adapters.db.schema import mailings
from session_bot.cli.main import app
from session_bot.cli.status import collect_status, format_status
from session_bot.core.plan import parse_plan
from tests.app.test_plan_changes import World, berlin, cal, event, text
from tests.app.test_plan_changes import world as world  # the fixture
from tests.conftest import SEED_INVITATION_AT
from tests.support.smtp_server import Fault

CANCEL = '        cancelled: true\n        reason: "Die Referentin ist erkrankt."\n'


def _refuse_all(world: World) -> Fault:
    # A run leaves what the server refused to the next run at once (no waiting for a retry).
    world.settings = world.settings.model_copy(update={"retry_wait_seconds": 0})
    return world.smtp.handler.add_fault(Fault("mail", "451 4.3.0 Bitte später noch einmal"))


def test_invitation_stuck_then_cancelled_sends_the_cancellation_only(world: World) -> None:
    refusal = _refuse_all(world)
    assert world.run(SEED_INVITATION_AT) == []
    last = world.store.runs.last()
    assert last is not None and last["outcome"] == "incomplete"
    assert "5 message(s) not delivered yet" in last["summary"]

    world.smtp.handler.faults.remove(refusal)
    world.edit(CANCEL)
    sent = world.run(berlin(2025, 2, 14, 10))
    # Only the cancellation reaches the five: nobody is invited to a cancelled session.
    assert len(sent) == 5
    assert all(cal(m)["METHOD"] == "CANCEL" for m in sent)
    assert "Die Referentin ist erkrankt." in text(sent[0])
    assert world.store.mailings.open() == []
    counts = world.store.mailings.delivery_counts()
    assert counts == {"skipped": 5, "sent": 5}

    # And the next session's invitation goes out as usual afterwards.
    assert len(world.run(berlin(2025, 3, 12, 10))) == 5
    last = world.store.runs.last()
    assert last is not None and last["outcome"] == "ok"


def test_open_mailing_renders_from_what_was_frozen(world: World) -> None:
    """An invitation left open renders the meeting it was frozen with, even after the session's
    meeting is gone (cancellation clears it, a re-created meeting replaces it)."""
    refusal = _refuse_all(world)
    world.run(SEED_INVITATION_AT)
    (invitation,) = world.store.mailings.open()
    row = world.store.sessions.get(invitation.session_key)
    assert row is not None and row.meeting_json is not None
    world.store.sessions.clear_meeting(row.id, world.clock())
    world.smtp.handler.faults.remove(refusal)

    sent = world.run(berlin(2025, 2, 12, 10))
    assert len(sent) == 5 and "665 4767 7759" in text(sent[0])


def test_one_unrenderable_mailing_does_not_stop_the_others(world: World) -> None:
    refusal = _refuse_all(world)
    world.run(SEED_INVITATION_AT)
    (broken,) = world.store.mailings.open()
    # A mailing frozen by an older version (no meeting kept with it) whose session lost its
    # meeting: it cannot be rendered again.
    with world.store.db.begin() as c:
        c.execute(update(mailings).where(mailings.c.id == broken.id).values(details=json.dumps({})))
    row = world.store.sessions.get(broken.session_key)
    assert row is not None
    world.store.sessions.clear_meeting(row.id, world.clock())
    world.smtp.handler.faults.remove(refusal)

    # The next session's invitation is due a month later: it goes out all the same.
    sent = world.run(berlin(2025, 3, 12, 10))
    assert len(sent) == 5
    assert {event(m).decoded("DTSTART").date() for m in sent} == {dt.date(2025, 3, 26)}
    last = world.store.runs.last()
    assert last is not None and last["outcome"] == "partial"
    assert f"mailing {broken.id} (invitation)" in last["summary"]
    assert "Zoom meeting" in last["summary"]
    assert world.alerts == ["Eine Aussendung konnte nicht verschickt werden"]
    status = format_status(
        collect_status(
            world.settings, parse_plan(world.plan_text, "plan.yaml"), berlin(2025, 3, 12, 11)
        )
    )
    assert "Noch nicht zugestellt: 5 Nachrichten der Einladung für den Termin am" in status
    assert "– teilweise fehlgeschlagen" in status


def test_cli_run_with_mail_left_owed_exits_non_zero_and_status_says_why(world: World) -> None:
    _refuse_all(world)
    env = world.settings
    env.var_dir.mkdir(parents=True, exist_ok=True)
    env_file = env.var_dir / "test.env"
    env_file.write_text(
        "\n".join(
            [
                f"SESSION_BOT_DATABASE_URL={env.resolved_database_url}",
                f"SESSION_BOT_VAR_DIR={env.var_dir}",
                f"SESSION_BOT_ZOOM_API_URL={world.sandbox.api_url}",
                f"SESSION_BOT_ZOOM_OAUTH_URL={world.sandbox.oauth_url}",
                "SESSION_BOT_ZOOM_ACCOUNT_ID=a",
                "SESSION_BOT_ZOOM_CLIENT_ID=c",
                "SESSION_BOT_ZOOM_CLIENT_SECRET=s",
                "SESSION_BOT_ZOOM_USER=organiser@example.org",
                "SESSION_BOT_SMTP_HOST=127.0.0.1",
                f"SESSION_BOT_SMTP_PORT={world.smtp.port}",
                "SESSION_BOT_SMTP_TLS=none",
                f"SESSION_BOT_SECRET_KEY={'k' * 32}",
                "SESSION_BOT_RETRY_WAIT_SECONDS=0",
            ]
        )
    )
    plan = env.var_dir / "plan.yaml"
    plan.write_text(world.plan_text)
    now = SEED_INVITATION_AT.astimezone(dt.UTC).isoformat()
    args = ["run", "--env-file", str(env_file), "--plan", str(plan), "--now", now]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1, result.output
    assert "Not done: 5 message(s) not delivered yet" in result.output
    status = CliRunner().invoke(
        app, ["status", "--env-file", str(env_file), "--plan", str(plan), "--now", now]
    )
    assert "– unvollständig" in status.output
    assert "Noch nicht zugestellt: 5 Nachrichten der Einladung" in status.output
    assert "451 4.3.0 Bitte später noch einmal" in status.output
