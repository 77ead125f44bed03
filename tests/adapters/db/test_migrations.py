"""Alembic migrations: a database made by the first revision upgrades without losing data."""

from __future__ import annotations

import datetime as dt

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import text

from session_bot.adapters.db.schema import metadata
from session_bot.adapters.db.store import Store
from session_bot.core.errors import StoreError

NOW = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)


def test_migrations_build_exactly_the_declared_schema(database_url: str) -> None:
    store = Store(database_url)
    store.upgrade()
    with store.engine.connect() as c:
        assert compare_metadata(MigrationContext.configure(c), metadata) == []


def test_upgrade_from_the_first_revision_keeps_everything(database_url: str) -> None:
    url = database_url
    old = Store(url)
    cfg = old._alembic()
    with old.engine.begin() as c:
        cfg.attributes["connection"] = c
        command.upgrade(cfg, "0001")
    with old.engine.begin() as c:
        c.execute(
            text(
                "INSERT INTO subscribers (id, email, email_key, name, language, status, created_at,"
                " updated_at, hard_bounces) VALUES (1, 'Jö@Example.org', 'jö@example.org', 'Jö',"
                " 'de', 'confirmed', '2025-01-01 00:00:00', '2025-01-01 00:00:00', 0)"
            )
        )
        c.execute(
            text(
                "INSERT INTO sessions (id, key, series_id, date, meeting_id, meeting_json, sequence,"
                " updated_at) VALUES (1, 'w/2025-02-26', 'w', '2025-02-26', 66547677759, '{}', 0,"
                " '2025-01-01 00:00:00')"
            )
        )
        c.execute(
            text(
                "INSERT INTO mailings (id, session_id, kind, sequence, created_at, recipients)"
                " VALUES (1, 1, 'invitation', 0, '2025-02-12 08:00:00', 1)"
            )
        )
        c.execute(
            text(
                "INSERT INTO deliveries (id, mailing_id, subscriber_id, email, status, attempts,"
                " sent_at) VALUES (1, 1, 1, 'Jö@Example.org', 'sent', 1, '2025-02-12 08:00:01')"
            )
        )
    with pytest.raises(StoreError, match="db upgrade"):
        Store(url).ensure_schema()

    new = Store(url)
    new.upgrade()
    assert new.schema_revision()[0] == new.schema_revision()[1] == "0007"
    new.ensure_schema()
    # 0007: a run keeps what it did as numbers, for the console's words.
    run_id = new.runs.start("test", NOW)
    new.runs.finish(run_id, NOW, "ok", "1 message(s) sent", {"sent": 1})
    last = new.runs.last()
    assert last is not None and last["counts"] == {"sent": 1} and "counts_json" not in last
    row = new.sessions.get("w/2025-02-26")
    assert row is not None and row.meeting_id == 66547677759
    assert new.subscribers.get("jö@example.org") is not None
    assert new.mailings.delivery_counts() == {"sent": 1}
    assert new.mailings.details(1) == {}
    new.mailings.set_details(1, {"reason": "x"})
    assert new.mailings.details(1) == {"reason": "x"}
    assert new.mailings.kinds_by_session()["w/2025-02-26"]["invitation"] == NOW
