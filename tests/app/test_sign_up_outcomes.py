"""A web sign-up's outcomes through the writer's function (``record_requests``) on SQLite and
PostgreSQL: its statements run as driver SQL (issue 18), and each rule still holds — a new
address is recorded, a repeated one renewed, a confirmed one left alone with one notice to its
owner a day, and the limits per address and per client."""

from __future__ import annotations

import datetime as dt

from session_bot.adapters.db.store import Store
from session_bot.app import subscriptions as subs

SECRET = "test-secret-key-0123456789abcdef"
NOW = dt.datetime(2026, 12, 5, 12, 0, tzinfo=dt.UTC)
MINUTE = dt.timedelta(minutes=1)


def _request(address: str, ip: str, now: dt.datetime) -> subs.SubscribeRequest:
    return subs.prepare_request(
        address=address,
        name="Jörg",
        language="de",
        consent_version="de-1",
        proof=subs.RequestProof(ip, "Firefox", "https://example.org/subscribe"),
        now=now,
    )


def _actions(store: Store, requests: list[subs.SubscribeRequest]) -> list[str]:
    return [o.action for o in subs.record_requests(store, SECRET, requests)]


def test_new_repeated_and_limited_addresses_in_one_batch(store: Store) -> None:
    batch = [_request("neu@example.org", "203.0.113.1", NOW + i * MINUTE) for i in range(4)]
    assert _actions(store, batch) == ["send-confirmation"] * 3 + ["address-limited"]
    row = store.subscribers.get("neu@example.org")
    assert row is not None and row["status"] == "pending"
    assert row["requested_at"] == NOW + 2 * MINUTE  # the last renewal's moment
    assert row["request_ip"] == "203.0.113.1"


def test_a_client_is_limited_across_addresses(store: Store) -> None:
    batch = [_request(f"a{i}@example.org", "203.0.113.9", NOW) for i in range(11)]
    assert _actions(store, batch) == ["send-confirmation"] * 10 + ["client-limited"]
    assert store.subscribers.get("a10@example.org") is None
    # Another client is not affected.
    assert _actions(store, [_request("a10@example.org", "203.0.113.10", NOW)]) == [
        "send-confirmation"
    ]


def test_a_confirmed_address_is_left_alone_and_its_owner_told_once_a_day(store: Store) -> None:
    sid = store.subscribers.add(
        "da@example.org", name=None, language="de", status="confirmed", now=NOW
    )
    later = NOW + dt.timedelta(hours=2)
    batch = [_request("DA@example.org", f"203.0.113.{i}", later) for i in range(2)]
    assert _actions(store, batch) == ["notify-owner", "nothing"]
    row = store.subscribers.get("da@example.org")
    assert row is not None and row["id"] == sid and row["status"] == "confirmed"
    next_day = later + dt.timedelta(days=1)
    assert _actions(store, [_request("da@example.org", "203.0.113.5", next_day)]) == [
        "notify-owner"
    ]
