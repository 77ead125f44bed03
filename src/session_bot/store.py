"""The database: SQLAlchemy Core tables and every query session-bot makes.

Only this module writes SQL. Timestamps are stored as UTC; reads return aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    Engine,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    event,
    func,
    insert,
    literal,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError, OperationalError, SQLAlchemyError

from session_bot.errors import StoreError

UTC = dt.UTC


class UTCDateTime(TypeDecorator[dt.datetime]):
    """Aware datetimes in, aware UTC datetimes out, naive UTC in the column."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; pass an aware one")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: dt.datetime | None, dialect: Any) -> dt.datetime | None:
        return value.replace(tzinfo=UTC) if value is not None else None


metadata = MetaData()

subscribers = Table(
    "subscribers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False),
    Column("email_key", String(320), nullable=False, unique=True),
    Column("name", String(200)),
    Column("language", String(5), nullable=False, default="de"),
    # pending | confirmed | unsubscribed | bounced
    Column("status", String(16), nullable=False, index=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    # Consent proof (BGH I ZR 164/09): the request and the confirmation, or the import.
    Column("requested_at", UTCDateTime),
    Column("request_ip", String(64)),
    Column("request_user_agent", String(500)),
    Column("request_url", String(500)),
    Column("consent_version", String(64)),
    Column("confirmed_at", UTCDateTime),
    Column("confirm_ip", String(64)),
    Column("confirm_user_agent", String(500)),
    Column("import_file", String(500)),
    Column("imported_by", String(200)),
    Column("unsubscribed_at", UTCDateTime),
    Column("owner_notice_at", UTCDateTime),
    Column("hard_bounces", Integer, nullable=False, default=0),
    Column("bounced_at", UTCDateTime),
)

forgotten = Table(
    "forgotten",
    metadata,
    Column("email_hash", String(128), primary_key=True),
    Column("forgotten_at", UTCDateTime, nullable=False),
)

sessions = Table(
    "sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key", String(80), nullable=False, unique=True),
    Column("series_id", String(40), nullable=False),
    Column("date", String(10), nullable=False),
    Column("start_utc", UTCDateTime),
    Column("duration", Integer),
    # Intent is recorded before Zoom is called, so a crash in between is detectable.
    Column("meeting_intent_at", UTCDateTime),
    Column("meeting_id", BigInteger),
    Column("meeting_json", Text),
    Column("meeting_created_at", UTCDateTime),
    # What subscribers were last told (JSON fingerprint) and the .ics SEQUENCE it carried.
    Column("announced_json", Text),
    Column("sequence", Integer, nullable=False, default=0),
    Column("cancelled_at", UTCDateTime),
    Column("held_alert_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
)

mailings = Table(
    "mailings",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("session_id", ForeignKey("sessions.id"), nullable=False),
    # invitation | reminder | update | cancellation | late-invitation
    Column("kind", String(20), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("recipients", Integer, nullable=False, default=0),
    Column("finished_at", UTCDateTime),
    UniqueConstraint("session_id", "kind", "sequence", name="uq_mailing"),
)

deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("mailing_id", ForeignKey("mailings.id"), nullable=False),
    Column("subscriber_id", ForeignKey("subscribers.id"), nullable=False),
    Column("email", String(320), nullable=False),
    # pending | sending | sent | failed | skipped
    Column("status", String(10), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime),
    Column("last_code", Integer),
    Column("last_response", String(500)),
    Column("claimed_by", String(80)),
    Column("sending_at", UTCDateTime),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("mailing_id", "subscriber_id", name="uq_delivery"),
    Index("ix_deliveries_mailing_status", "mailing_id", "status"),
    Index("ix_deliveries_sent_at", "sent_at"),
)

runs = Table(
    "runs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("trigger", String(20), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime),
    Column("outcome", String(20)),
    Column("summary", Text),
)

kv = Table(
    "kv",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
    Column("expires_at", UTCDateTime),
)

zoom_calls = Table(
    "zoom_calls",
    metadata,
    Column("day", String(10), primary_key=True),
    Column("kind", String(20), primary_key=True),
    Column("count", Integer, nullable=False),
)

alerts = Table(
    "alerts",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("last_sent_at", UTCDateTime, nullable=False),
)


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


@dataclass(frozen=True)
class MailingRow:
    id: int
    session_id: int
    session_key: str
    kind: str
    sequence: int
    created_at: dt.datetime
    recipients: int
    finished_at: dt.datetime | None


@dataclass(frozen=True)
class DeliveryRow:
    id: int
    mailing_id: int
    subscriber_id: int
    email: str
    name: str | None
    language: str
    subscriber_status: str
    attempts: int


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets status/web readers work while a run writes; NORMAL is durable at checkpoints.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.close()


class Store:
    """All persistent state. One instance per process; thread-safe through the engine's pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.engine: Engine = create_engine(url, future=True)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(
                f"cannot use database URL from SESSION_BOT_DATABASE_URL ({type(exc).__name__}: {exc}); "
                "use sqlite:///var/session-bot.db or postgresql+psycopg://user@host/db"
            ) from None
        if self.engine.dialect.name == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)

    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    def create_schema(self) -> None:
        try:
            metadata.create_all(self.engine)
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database ({exc.orig}); check SESSION_BOT_DATABASE_URL and that the "
                "directory is writable"
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
        self, key: str, series_id: str, date: str, start_utc: dt.datetime, duration: int, now: dt.datetime
    ) -> SessionRow:
        with self.engine.begin() as c:
            r = c.execute(select(sessions).where(sessions.c.key == key)).first()
            if r is None:
                try:
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
                except IntegrityError:
                    pass  # a concurrent actor created it; read it below
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
                update(sessions).where(sessions.c.id == session_id).values(cancelled_at=now, updated_at=now)
            )

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

    # --- mailings & deliveries ---------------------------------------------------------------
    def freeze_mailing(
        self, session_id: int, kind: str, sequence: int, now: dt.datetime
    ) -> tuple[int, bool]:
        """Create the mailing and one pending delivery per confirmed subscriber, atomically.

        Returns (mailing_id, created). An existing mailing is returned unchanged: freezing twice
        never adds recipients or copies.
        """
        with self.engine.begin() as c:
            existing = c.execute(
                select(mailings.c.id).where(
                    mailings.c.session_id == session_id,
                    mailings.c.kind == kind,
                    mailings.c.sequence == sequence,
                )
            ).scalar()
            if existing is not None:
                return int(existing), False
            mailing_id = c.execute(
                insert(mailings).values(
                    session_id=session_id, kind=kind, sequence=sequence, created_at=now, recipients=0
                )
            ).inserted_primary_key[0]
            src = select(
                literal(mailing_id),
                subscribers.c.id,
                subscribers.c.email,
                literal("pending"),
                literal(0),
            ).where(subscribers.c.status == "confirmed")
            n = c.execute(
                insert(deliveries).from_select(
                    ["mailing_id", "subscriber_id", "email", "status", "attempts"], src
                )
            ).rowcount
            c.execute(update(mailings).where(mailings.c.id == mailing_id).values(recipients=n))
        return int(mailing_id), True

    def add_delivery(self, mailing_id: int, subscriber_id: int) -> bool:
        """Add one recipient to a frozen mailing (late confirmation); False if already there."""
        with self.engine.begin() as c:
            email = c.execute(
                select(subscribers.c.email).where(subscribers.c.id == subscriber_id)
            ).scalar_one()
            try:
                with c.begin_nested():
                    c.execute(
                        insert(deliveries).values(
                            mailing_id=mailing_id,
                            subscriber_id=subscriber_id,
                            email=email,
                            status="pending",
                            attempts=0,
                        )
                    )
            except IntegrityError:
                return False
            c.execute(
                update(mailings)
                .where(mailings.c.id == mailing_id)
                .values(recipients=mailings.c.recipients + 1, finished_at=None)
            )
        return True

    def _mailing_select(self) -> Any:
        return select(mailings, sessions.c.key.label("session_key")).join(
            sessions, sessions.c.id == mailings.c.session_id
        )

    @staticmethod
    def _mailing_row(r: Any) -> MailingRow:
        return MailingRow(
            id=r.id,
            session_id=r.session_id,
            session_key=r.session_key,
            kind=r.kind,
            sequence=r.sequence,
            created_at=r.created_at,
            recipients=r.recipients,
            finished_at=r.finished_at,
        )

    def open_mailings(self) -> list[MailingRow]:
        with self.engine.connect() as c:
            rows = c.execute(
                self._mailing_select().where(mailings.c.finished_at.is_(None)).order_by(mailings.c.id)
            ).all()
        return [self._mailing_row(r) for r in rows]

    def get_mailing(self, mailing_id: int) -> MailingRow:
        with self.engine.connect() as c:
            r = c.execute(self._mailing_select().where(mailings.c.id == mailing_id)).one()
        return self._mailing_row(r)

    def iter_deliverable(
        self, mailing_id: int, now: dt.datetime, batch: int = 500
    ) -> Iterator[DeliveryRow]:
        """Stream the rows still to send (keyset pages: memory stays flat at any list size)."""
        last = 0
        while True:
            q = (
                select(
                    deliveries.c.id,
                    deliveries.c.mailing_id,
                    deliveries.c.subscriber_id,
                    deliveries.c.email,
                    deliveries.c.attempts,
                    subscribers.c.name,
                    subscribers.c.language,
                    subscribers.c.status.label("subscriber_status"),
                )
                .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
                .where(
                    deliveries.c.mailing_id == mailing_id,
                    deliveries.c.id > last,
                    deliveries.c.status.in_(("pending", "sending")),
                    (deliveries.c.next_attempt_at.is_(None)) | (deliveries.c.next_attempt_at <= now),
                )
                .order_by(deliveries.c.id)
                .limit(batch)
            )
            with self.engine.connect() as c:
                rows = c.execute(q).all()
            if not rows:
                return
            for r in rows:
                yield DeliveryRow(
                    id=r.id,
                    mailing_id=r.mailing_id,
                    subscriber_id=r.subscriber_id,
                    email=r.email,
                    name=r.name,
                    language=r.language,
                    subscriber_status=r.subscriber_status,
                    attempts=r.attempts,
                )
            last = rows[-1].id

    def mark_sending(self, delivery_id: int, now: dt.datetime, worker: str = "") -> None:
        with self.engine.begin() as c:
            c.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="sending", sending_at=now, claimed_by=worker or None)
            )

    def mark_result(
        self,
        delivery_id: int,
        status: str,
        now: dt.datetime,
        code: int | None,
        response: str,
        retry_at: dt.datetime | None = None,
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "last_code": code,
            "last_response": response[:500],
            "attempts": deliveries.c.attempts + 1,
            "next_attempt_at": retry_at,
        }
        if status == "sent":
            values["sent_at"] = now
        with self.engine.begin() as c:
            c.execute(update(deliveries).where(deliveries.c.id == delivery_id).values(**values))

    def mark_skipped(self, delivery_id: int, reason: str) -> None:
        with self.engine.begin() as c:
            c.execute(
                update(deliveries)
                .where(deliveries.c.id == delivery_id)
                .values(status="skipped", last_response=reason[:500])
            )

    def finish_mailing_if_done(self, mailing_id: int, now: dt.datetime) -> bool:
        with self.engine.begin() as c:
            left = c.execute(
                select(func.count())
                .select_from(deliveries)
                .where(
                    deliveries.c.mailing_id == mailing_id,
                    deliveries.c.status.in_(("pending", "sending")),
                )
            ).scalar_one()
            if left:
                return False
            c.execute(
                update(mailings)
                .where(mailings.c.id == mailing_id, mailings.c.finished_at.is_(None))
                .values(finished_at=now)
            )
        return True

    def delivery_counts(self, mailing_id: int | None = None) -> dict[str, int]:
        q = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if mailing_id is not None:
            q = q.where(deliveries.c.mailing_id == mailing_id)
        with self.engine.connect() as c:
            return {status: n for status, n in c.execute(q)}

    def mailings_of_session(self, session_id: int) -> list[MailingRow]:
        with self.engine.connect() as c:
            rows = c.execute(
                self._mailing_select().where(mailings.c.session_id == session_id).order_by(mailings.c.id)
            ).all()
        return [self._mailing_row(r) for r in rows]

    # --- subscribers (the subscribers module adds the consent workflow on top) ---------------
    def add_subscriber(
        self,
        email: str,
        *,
        name: str | None,
        language: str,
        status: str,
        now: dt.datetime,
        **consent: Any,
    ) -> int:
        with self.engine.begin() as c:
            return int(
                c.execute(
                    insert(subscribers).values(
                        email=email,
                        email_key=email.lower(),
                        name=name,
                        language=language,
                        status=status,
                        created_at=now,
                        updated_at=now,
                        hard_bounces=0,
                        **consent,
                    )
                ).inserted_primary_key[0]
            )

    def get_subscriber(self, email: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(subscribers).where(subscribers.c.email_key == email.lower())).first()
        return dict(r._mapping) if r else None

    def count_subscribers(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(subscribers)
        if status:
            q = q.where(subscribers.c.status == status)
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())

    # --- runs, key/value, counters, alerts ---------------------------------------------------
    def start_run(self, trigger: str, now: dt.datetime) -> int:
        with self.engine.begin() as c:
            return int(
                c.execute(insert(runs).values(trigger=trigger, started_at=now)).inserted_primary_key[0]
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
                select(zoom_calls.c.kind, zoom_calls.c.count).where(zoom_calls.c.day == day.isoformat())
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
