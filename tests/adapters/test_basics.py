"""Settings, tokens and the run lock."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from session_bot.adapters.lock import FileLock
from session_bot.core.errors import ConfigError, LockBusy
from session_bot.core.tokens import make_token, read_token
from session_bot.settings import load_settings


def test_tokens_round_trip_and_refuse_forgeries() -> None:
    tok = make_token("k" * 32, "unsubscribe", "42")
    assert read_token("k" * 32, "unsubscribe", tok) == "42"
    assert read_token("k" * 32, "confirm", tok) is None  # bound to its purpose
    assert read_token("x" * 32, "unsubscribe", tok) is None  # another key
    _body, sig = tok.split(".")
    forged = make_token("k" * 32, "unsubscribe", "43").split(".")[0] + "." + sig
    assert read_token("k" * 32, "unsubscribe", forged) is None
    for junk in ("", ".", "abc", "a.b.c", "%%%.%%%"):
        assert read_token("k" * 32, "unsubscribe", junk) is None


def test_env_file_settings_and_empty_values(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text(
        "SESSION_BOT_SMTP_HOST=mail.example.org\nSESSION_BOT_RATE_PER_SECOND=\n"
        "SESSION_BOT_ZOOM_DIAL_IN_COUNTRIES=de, at\n"
    )
    s = load_settings(env)
    assert s.smtp_host == "mail.example.org" and s.smtp_configured
    assert s.rate_per_second is None
    assert s.zoom_dial_in_countries == ["DE", "AT"]
    assert not s.zoom_configured


def test_bad_settings_name_the_variable(tmp_path: Path) -> None:
    env = tmp_path / ".env"
    env.write_text("SESSION_BOT_SMTP_PORT=seventy\n")
    with pytest.raises(ConfigError, match="SESSION_BOT_SMTP_PORT"):
        load_settings(env)
    env.write_text("SESSION_BOT_SECRET_KEY=changeme\n")
    with pytest.raises(ConfigError, match="SESSION_BOT_SECRET_KEY") as info:
        load_settings(env)
    assert "changeme" not in str(info.value)


def test_file_lock_excludes_a_second_process(tmp_path: Path) -> None:
    path = tmp_path / "run.lock"
    with FileLock(path).acquire():
        code = (
            "import sys; from pathlib import Path; from session_bot.adapters.lock import FileLock\n"
            "from session_bot.core.errors import LockBusy\n"
            f"try:\n    FileLock(Path({str(path)!r})).acquire(timeout=0.3)\n"
            "except LockBusy as e:\n    print(e); sys.exit(3)\n"
        )
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert out.returncode == 3
        assert "another session-bot run is active" in out.stdout
    # Released: the next one gets it at once.
    with FileLock(path).acquire(timeout=0), pytest.raises(LockBusy):
        FileLock(path).acquire(timeout=0)


def test_database_url_password_never_shown(tmp_path: Path) -> None:
    from session_bot.adapters.db.store import Store
    from session_bot.core.errors import StoreError

    s = load_settings(None, database_url="postgresql+psycopg://bot:s3cret-pw@db.example/x")
    assert "s3cret-pw" not in s.database_display and "***" in s.database_display
    with pytest.raises(StoreError) as info:
        Store("notaurl://bot:s3cret-pw@@@")
    assert "s3cret-pw" not in str(info.value) and "SESSION_BOT_DATABASE_URL" in str(info.value)
