"""The store on a real SQLite file: idempotent freezing, migrations, counters, token cache."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from session_bot.adapters.db.store import Store, StoreTokenCache
from session_bot.core.errors import StoreError
from session_bot.core.records import DeliveryOutcome, OutcomeStatus

NOW = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    s.ensure_schema()
    return s


def add(store: Store, n: int, status: str = "confirmed") -> list[int]:
    return [
        store.subscribers.add(f"p{i}@example.org", name=None, language="de", status=status, now=NOW)
        for i in range(n)
    ]


def test_freezing_twice_adds_nobody_and_only_confirmed_are_frozen(store: Store) -> None:
    add(store, 5)
    store.subscribers.add(
        "pending@example.org", name=None, language="de", status="pending", now=NOW
    )
    row = store.sessions.ensure("s/2025-02-26", "s", "2025-02-26", NOW, 60, NOW)
    mid, created = store.mailings.freeze(row.id, "invitation", 0, NOW)
    again, created_again = store.mailings.freeze(row.id, "invitation", 0, NOW)
    assert (mid, created, created_again) == (again, True, False)
    assert store.mailings.get(mid).recipients == 5
    assert store.mailings.delivery_counts(mid) == {"pending": 5}
    # A new sequence is a new mailing (an update).
    mid2, _ = store.mailings.freeze(row.id, "update", 1, NOW)
    assert mid2 != mid


def test_ensure_session_is_idempotent(store: Store) -> None:
    a = store.sessions.ensure("s/1", "s", "2025-01-01", NOW, 60, NOW)
    b = store.sessions.ensure("s/1", "s", "2025-01-01", NOW, 60, NOW)
    assert a.id == b.id
    assert len(store.sessions.all()) == 1


def _claim(store: Store, mid: int, at: dt.datetime, limit: int = 100, **kw: Any) -> list[int]:
    claim = store.deliveries.claim(mid, clock=lambda: at, worker="w", limit=limit, **kw)
    return [d.id for d in claim.rows]


def _outcome(did: int, status: OutcomeStatus, **kw: Any) -> DeliveryOutcome:
    return DeliveryOutcome(did, 0, status, NOW, **kw)


def test_claims_take_rows_in_id_order_and_respect_retry_time(store: Store) -> None:
    add(store, 12)
    row = store.sessions.ensure("s/1", "s", "2025-01-01", NOW, 60, NOW)
    mid, _ = store.mailings.freeze(row.id, "invitation", 0, NOW)
    first = _claim(store, mid, NOW, limit=5)
    rest = _claim(store, mid, NOW, after=first[-1])
    ids = first + rest
    assert len(ids) == 12 and ids == sorted(ids)
    retry = NOW + dt.timedelta(minutes=5)
    store.deliveries.record_outcomes(
        [_outcome(ids[0], "pending", code=451, response="try later", retry_at=retry)]
        + [_outcome(i, "sent", code=250, response="ok") for i in ids[1:]]
    )
    assert _claim(store, mid, NOW) == []
    assert _claim(store, mid, NOW + dt.timedelta(minutes=6)) == [ids[0]]


def test_mailing_finishes_only_when_no_row_is_open(store: Store) -> None:
    add(store, 2)
    row = store.sessions.ensure("s/1", "s", "2025-01-01", NOW, 60, NOW)
    mid, _ = store.mailings.freeze(row.id, "invitation", 0, NOW)
    first, second = _claim(store, mid, NOW)  # both now `sending`
    store.deliveries.record_outcomes([_outcome(first, "sent", code=250, response="ok")])
    assert not store.mailings.finish_if_done(mid, NOW)  # a `sending` row is still open
    store.deliveries.record_outcomes([_outcome(second, "sent", code=250, response="ok")])
    assert store.mailings.finish_if_done(mid, NOW)
    assert store.mailings.open() == []


def test_alert_due_once_per_period(store: Store) -> None:
    day = dt.timedelta(days=1)
    assert store.counters.alert_due("held:s/1", NOW, day)
    assert not store.counters.alert_due("held:s/1", NOW + dt.timedelta(hours=23), day)
    assert store.counters.alert_due("held:s/1", NOW + dt.timedelta(hours=24), day)
    assert store.counters.alert_due("held:s/2", NOW, day)


def test_zoom_call_counter_per_utc_day(store: Store) -> None:
    assert store.counters.count_zoom_call("create", NOW) == 1
    assert store.counters.count_zoom_call("update", NOW) == 2
    assert store.counters.zoom_calls_on(NOW.date()) == {"create": 1, "update": 1}
    store.counters.count_zoom_call("create", NOW + dt.timedelta(days=1))
    assert store.counters.zoom_calls_on(NOW.date()) == {"create": 1, "update": 1}


def test_token_cache_is_shared_between_store_instances(database_url: str) -> None:
    url = database_url
    a, b = Store(url), Store(url)
    a.ensure_schema()
    StoreTokenCache(a, lambda: NOW).save("tok-123", NOW + dt.timedelta(hours=1))
    assert StoreTokenCache(b, lambda: NOW).load() == ("tok-123", NOW + dt.timedelta(hours=1))


def test_outdated_schema_is_refused_and_upgrade_fixes_it(database_url: str) -> None:
    url = database_url
    store = Store(url)
    store.ensure_schema()
    with store.engine.begin() as c:
        c.execute(text("UPDATE alembic_version SET version_num = 'old'"))
    with pytest.raises(StoreError, match="session-bot db upgrade"):
        Store(url).ensure_schema()


def test_unwritable_database_location_is_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(StoreError, match="SESSION_BOT_DATABASE_URL"):
        Store(f"sqlite:///{blocker}/sub/db.sqlite").ensure_schema()
