"""The store on a real SQLite file: idempotent freezing, migrations, counters, token cache."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from sqlalchemy import text

from session_bot.adapters.db.store import Store, StoreTokenCache
from session_bot.core.errors import StoreError

NOW = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(database_url: str) -> Store:
    s = Store(database_url)
    s.ensure_schema()
    return s


def add(store: Store, n: int, status: str = "confirmed") -> list[int]:
    return [
        store.add_subscriber(f"p{i}@example.org", name=None, language="de", status=status, now=NOW)
        for i in range(n)
    ]


def test_freezing_twice_adds_nobody_and_only_confirmed_are_frozen(store: Store) -> None:
    add(store, 5)
    store.add_subscriber("pending@example.org", name=None, language="de", status="pending", now=NOW)
    row = store.ensure_session("s/2025-02-26", "s", "2025-02-26", NOW, 60, NOW)
    mid, created = store.freeze_mailing(row.id, "invitation", 0, NOW)
    again, created_again = store.freeze_mailing(row.id, "invitation", 0, NOW)
    assert (mid, created, created_again) == (again, True, False)
    assert store.get_mailing(mid).recipients == 5
    assert store.delivery_counts(mid) == {"pending": 5}
    # A new sequence is a new mailing (an update).
    mid2, _ = store.freeze_mailing(row.id, "update", 1, NOW)
    assert mid2 != mid


def test_ensure_session_is_idempotent(store: Store) -> None:
    a = store.ensure_session("s/1", "s", "2025-01-01", NOW, 60, NOW)
    b = store.ensure_session("s/1", "s", "2025-01-01", NOW, 60, NOW)
    assert a.id == b.id
    assert len(store.all_sessions()) == 1


def test_iter_deliverable_streams_in_pages_and_respects_retry_time(store: Store) -> None:
    add(store, 12)
    row = store.ensure_session("s/1", "s", "2025-01-01", NOW, 60, NOW)
    mid, _ = store.freeze_mailing(row.id, "invitation", 0, NOW)
    ids = [d.id for d in store.iter_deliverable(mid, NOW, batch=5)]
    assert len(ids) == 12 and ids == sorted(ids)
    store.mark_result(ids[0], "pending", NOW, 451, "try later", NOW + dt.timedelta(minutes=5))
    store.mark_result(ids[1], "sent", NOW, 250, "ok")
    left = [d.id for d in store.iter_deliverable(mid, NOW, batch=5)]
    assert ids[0] not in left and ids[1] not in left and len(left) == 10
    later = [d.id for d in store.iter_deliverable(mid, NOW + dt.timedelta(minutes=6))]
    assert ids[0] in later


def test_mailing_finishes_only_when_no_row_is_open(store: Store) -> None:
    add(store, 2)
    row = store.ensure_session("s/1", "s", "2025-01-01", NOW, 60, NOW)
    mid, _ = store.freeze_mailing(row.id, "invitation", 0, NOW)
    first, second = (d.id for d in store.iter_deliverable(mid, NOW))
    store.mark_result(first, "sent", NOW, 250, "ok")
    assert not store.finish_mailing_if_done(mid, NOW)
    store.mark_sending(second, NOW)
    assert not store.finish_mailing_if_done(mid, NOW)  # a `sending` row is still open
    store.mark_result(second, "sent", NOW, 250, "ok")
    assert store.finish_mailing_if_done(mid, NOW)
    assert store.open_mailings() == []


def test_alert_due_once_per_period(store: Store) -> None:
    day = dt.timedelta(days=1)
    assert store.alert_due("held:s/1", NOW, day)
    assert not store.alert_due("held:s/1", NOW + dt.timedelta(hours=23), day)
    assert store.alert_due("held:s/1", NOW + dt.timedelta(hours=24), day)
    assert store.alert_due("held:s/2", NOW, day)


def test_zoom_call_counter_per_utc_day(store: Store) -> None:
    assert store.count_zoom_call("create", NOW) == 1
    assert store.count_zoom_call("update", NOW) == 2
    assert store.zoom_calls_on(NOW.date()) == {"create": 1, "update": 1}
    store.count_zoom_call("create", NOW + dt.timedelta(days=1))
    assert store.zoom_calls_on(NOW.date()) == {"create": 1, "update": 1}


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
