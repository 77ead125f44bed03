"""The database file is private, and a bad SESSION_BOT_DATABASE_URL is a clear error that never
shows the password (issue 14, findings 15 and 16)."""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from session_bot.adapters.db.store import Store
from session_bot.core.errors import StoreError
from tests.support.pg import require_pg


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask, under which files are created readable by everyone (0644)."""
    old = os.umask(0o022)
    yield
    os.umask(old)


@pytest.mark.usefixtures("open_umask")
def test_a_new_sqlite_database_and_its_wal_files_are_private(tmp_path: Path) -> None:
    db = tmp_path / "var" / "session-bot.db"
    store = Store(f"sqlite:///{db}")
    try:
        store.ensure_schema()
        with store.engine.connect() as c:  # a reader keeps the -wal and -shm files in place
            c.execute(text("SELECT 1")).all()
            with store.engine.begin() as w:
                w.execute(text("INSERT INTO kv (key, value) VALUES ('k', 'v')"))
            sides = [db.with_name(db.name + s) for s in ("-wal", "-shm")]
            assert all(p.exists() for p in sides)
            assert {p.name: mode(p) for p in (db, *sides)} == {p.name: 0o600 for p in (db, *sides)}
    finally:
        store.close()


@pytest.mark.usefixtures("open_umask")
def test_an_existing_world_readable_database_is_tightened_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    db = tmp_path / "session-bot.db"
    Store(f"sqlite:///{db}").ensure_schema()
    db.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="session_bot.store"):
        store = Store(f"sqlite:///{db}")
    store.ensure_schema()
    store.close()
    assert mode(db) == 0o600
    [record] = [r for r in caplog.records if r.name == "session_bot.store"]
    assert str(db) in record.getMessage() and "0644" in record.getMessage()
    # A private file is left as it is, without a word.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="session_bot.store"):
        Store(f"sqlite:///{db}").close()
    assert not caplog.records


@pytest.mark.parametrize(
    ("url", "secret", "says"),
    [
        ("postgresql+psycopg://bot:pa@ss9Xq@db.example/x", "ss9Xq", "%40"),
        ("postgresql+psycopg://bot:pa@ss9Xq@db.example:5432/x", "ss9Xq", "%40"),
        ("postgresql+psycopg://bot:s3cret@db.example:fünf/x", "s3cret", "port is not a number"),
        # The password's tail after its "@" and ":" would be read as the port.
        ("postgresql+psycopg://bot:pa@h:ss9Xq@db.example/x", "ss9Xq", "port is not a number"),
        ("notaurl", "notaurl", "not a URL"),
    ],
)
def test_a_bad_database_url_is_a_store_error_without_its_password(
    url: str, secret: str, says: str
) -> None:
    with pytest.raises(StoreError) as info:
        Store(url)
    message = str(info.value)
    assert secret not in message
    assert "SESSION_BOT_DATABASE_URL" in message and says in message
    assert "%40" in message  # how to write a password with an @


def test_a_masked_url_names_user_host_and_database(tmp_path: Path) -> None:
    with pytest.raises(StoreError) as info:
        Store("postgresql+psycopg://bot:pa@ss9Xq@db.example:5432/x")
    assert "postgresql+psycopg://bot:***@db.example:5432/x" in str(info.value)


def test_a_percent_encoded_password_with_an_at_sign_connects() -> None:
    require_pg()  # trust authentication: any password is accepted, its spelling is what counts
    store = Store("postgresql+psycopg://postgres:pa%40ss9Xq@127.0.0.1:5432/postgres")
    try:
        with store.db.connect() as c:
            assert c.execute(text("SELECT 1")).scalar() == 1
    finally:
        store.close()
