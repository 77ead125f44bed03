"""Shared builders for the delivery tests (a store with a frozen mailing, fast policies). No tests."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import select, update

from session_bot.adapters.db.schema import deliveries, subscribers
from session_bot.adapters.db.store import Store
from session_bot.app.delivery import DeliveryPolicy
from session_bot.core.records import DeliveryRow

SENDER = "bounces@sb.example.org"


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def address(i: int) -> str:
    return f"person{i:05d}@example.org"


def add_subscribers(store: Store, n: int, start: int = 0) -> list[int]:
    now = utc_now()
    return [
        store.subscribers.add(
            address(i), name=f"Person {i}", language="de", status="confirmed", now=now
        )
        for i in range(start, start + n)
    ]


def frozen_mailing(store: Store, key: str = "willkommen/2025-02-26") -> int:
    """A mailing frozen for every confirmed subscriber (one pending row each)."""
    now = utc_now()
    session = store.sessions.ensure(key, key.split("/")[0], key.split("/")[1], now, 90, now)
    mailing_id, created = store.mailings.freeze(session.id, "invitation", 0, now)
    assert created
    return mailing_id


def personalise(row: DeliveryRow) -> bytes:
    return (
        f"From: Session Bot <{SENDER}>\r\nTo: {row.email}\r\nSubject: Einladung\r\n"
        f"X-Delivery: {row.id}\r\n\r\nHallo {row.name},\r\n.\r\nbis bald.\r\n"
    ).encode()


def fast_policy(**changes: Any) -> DeliveryPolicy:
    """Retries due at once, short reconnect waits: a test never sleeps for long."""
    values: dict[str, Any] = {
        "batch": 3,
        "backoff": lambda attempt: dt.timedelta(0),
        "reconnect_delays": (0.05, 0.05),
        "linger": dt.timedelta(seconds=10),
        "poll": 0.05,
    }
    values.update(changes)
    return DeliveryPolicy(**values)


def rows(store: Store, mailing_id: int) -> dict[str, dict[str, Any]]:
    """Delivery rows by recipient address."""
    return {r["email"]: r for r in store.mailings.delivery_log(mailing_id)}


def set_subscriber_status(store: Store, email: str, status: str) -> None:
    with store.engine.begin() as c:
        c.execute(update(subscribers).where(subscribers.c.email == email).values(status=status))


def subscriber(store: Store, email: str) -> dict[str, Any]:
    found = store.subscribers.get(email)
    assert found is not None
    return found


def statuses(store: Store, mailing_id: int) -> dict[str, int]:
    return store.mailings.delivery_counts(mailing_id)


def sending_rows(store: Store) -> int:
    with store.engine.connect() as c:
        return len(c.execute(select(deliveries.c.id).where(deliveries.c.status == "sending")).all())
