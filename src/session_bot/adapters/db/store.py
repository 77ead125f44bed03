"""The database: every query session-bot makes (with the mixins in store_*.py).

Only store*.py write SQL. Timestamps are stored as UTC; reads return aware UTC datetimes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    Engine,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from session_bot.adapters.db.deliveries import DeliveryQueries, DeliveryRow, MailingRow
from session_bot.adapters.db.schema import (
    UTC,
    UTCDateTime,
    alerts,
    kv,
    mailings,
    metadata,
    runs,
    sessions,
    zoom_calls,
)
from session_bot.adapters.db.subscribers import SubscriberQueries
from session_bot.core.errors import StoreError

SCHEMA_LOCK_KEY = (0x5E55B07 << 32) | 3  # advisory lock key, distinct from leader.py's keys

__all__ = ["DeliveryRow", "MailingRow", "SessionRow", "Store", "StoreTokenCache", "metadata"]


@dataclass(frozen=True)
class SessionRow:
    id: int
    key: str
    series_id: str
    date: str
    meeting_intent_at: dt.datetime | None
    meeting_id: int | None
    meeting_json: dict[str, Any] | None
    announced: dict[str, Any] | None
    sequence: int
    cancelled_at: dt.datetime | None


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets status/web readers work while a run writes; NORMAL is durable at checkpoints.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store(DeliveryQueries, SubscriberQueries):
    """All persistent state. One instance per process; thread-safe through the engine's pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database folder {folder} ({exc.strerror}); fix "
                    "SESSION_BOT_DATABASE_URL or SESSION_BOT_VAR_DIR"
                ) from None
        try:
            self.engine: Engine = create_engine(url, future=True)
        except ImportError as exc:
            raise StoreError(
                f"the database driver for SESSION_BOT_DATABASE_URL is not installed ({exc.name}); "
                "for PostgreSQL install the `postgres` extra: pip install 'session-bot[postgres]'"
            ) from None
        except SQLAlchemyError as exc:
            # Not the URL itself in the message: it may hold a password.
            raise StoreError(
                f"SESSION_BOT_DATABASE_URL is not a usable database URL ({type(exc).__name__}); "
                "use sqlite:///var/session-bot.db or postgresql+psycopg://user:password@host/db"
            ) from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    # --- schema ------------------------------------------------------------------------------
    def _alembic(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        return cfg

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's revision or None for an empty database, the code's head revision)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic()).get_current_head() or ""
        try:
            with self.engine.connect() as c:
                current = MigrationContext.configure(c).get_current_revision()
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database ({exc.orig}); check SESSION_BOT_DATABASE_URL"
            ) from None
        return current, head

    def upgrade(self) -> None:
        """Bring the schema to the code's revision (Alembic migrations)."""
        from alembic import command

        cfg = self._alembic()
        try:
            with self.engine.begin() as c:
                if self.dialect == "postgresql":
                    # Two servers starting at once on an empty database: one migrates, the
                    # other waits here and then finds nothing left to do.
                    c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
                cfg.attributes["connection"] = c
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(
                f"cannot migrate the database ({exc.orig}); check SESSION_BOT_DATABASE_URL and "
                "that the directory is writable"
            ) from None

    def ensure_schema(self) -> None:
        """Create a fresh database; refuse an existing one that is behind the code."""
        current, head = self.schema_revision()
        if current is None and not self._has_tables():
            self.upgrade()
        elif current != head:
            raise StoreError(
                f"the database schema is at revision {current or 'unknown'}, this version of "
                f"session-bot needs {head}. Back up the database, then run `session-bot db upgrade`."
            )

    def _has_tables(self) -> bool:
        from sqlalchemy import inspect

        return bool(inspect(self.engine).get_table_names())

    def create_schema(self) -> None:
        """Tests and the demo: migrate whatever is there to the current revision."""
        try:
            self.upgrade()
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database ({exc.orig}); check SESSION_BOT_DATABASE_URL and "
                "that the directory is writable"
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    # --- sessions --------------------------------------------------------------------------
    @staticmethod
    def _session_row(r: Any) -> SessionRow:
        return SessionRow(
            id=r.id,
            key=r.key,
            series_id=r.series_id,
            date=r.date,
            meeting_intent_at=r.meeting_intent_at,
            meeting_id=r.meeting_id,
            meeting_json=json.loads(r.meeting_json) if r.meeting_json else None,
            announced=json.loads(r.announced_json) if r.announced_json else None,
            sequence=r.sequence,
            cancelled_at=r.cancelled_at,
        )

    def get_session(self, key: str) -> SessionRow | None:
        with self.engine.connect() as c:
            r = c.execute(select(sessions).where(sessions.c.key == key)).first()
        return self._session_row(r) if r else None

    def ensure_session(
        self,
        key: str,
        series_id: str,
        date: str,
        start_utc: dt.datetime,
        duration: int,
        now: dt.datetime,
    ) -> SessionRow:
        with self.engine.begin() as c:
            r = c.execute(select(sessions).where(sessions.c.key == key)).first()
            if r is None:
                # A concurrent actor may insert the same key: a savepoint keeps the
                # transaction usable (PostgreSQL aborts it on an IntegrityError otherwise).
                with contextlib.suppress(IntegrityError), c.begin_nested():
                    c.execute(
                        insert(sessions).values(
                            key=key,
                            series_id=series_id,
                            date=date,
                            start_utc=start_utc,
                            duration=duration,
                            sequence=0,
                            updated_at=now,
                        )
                    )
                r = c.execute(select(sessions).where(sessions.c.key == key)).one()
        return self._session_row(r)

    def record_meeting_intent(self, session_id: int, now: dt.datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(meeting_intent_at=now, updated_at=now)
            )

    def record_meeting(self, session_id: int, meeting: dict[str, Any], now: dt.datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(
                    meeting_id=int(meeting["id"]),
                    meeting_json=json.dumps(meeting),
                    meeting_created_at=now,
                    updated_at=now,
                )
            )

    def clear_meeting(self, session_id: int, now: dt.datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(meeting_id=None, meeting_json=None, meeting_intent_at=None, updated_at=now)
            )

    def record_announcement(
        self, session_id: int, announced: dict[str, Any], sequence: int, now: dt.datetime
    ) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(announced_json=json.dumps(announced), sequence=sequence, updated_at=now)
            )

    def mark_cancelled(self, session_id: int, now: dt.datetime) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(cancelled_at=now, updated_at=now)
            )

    def flag_zoom_check(self, meeting_id: int, now: dt.datetime) -> str | None:
        """Mark the session that owns ``meeting_id`` for a read-back; its key, or None if unknown."""
        with self.engine.begin() as c:
            key = c.execute(
                select(sessions.c.key).where(sessions.c.meeting_id == meeting_id)
            ).scalar()
            if key is not None:
                c.execute(
                    update(sessions)
                    .where(sessions.c.meeting_id == meeting_id)
                    .values(check_zoom_at=now, updated_at=now)
                )
        return str(key) if key is not None else None

    def sessions_to_check(self) -> list[str]:
        with self.engine.connect() as c:
            return [
                str(k)
                for k in c.execute(
                    select(sessions.c.key).where(sessions.c.check_zoom_at.is_not(None))
                ).scalars()
            ]

    def clear_zoom_check(self, session_id: int) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(sessions).where(sessions.c.id == session_id).values(check_zoom_at=None)
            )

    def set_mailing_details(self, mailing_id: int, details: dict[str, Any]) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(mailings)
                .where(mailings.c.id == mailing_id)
                .values(details=json.dumps(details, ensure_ascii=False))
            )

    def mailing_details(self, mailing_id: int) -> dict[str, Any]:
        with self.engine.connect() as c:
            raw = c.execute(select(mailings.c.details).where(mailings.c.id == mailing_id)).scalar()
        return dict(json.loads(raw)) if raw else {}

    def all_sessions(self) -> list[SessionRow]:
        with self.engine.connect() as c:
            rows = c.execute(select(sessions).order_by(sessions.c.date)).all()
        return [self._session_row(r) for r in rows]

    def mailing_kinds_by_session(self) -> dict[str, dict[str, dt.datetime]]:
        """session key → {kind: created_at of its latest mailing}."""
        q = (
            select(
                sessions.c.key,
                mailings.c.kind,
                type_coerce(func.max(mailings.c.created_at), UTCDateTime),
            )
            .join(mailings, mailings.c.session_id == sessions.c.id)
            .group_by(sessions.c.key, mailings.c.kind)
        )
        out: dict[str, dict[str, dt.datetime]] = {}
        with self.engine.connect() as c:
            for key, kind, created in c.execute(q):
                out.setdefault(key, {})[kind] = created
        return out

    # --- runs, key/value, counters, alerts ---------------------------------------------------
    def start_run(self, trigger: str, now: dt.datetime) -> int:
        with self.engine.begin() as c:
            return int(
                c.execute(
                    insert(runs).values(trigger=trigger, started_at=now).returning(runs.c.id)
                ).scalar_one()
            )

    def finish_run(self, run_id: int, now: dt.datetime, outcome: str, summary: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(finished_at=now, outcome=outcome, summary=summary)
            )

    def last_run(self) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(runs).order_by(runs.c.id.desc()).limit(1)).first()
        return dict(r._mapping) if r else None

    def kv_get(self, key: str, now: dt.datetime | None = None) -> str | None:
        with self.engine.connect() as c:
            r = c.execute(select(kv.c.value, kv.c.expires_at).where(kv.c.key == key)).first()
        if r is None or (now is not None and r.expires_at is not None and r.expires_at <= now):
            return None
        return str(r.value)

    def kv_set(self, key: str, value: str, expires_at: dt.datetime | None = None) -> None:
        with self.engine.begin() as c:
            n = c.execute(
                update(kv).where(kv.c.key == key).values(value=value, expires_at=expires_at)
            ).rowcount
            if not n:
                c.execute(insert(kv).values(key=key, value=value, expires_at=expires_at))

    def kv_replace(self, key: str, value: str) -> None:
        """``kv_set`` for a key several processes write at once: the last value wins, none fails."""
        try:
            self.kv_set(key, value)
        except IntegrityError:
            self.kv_set(key, value)  # a concurrent insert came first; now this one updates

    def kv_take(self, key: str) -> str | None:
        """Read and delete ``key`` in one statement: of two takers only one gets the value."""
        with self.engine.begin() as c:
            value = c.execute(delete(kv).where(kv.c.key == key).returning(kv.c.value)).scalar()
        return None if value is None else str(value)

    def count_zoom_call(self, kind: str, now: dt.datetime) -> int:
        day = now.astimezone(UTC).date().isoformat()
        with self.engine.begin() as c:
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
        with self.engine.connect() as c:
            rows = c.execute(
                select(zoom_calls.c.kind, zoom_calls.c.count).where(
                    zoom_calls.c.day == day.isoformat()
                )
            ).all()
        return {k: n for k, n in rows}

    def alert_due(self, key: str, now: dt.datetime, every: dt.timedelta) -> bool:
        """True (and recorded) if no alert with this key went out within ``every``."""
        with self.engine.begin() as c:
            last = c.execute(select(alerts.c.last_sent_at).where(alerts.c.key == key)).scalar()
            if last is not None and now - last < every:
                return False
            if last is None:
                c.execute(insert(alerts).values(key=key, last_sent_at=now))
            else:
                c.execute(update(alerts).where(alerts.c.key == key).values(last_sent_at=now))
        return True


class StoreTokenCache:
    """Zoom token shared by all processes of one installation (moodle-mod_zoom#473)."""

    KEY = "zoom_token"

    def __init__(self, store: Store, clock: Any) -> None:
        self._store = store
        self._clock = clock

    def load(self) -> tuple[str, dt.datetime] | None:
        with self._store.engine.connect() as c:
            r = c.execute(select(kv.c.value, kv.c.expires_at).where(kv.c.key == self.KEY)).first()
        if r is None or r.expires_at is None:
            return None
        return str(r.value), r.expires_at

    def save(self, token: str, expires_at: dt.datetime) -> None:
        self._store.kv_set(self.KEY, token, expires_at)
