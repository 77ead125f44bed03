"""Small shared state in the ``kv`` table, and the counters that limit how often things happen."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import Connection, Integer, Text, cast, delete, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.schema import UTC, alerts, kv, zoom_calls

_RATE_PREFIX = "rl:"  # kv rows of the subscribe rate limits, keyed by a hash, never an address


class KeyValueRepository:
    """Named values shared by every process of one installation (optionally expiring)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str, now: dt.datetime | None = None) -> str | None:
        with self._db.connect() as c:
            r = c.execute(select(kv.c.value, kv.c.expires_at).where(kv.c.key == key)).first()
        if r is None or (now is not None and r.expires_at is not None and r.expires_at <= now):
            return None
        return str(r.value)

    def get_with_expiry(self, key: str) -> tuple[str, dt.datetime] | None:
        """The value and its expiry, if it has one."""
        with self._db.connect() as c:
            r = c.execute(select(kv.c.value, kv.c.expires_at).where(kv.c.key == key)).first()
        if r is None or r.expires_at is None:
            return None
        return str(r.value), r.expires_at

    def set(self, key: str, value: str, expires_at: dt.datetime | None = None) -> None:
        with self._db.begin() as c:
            _upsert(c, key, value, expires_at)

    def replace(self, key: str, value: str) -> None:
        """``set`` for a key several processes write at once: the last value wins, none fails."""
        with self._db.begin() as c:
            try:
                with c.begin_nested():
                    _upsert(c, key, value, None)
            except IntegrityError:
                _upsert(c, key, value, None)  # a concurrent insert came first; now this updates

    def set_default(self, key: str, value: str) -> str:
        """The key's value; ``value`` stored first if it has none. Of several processes doing
        this at once, one stores and all get the same answer."""
        with self._db.begin() as c:
            stored = c.execute(select(kv.c.value).where(kv.c.key == key)).scalar()
            if stored is not None:
                return str(stored)
            try:
                with c.begin_nested():
                    c.execute(insert(kv).values(key=key, value=value, expires_at=None))
            except IntegrityError:
                return str(c.execute(select(kv.c.value).where(kv.c.key == key)).scalar_one())
        return value

    def take(self, key: str) -> str | None:
        """Read and delete ``key`` in one statement: of two takers only one gets the value."""
        with self._db.begin() as c:
            value = c.execute(delete(kv).where(kv.c.key == key).returning(kv.c.value)).scalar()
        return None if value is None else str(value)


def _upsert(c: Connection, key: str, value: str, expires_at: dt.datetime | None) -> None:
    n = c.execute(
        update(kv).where(kv.c.key == key).values(value=value, expires_at=expires_at)
    ).rowcount
    if not n:
        c.execute(insert(kv).values(key=key, value=value, expires_at=expires_at))


class CounterRepository:
    """Zoom calls per day, alert periods and the subscribe rate-limit windows."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def count_zoom_call(self, kind: str, now: dt.datetime) -> int:
        day = now.astimezone(UTC).date().isoformat()
        with self._db.begin() as c:
            n = c.execute(
                update(zoom_calls)
                .where(zoom_calls.c.day == day, zoom_calls.c.kind == kind)
                .values(count=zoom_calls.c.count + 1)
            ).rowcount
            if not n:
                c.execute(insert(zoom_calls).values(day=day, kind=kind, count=1))
            return int(
                c.execute(
                    select(func.sum(zoom_calls.c.count)).where(zoom_calls.c.day == day)
                ).scalar_one()
            )

    def zoom_calls_on(self, day: dt.date) -> dict[str, int]:
        with self._db.connect() as c:
            rows = c.execute(
                select(zoom_calls.c.kind, zoom_calls.c.count).where(
                    zoom_calls.c.day == day.isoformat()
                )
            ).all()
        return {k: n for k, n in rows}

    def alert_due(self, key: str, now: dt.datetime, every: dt.timedelta) -> bool:
        """True (and recorded) if no alert with this key went out within ``every``."""
        with self._db.begin() as c:
            last = c.execute(select(alerts.c.last_sent_at).where(alerts.c.key == key)).scalar()
            if last is not None and now - last < every:
                return False
            if last is None:
                c.execute(insert(alerts).values(key=key, last_sent_at=now))
            else:
                c.execute(update(alerts).where(alerts.c.key == key).values(last_sent_at=now))
        return True

    def hit_rate_limit(self, key: str, now: dt.datetime, window: dt.timedelta, limit: int) -> bool:
        """Count one hit in ``key``'s fixed window; True if this hit is within ``limit``."""
        full = _RATE_PREFIX + key
        with self._db.begin() as c:
            n = c.execute(
                update(kv)
                .where(kv.c.key == full, kv.c.expires_at > now)
                .values(value=cast(cast(kv.c.value, Integer) + 1, Text))
            ).rowcount
            if not n:
                # A new window: drop this key's expired counter and any other stale ones.
                c.execute(
                    # expires_at first: its index finds the expired rows without a look at
                    # the live ones, so the cost does not grow with the day's sign-ups.
                    delete(kv).where(kv.c.expires_at <= now, kv.c.key.like(_RATE_PREFIX + "%"))
                )
                try:
                    with c.begin_nested():
                        c.execute(insert(kv).values(key=full, value="1", expires_at=now + window))
                except IntegrityError:
                    # A concurrent request opened the window first: count in it.
                    c.execute(
                        update(kv)
                        .where(kv.c.key == full)
                        .values(value=cast(cast(kv.c.value, Integer) + 1, Text))
                    )
            count = int(c.execute(select(kv.c.value).where(kv.c.key == full)).scalar_one())
        return count <= limit
