"""The command line as a user meets it: exit codes, messages, no tracebacks, no secrets."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN, ROOT

SUBSCRIBERS = ROOT / "examples" / "subscribers.csv"


def cli(
    tmp_path: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    base.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "session_bot.cli", *args],
        cwd=tmp_path,
        env=base,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_run_without_zoom_credentials_refuses_and_says_how_to_go_live(tmp_path: Path) -> None:
    out = cli(tmp_path, "run", "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 2
    assert "SESSION_BOT_ZOOM_ACCOUNT_ID" in out.stderr and "session-bot demo" in out.stderr
    assert "Traceback" not in out.stderr


def test_bad_setting_is_named_and_secret_not_echoed(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text(
        "SESSION_BOT_ZOOM_CLIENT_SECRET=very-secret-value-123\nSESSION_BOT_SMTP_PORT=abc\n"
    )
    out = cli(tmp_path, "status", "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 2
    assert "SESSION_BOT_SMTP_PORT" in out.stderr
    assert "very-secret-value-123" not in out.stderr + out.stdout


def test_dry_run_lists_actions_and_changes_nothing(tmp_path: Path) -> None:
    env = {
        "SESSION_BOT_ZOOM_ACCOUNT_ID": "acc",
        "SESSION_BOT_ZOOM_CLIENT_ID": "cid",
        "SESSION_BOT_ZOOM_CLIENT_SECRET": "sec-ret-value-456",
        "SESSION_BOT_ZOOM_USER": "host@example.org",
        # Nothing listens here: a dry run must not call Zoom at all.
        "SESSION_BOT_ZOOM_API_URL": "http://127.0.0.1:9/v2",
        "SESSION_BOT_ZOOM_OAUTH_URL": "http://127.0.0.1:9",
    }
    out = cli(
        tmp_path, "run", "--dry-run", "--now", "2025-02-12T09:00:00+01:00",
        "--plan", str(EXAMPLE_PLAN), env=env,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "meeting for willkommen/2025-02-26" in out.stdout
    assert "invitation for willkommen/2025-02-26" in out.stdout
    assert not (tmp_path / "var" / "outbox").exists()


def test_status_json_after_the_demo(tmp_path: Path) -> None:
    demo = cli(tmp_path, "demo", "--plan", str(EXAMPLE_PLAN), "--subscribers", str(SUBSCRIBERS))
    assert demo.returncode == 0, demo.stderr
    # The demo keeps its own folder; status (which only reads) looks into it when asked to.
    out = cli(tmp_path, "status", "--json", "--now", "2025-02-13T09:00:00+01:00",
              "--plan", str(EXAMPLE_PLAN), env={"SESSION_BOT_VAR_DIR": "var/demo"})  # fmt: skip
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    first = data["sessions"][0]
    assert first["key"] == "willkommen/2025-02-26"
    assert first["meeting_id"] == 66547677759
    assert first["mailings"][0]["kind"] == "invitation"
    assert first["mailings"][0]["deliveries"] == {"sent": 5}
    assert data["next_due"].startswith("2025-02-25T09:00:00+01:00")
    assert data["last_run"]["outcome"] == "ok"


@pytest.mark.parametrize("fmt", ["text", "html", "ics", "eml"])
def test_preview_formats(tmp_path: Path, fmt: str) -> None:
    out = cli(tmp_path, "preview", "2025-02-26", "--format", fmt, "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 0, out.stderr
    marker = {"text": "Mittwoch, 26. Februar 2025", "html": "<html", "ics": "BEGIN:VCALENDAR",
              "eml": "List-Unsubscribe:"}[fmt]  # fmt: skip
    assert marker in out.stdout


def test_preview_of_a_date_without_session(tmp_path: Path) -> None:
    out = cli(tmp_path, "preview", "2025-02-27", "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 2
    assert "no session on 2025-02-27" in out.stderr


def test_check_validates_plan_and_templates(tmp_path: Path) -> None:
    out = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 0, out.stdout + out.stderr
    assert "ok   plan" in out.stdout and "templates render" in out.stdout
    broken = tmp_path / "tpl" / "de"
    broken.mkdir(parents=True)
    # The organiser copies the default and adds a field that does not exist.
    original = (ROOT / "templates" / "de" / "invitation.txt").read_text()
    (broken / "invitation.txt").write_text(
        original + "{% block notice %}Moderation: {{ moderator }}{% endblock %}\n"
    )
    out = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN),
              env={"SESSION_BOT_TEMPLATES_DIR": str(tmp_path / "tpl")})  # fmt: skip
    assert out.returncode == 2
    assert "de/invitation.txt" in out.stdout and "moderator" in out.stdout


def test_going_live_after_the_demo_starts_from_an_empty_database(tmp_path: Path) -> None:
    """Issue 14, finding 3: `make demo`, then `.env` for going live in the same folder."""
    demo = cli(tmp_path, "demo", "--plan", str(EXAMPLE_PLAN), "--subscribers", str(SUBSCRIBERS))
    assert demo.returncode == 0, demo.stderr
    live = {
        "SESSION_BOT_VAR_DIR": "var",
        "SESSION_BOT_ZOOM_ACCOUNT_ID": "acc",
        "SESSION_BOT_ZOOM_CLIENT_ID": "cid",
        "SESSION_BOT_ZOOM_CLIENT_SECRET": "sec-ret-value-456",
        "SESSION_BOT_ZOOM_USER": "host@example.org",
    }
    out = cli(tmp_path, "subscribers", "list", env=live)
    assert out.returncode == 0, out.stderr
    assert "example.org" not in out.stdout  # none of the demo's five
    status = cli(tmp_path, "status", "--json", "--plan", str(EXAMPLE_PLAN), env=live)
    assert json.loads(status.stdout)["subscribers"]["confirmed"] == 0

    # Pointed at the demo's database by mistake, a live command refuses and says why.
    wrong = {**live, "SESSION_BOT_VAR_DIR": "var/demo"}
    refused = cli(tmp_path, "subscribers", "list", env=wrong)
    assert refused.returncode == 2
    assert "belongs to `session-bot demo`" in refused.stderr
    assert "Traceback" not in refused.stderr

    # And the demo never takes over a database it did not make.
    from session_bot import wiring
    from session_bot.core.errors import ConfigError
    from tests.support.settings import make_settings

    settings = make_settings(tmp_path / "live", database_url="")
    store = wiring.open_store(settings)
    store.subscribers.add(
        "person@example.net",
        name=None,
        language="de",
        status="confirmed",
        now=dt.datetime.now(dt.UTC),
    )
    store.close()
    with pytest.raises(ConfigError, match="the demo never writes into a live database"):
        wiring.open_store(settings, purpose="demo")


def test_a_locked_database_is_a_message_not_a_traceback(tmp_path: Path) -> None:
    """Issue 14, finding 9: no traceback, and nobody's address from the SQL parameters."""
    import sqlite3

    assert cli(tmp_path, "subscribers", "list").returncode == 0  # creates the database
    holder = sqlite3.connect(tmp_path / "var" / "session-bot.db")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        out = cli(tmp_path, "subscribers", "add", "geheim.person@example.org", "--name", "Geheim")
    finally:
        holder.rollback()
        holder.close()
    assert out.returncode == 2, out.stdout + out.stderr
    assert "the database failed" in out.stderr and "database is locked" in out.stderr
    assert "Traceback" not in out.stderr
    assert "geheim" not in (out.stdout + out.stderr).lower()
