"""The ``sessions`` table: one row per planned session, with its meeting and what was announced."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.schema import sessions
from session_bot.core.records import SessionRow


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
        approved=json.loads(r.approved_json) if r.approved_json else None,
    )


class SessionRepository:
    """Sessions by key; the meeting intent is recorded before Zoom is asked (see DESIGN.md)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, key: str) -> SessionRow | None:
        with self._db.connect() as c:
            r = c.execute(select(sessions).where(sessions.c.key == key)).first()
        return _session_row(r) if r else None

    def ensure(
        self,
        key: str,
        series_id: str,
        date: str,
        start_utc: dt.datetime,
        duration: int,
        now: dt.datetime,
    ) -> SessionRow:
        with self._db.begin() as c:
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
        return _session_row(r)

    def record_meeting_intent(self, session_id: int, now: dt.datetime) -> None:
        with self._db.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(meeting_intent_at=now, updated_at=now)
            )

    def record_meeting(self, session_id: int, meeting: dict[str, Any], now: dt.datetime) -> None:
        with self._db.begin() as c:
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
        with self._db.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(meeting_id=None, meeting_json=None, meeting_intent_at=None, updated_at=now)
            )

    def record_announcement(
        self, session_id: int, announced: dict[str, Any], sequence: int, now: dt.datetime
    ) -> None:
        with self._db.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(announced_json=json.dumps(announced), sequence=sequence, updated_at=now)
            )

    def approve(self, session_id: int, fingerprint: dict[str, Any], now: dt.datetime) -> None:
        with self._db.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(approved_json=json.dumps(fingerprint), updated_at=now)
            )

    def mark_cancelled(self, session_id: int, now: dt.datetime) -> None:
        with self._db.begin() as c:
            c.execute(
                update(sessions)
                .where(sessions.c.id == session_id)
                .values(cancelled_at=now, updated_at=now)
            )

    def flag_zoom_check(self, meeting_id: int, now: dt.datetime) -> str | None:
        """Mark the session that owns ``meeting_id`` for a read-back; its key, or None if unknown."""
        with self._db.begin() as c:
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

    def to_check(self) -> list[str]:
        with self._db.connect() as c:
            return [
                str(k)
                for k in c.execute(
                    select(sessions.c.key).where(sessions.c.check_zoom_at.is_not(None))
                ).scalars()
            ]

    def clear_zoom_check(self, session_id: int) -> None:
        with self._db.begin() as c:
            c.execute(
                update(sessions).where(sessions.c.id == session_id).values(check_zoom_at=None)
            )

    def all(self) -> list[SessionRow]:
        with self._db.connect() as c:
            rows = c.execute(select(sessions).order_by(sessions.c.date)).all()
        return [_session_row(r) for r in rows]
