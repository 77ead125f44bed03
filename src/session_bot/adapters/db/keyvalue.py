"""Small shared state in the ``kv`` table, and the counters that limit how often things happen."""

from __future__ import annotations

import datetime as dt
import functools

from sqlalchemy import (
    Connection,
    Integer,
    Text,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.driver_sql import DriverStatement
from session_bot.adapters.db.schema import UTC, UTCDateTime, alerts, kv, zoom_calls

_RATE_PREFIX = "rl:"  # kv rows of the subscribe rate limits, keyed by a hash, never an address
_CLEAR_EVERY = dt.timedelta(minutes=1)


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
        self._cleared_at: dt.datetime | None = None  # expired rate-limit windows, last cleared

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
        """Count one hit in ``key``'s fixed window; True if this hit is within ``limit``.

        One statement whatever the state: an upsert that opens a new window where the last
        one expired (or none was) and counts in the open one otherwise; concurrent first hits
        meet in the primary key and count in the same window."""
        with self._db.begin() as c:
            ((count,),) = self._hit.rows(
                c, {"b_key": _RATE_PREFIX + key, "b_now": now, "b_until": now + window}
            )
            self._clear_expired(c, now)
        return int(count) <= limit

    def _clear_expired(self, c: Connection, now: dt.datetime) -> None:
        """Expired windows go at most once a minute per process, found through the index on
        ``expires_at``: each request pays for nothing, and a clearing costs what expired since
        the last one, however many windows are open (issue 18). An expired window not yet
        cleared counts nothing: the upsert restarts it."""
        if self._cleared_at is not None and now - self._cleared_at < _CLEAR_EVERY:
            return
        self._cleared_at = now
        c.execute(delete(kv).where(kv.c.expires_at <= now, kv.c.key.like(_RATE_PREFIX + "%")))

    @functools.cached_property
    def _hit(self) -> DriverStatement:
        """The upsert of ``hit_rate_limit``, built once for the database's dialect; run as
        driver SQL (each sign-up runs two)."""
        from sqlalchemy.dialects import postgresql, sqlite

        dialect_insert = postgresql.insert if self._db.dialect == "postgresql" else sqlite.insert
        now, until = bindparam("b_now", type_=UTCDateTime), bindparam("b_until", type_=UTCDateTime)
        stmt = dialect_insert(kv).values(key=bindparam("b_key"), value="1", expires_at=until)
        live = kv.c.expires_at > now
        upsert = stmt.on_conflict_do_update(
            index_elements=[kv.c.key],
            set_={
                "value": case((live, cast(cast(kv.c.value, Integer) + 1, Text)), else_="1"),
                "expires_at": case((live, kv.c.expires_at), else_=until),
            },
        ).returning(kv.c.value)
        return DriverStatement(upsert, self._db.engine.dialect)
