"""The subscribe request's writes (issue 18): the rate-limit windows as one upsert with expired
windows cleared at most once a minute, and ``Store.transaction`` putting a use case's repository
calls into one write transaction — committed together or not at all."""

from __future__ import annotations

import datetime as dt
import threading
from pathlib import Path

import pytest
from sqlalchemy import func, select

from session_bot.adapters.db.schema import kv
from session_bot.adapters.db.store import Store
from session_bot.core.errors import StoreError

NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
HOUR = dt.timedelta(hours=1)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'sb.db'}")
    s.create_schema()
    return s


def _rate_rows(store: Store) -> int:
    with store.db.connect() as c:
        return int(c.execute(select(func.count()).where(kv.c.key.like("rl:%"))).scalar_one())


def test_a_window_counts_to_its_limit_and_a_new_one_starts_after_it(store: Store) -> None:
    hits = [
        store.counters.hit_rate_limit("c:x", NOW + dt.timedelta(minutes=i), HOUR, 3)
        for i in range(5)
    ]
    assert hits == [True, True, True, False, False]
    # The window opened at NOW ends at NOW + 1 h, whatever the later hits did.
    assert store.counters.hit_rate_limit("c:x", NOW + HOUR, HOUR, 3)
    assert store.counters.hit_rate_limit("c:y", NOW, HOUR, 3)  # another key, its own window


def test_expired_windows_are_cleared_at_most_once_a_minute(store: Store) -> None:
    for i in range(20):
        store.counters.hit_rate_limit(f"c:{i}", NOW, HOUR, 3)
    assert _rate_rows(store) == 20
    later = NOW + HOUR + dt.timedelta(seconds=1)
    store.counters.hit_rate_limit("c:new", later, HOUR, 3)
    assert _rate_rows(store) == 1  # the first hit after a minute cleared the 20 expired ones
    for i in range(5):
        store.counters.hit_rate_limit(f"d:{i}", later + HOUR, HOUR, 3)
    # Nothing expired is left behind for long: the next clearing takes what expired since.
    store.counters.hit_rate_limit("e", later + HOUR + dt.timedelta(minutes=2), HOUR, 3)
    assert _rate_rows(store) == 6


def test_concurrent_first_hits_count_in_one_window(store: Store) -> None:
    results: list[bool] = []
    lock = threading.Lock()

    def hit() -> None:
        ok = store.counters.hit_rate_limit("c:same", NOW, HOUR, 10)
        with lock:
            results.append(ok)

    threads = [threading.Thread(target=hit) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 6 + [True] * 10


def test_a_transaction_commits_its_writes_together(store: Store) -> None:
    with store.transaction():
        store.counters.hit_rate_limit("c:a", NOW, HOUR, 3)
        sid = store.subscribers.try_add(
            "neu@example.org", name="Jörg", language="de", status="pending", now=NOW
        )
        # Reads inside see the transaction's own writes.
        assert store.subscribers.get("neu@example.org") is not None
    assert sid is not None and store.subscribers.get_by_id(sid) is not None
    assert _rate_rows(store) == 1


def test_a_failing_transaction_leaves_nothing_behind(store: Store) -> None:
    with pytest.raises(RuntimeError), store.transaction():
        store.counters.hit_rate_limit("c:a", NOW, HOUR, 3)
        store.subscribers.try_add(
            "neu@example.org", name=None, language="de", status="pending", now=NOW
        )
        raise RuntimeError("the request failed half-way")
    assert store.subscribers.get("neu@example.org") is None
    assert _rate_rows(store) == 0
    # The store works on afterwards, in and out of transactions.
    with store.transaction():
        assert store.counters.hit_rate_limit("c:a", NOW, HOUR, 3)
    assert store.subscribers.try_add(
        "neu@example.org", name=None, language="de", status="pending", now=NOW
    )


def test_a_database_error_inside_a_transaction_is_a_store_error(store: Store) -> None:
    with pytest.raises(StoreError), store.transaction(), store.db.begin() as c:
        c.exec_driver_sql("INSERT INTO no_such_table VALUES (1)")


def test_try_add_gives_none_for_an_address_already_there(store: Store) -> None:
    first = store.subscribers.try_add(
        "a@example.org", name=None, language="de", status="pending", now=NOW
    )
    again = store.subscribers.try_add(
        "A@example.org", name=None, language="en", status="pending", now=NOW
    )
    assert first is not None and again is None
    row = store.subscribers.get("a@example.org")
    assert row is not None and row["language"] == "de"
