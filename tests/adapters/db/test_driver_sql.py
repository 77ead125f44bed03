"""A sign-up's statements run as driver SQL (``adapters/db/driver_sql.py``, issue 18) write and
read what SQLAlchemy's execution of the same statements does, on SQLite and PostgreSQL; the
driver's errors reach the caller as SQLAlchemy's would."""

from __future__ import annotations

import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy.exc
from sqlalchemy import insert, select, update

from session_bot.adapters.db.driver_sql import DriverStatement
from session_bot.adapters.db.schema import kv, subscribers
from session_bot.adapters.db.store import Store
from session_bot.core.errors import StoreError

NOW = dt.datetime(2026, 12, 5, 12, 0, 0, 123456, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)
CONSENT: dict[str, Any] = {
    "requested_at": NOW,
    "request_ip": "203.0.113.7",
    "request_user_agent": "Firefox",
    "request_url": "https://example.org/subscribe",
    "consent_version": "de-1",
}


def _stored(store: Store, email_key: str) -> dict[str, Any]:
    """The row as the database holds it (the driver's values, no type conversion)."""
    with store.db.connect() as c:
        row = c.exec_driver_sql(
            "SELECT * FROM subscribers WHERE email_key = "
            + ("?" if store.dialect == "sqlite" else "%(k)s"),
            (email_key,) if store.dialect == "sqlite" else {"k": email_key},
        ).one()
    values = dict(row._mapping)
    del values["id"], values["email"], values["email_key"]
    return values


def _core_get(store: Store, email_key: str) -> dict[str, Any] | None:
    with store.db.connect() as c:
        r = c.execute(select(subscribers).where(subscribers.c.email_key == email_key)).first()
    return dict(r._mapping) if r else None


def test_a_sign_up_is_stored_as_sqlalchemy_stores_it(store: Store) -> None:
    sid = store.subscribers.try_add(
        "Neu@Example.org", name="Jörg", language="de", status="pending", now=NOW, **CONSENT
    )
    with store.db.begin() as c:
        c.execute(
            insert(subscribers).values(
                email="core@example.org",
                email_key="core@example.org",
                name="Jörg",
                language="de",
                status="pending",
                created_at=NOW,
                updated_at=NOW,
                hard_bounces=0,
                **CONSENT,
            )
        )
    assert sid is not None
    assert _stored(store, "neu@example.org") == _stored(store, "core@example.org")
    assert store.subscribers.get("NEU@example.org") == _core_get(store, "neu@example.org")


def test_get_reads_every_column_as_sqlalchemy_does(store: Store) -> None:
    sid = store.subscribers.try_add(
        "a@example.org", name=None, language="en", status="pending", now=NOW, **CONSENT
    )
    later = NOW + dt.timedelta(days=3, microseconds=7)
    with store.db.begin() as c:
        c.execute(
            update(subscribers)
            .where(subscribers.c.id == sid)
            .values(
                status="confirmed",
                confirmed_at=later,
                confirm_ip="198.51.100.1",
                confirm_user_agent="Safari",
                import_file="list.csv",
                imported_by="Kristina",
                unsubscribed_at=later,
                owner_notice_at=later,
                hard_bounces=2,
                bounced_at=later,
            )
        )
    row = store.subscribers.get("a@example.org")
    assert row == _core_get(store, "a@example.org")
    assert row is not None and row["confirmed_at"] == later and row["bounced_at"].tzinfo == dt.UTC
    assert store.subscribers.get("nobody@example.org") is None


def test_a_second_sign_up_of_an_address_adds_nothing(store: Store) -> None:
    with store.transaction():
        first = store.subscribers.try_add(
            "a@example.org", name=None, language="de", status="pending", now=NOW, **CONSENT
        )
        again = store.subscribers.try_add(
            "A@example.org", name="B", language="en", status="pending", now=NOW, **CONSENT
        )
    assert first is not None and again is None
    row = store.subscribers.get("a@example.org")
    assert row is not None and row["id"] == first and row["language"] == "de"


def test_rate_limit_windows_count_and_restart(store: Store) -> None:
    with store.transaction():
        hits = [
            store.counters.hit_rate_limit("c:x", NOW + dt.timedelta(minutes=i), HOUR, 3)
            for i in range(5)
        ]
    assert hits == [True, True, True, False, False]
    assert store.counters.hit_rate_limit("c:x", NOW + HOUR, HOUR, 3)  # a new window
    assert store.counters.hit_rate_limit("c:y", NOW, HOUR, 3)
    with store.db.connect() as c:
        window = c.execute(select(kv.c.value, kv.c.expires_at).where(kv.c.key == "rl:c:x")).one()
    assert window == ("1", NOW + 2 * HOUR)


def test_driver_errors_arrive_as_sqlalchemys_and_then_as_store_errors(store: Store) -> None:
    add = DriverStatement(insert(kv), store.engine.dialect, ["key", "value"])
    with pytest.raises(StoreError), store.transaction(), store.db.begin() as c:
        add.rows(c, {"key": "k", "value": "1"})
        with pytest.raises(sqlalchemy.exc.IntegrityError):
            add.rows(c, {"key": "k", "value": "2"})
        add.rows(c, {"key": "k", "value": "3"})
    assert store.kv.get("k") is None  # the transaction was rolled back
    # The store goes on working.
    assert store.counters.hit_rate_limit("c:a", NOW, HOUR, 3)


def test_a_moment_given_in_another_zone_is_stored_as_the_same_moment(store: Store) -> None:
    berlin = NOW.astimezone(ZoneInfo("Europe/Berlin"))
    for address, now in (("utc@example.org", NOW), ("berlin@example.org", berlin)):
        store.subscribers.try_add(
            address, name=None, language="de", status="pending", now=now, requested_at=now
        )
    assert _stored(store, "utc@example.org") == _stored(store, "berlin@example.org")
    with pytest.raises(StoreError):  # a naive time is refused, as UTCDateTime refuses it
        store.subscribers.try_add(
            "naive@example.org",
            name=None,
            language="de",
            status="pending",
            now=NOW.replace(tzinfo=None),
        )
