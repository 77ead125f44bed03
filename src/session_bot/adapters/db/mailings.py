"""Mailings: a mailing is frozen with its recipient list, one delivery row per recipient.

An announcement (issue 17) is a mailing without a session (``session_id`` NULL, kind
``announcement``, numbered on its own); its texts, series and send-at moment are in ``details``.
Its ``MailingRow.session_key`` reads ``<series>/announcement-<n>``: the series for the sender and
the unsubscribe links; the session-based queries (``kinds_by_session``, ``of_session`` …) skip it.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from sqlalchemy import func, insert, select, type_coerce, update
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.mailing_sql import (
    COUNTED,
    add_recipients,
    delivery_filter,
    delivery_select,
    for_announcement,
    summary_select,
)
from session_bot.adapters.db.schema import UTCDateTime, deliveries, mailings, sessions, subscribers
from session_bot.core.records import MailingRow

ANNOUNCEMENT = "announcement"


def _mailing_select() -> Any:
    return select(mailings, sessions.c.key.label("session_key")).outerjoin(
        sessions, sessions.c.id == mailings.c.session_id
    )


def announcement_key(details: str | None, sequence: int) -> str:
    series = json.loads(details).get("series", "") if details else ""
    return f"{series}/{ANNOUNCEMENT}-{sequence}"


def _mailing_row(r: Any) -> MailingRow:
    return MailingRow(
        id=r.id,
        session_id=r.session_id or 0,
        session_key=r.session_key or announcement_key(r.details, r.sequence),
        kind=r.kind,
        sequence=r.sequence,
        created_at=r.created_at,
        recipients=r.recipients,
        finished_at=r.finished_at,
    )


class MailingRepository:
    """Freezing, reading and finishing mailings; their per-recipient log and counts."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def freeze(
        self, session_id: int, kind: str, sequence: int, now: dt.datetime
    ) -> tuple[int, bool]:
        """Create the mailing and one pending delivery per confirmed subscriber, atomically.

        Returns (mailing_id, created). An existing mailing is returned unchanged: freezing twice
        never adds recipients or copies.
        """
        with self._db.begin() as c:
            existing = c.execute(
                select(mailings.c.id).where(
                    mailings.c.session_id == session_id,
                    mailings.c.kind == kind,
                    mailings.c.sequence == sequence,
                )
            ).scalar()
            if existing is not None:
                return int(existing), False
            inserted = c.execute(
                insert(mailings).values(
                    session_id=session_id,
                    kind=kind,
                    sequence=sequence,
                    created_at=now,
                    recipients=0,
                )
            ).inserted_primary_key
            assert inserted is not None
            mailing_id = inserted[0]
            add_recipients(c, mailing_id)
        return int(mailing_id), True

    def create_announcement(
        self, details: dict[str, Any], now: dt.datetime, *, freeze: bool
    ) -> tuple[int, int]:
        """A new announcement numbered after the last one; (mailing_id, number). ``freeze``:
        with its recipients now; else they are frozen by ``freeze_announcement`` when due."""
        for _ in range(20):  # two organisers at once: the unique index hands out each number once
            with self._db.begin() as c:
                last = c.execute(
                    select(func.max(mailings.c.sequence)).where(
                        mailings.c.session_id.is_(None), mailings.c.kind == ANNOUNCEMENT
                    )
                ).scalar()
                number = int(last or 0) + 1
                values = {**details, "frozen_at": now.isoformat()} if freeze else details
                try:
                    with c.begin_nested():
                        inserted = c.execute(
                            insert(mailings).values(
                                session_id=None,
                                kind=ANNOUNCEMENT,
                                sequence=number,
                                created_at=now,
                                recipients=0,
                                details=json.dumps(values, ensure_ascii=False),
                            )
                        ).inserted_primary_key
                except IntegrityError:
                    continue
                assert inserted is not None
                if freeze:
                    add_recipients(c, inserted[0])
            return int(inserted[0]), number
        raise AssertionError("no announcement number free after 20 tries")

    def freeze_announcement(self, mailing_id: int, now: dt.datetime) -> bool:
        """Freeze a scheduled announcement's recipients (the confirmed subscribers now); False
        if it was frozen before. The conditional update lets one of two callers do it."""
        with self._db.begin() as c:
            raw = c.execute(select(mailings.c.details).where(mailings.c.id == mailing_id)).scalar()
            details = dict(json.loads(raw)) if raw else {}
            if "frozen_at" in details:
                return False
            details["frozen_at"] = now.isoformat()
            done = c.execute(
                update(mailings)
                .where(mailings.c.id == mailing_id, mailings.c.details == raw)
                .values(details=json.dumps(details, ensure_ascii=False), created_at=now)
            ).rowcount
            if done != 1:
                return False
            add_recipients(c, mailing_id)
        return True

    def add_delivery(self, mailing_id: int, subscriber_id: int) -> bool:
        """Add one recipient to a frozen mailing (late confirmation); False if already there."""
        with self._db.begin() as c:
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

    def open(self) -> list[MailingRow]:
        with self._db.connect() as c:
            rows = c.execute(
                _mailing_select().where(mailings.c.finished_at.is_(None)).order_by(mailings.c.id)
            ).all()
        return [_mailing_row(r) for r in rows]

    def get(self, mailing_id: int) -> MailingRow:
        with self._db.connect() as c:
            r = c.execute(_mailing_select().where(mailings.c.id == mailing_id)).one()
        return _mailing_row(r)

    def finish_if_done(self, mailing_id: int, now: dt.datetime) -> bool:
        with self._db.begin() as c:
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

    def supersede(self, session_id: int, reason: str, now: dt.datetime) -> int:
        open_ids = (
            select(mailings.c.id)
            .where(mailings.c.session_id == session_id, mailings.c.finished_at.is_(None))
            .scalar_subquery()
        )
        with self._db.begin() as c:
            skipped = c.execute(
                update(deliveries)
                .where(deliveries.c.mailing_id.in_(open_ids), deliveries.c.status == "pending")
                .values(status="skipped", last_response=reason[:500], next_attempt_at=None)
            ).rowcount
        for mailing in self.of_session(session_id):
            if mailing.finished_at is None:
                self.finish_if_done(mailing.id, now)
        return int(skipped or 0)

    def of_session(self, session_id: int) -> list[MailingRow]:
        with self._db.connect() as c:
            rows = c.execute(
                _mailing_select().where(mailings.c.session_id == session_id).order_by(mailings.c.id)
            ).all()
        return [_mailing_row(r) for r in rows]

    def upcoming_invitations(self, now: dt.datetime) -> list[int]:
        """The latest invitation mailing of every session still ahead and not cancelled."""
        q = (
            select(mailings.c.session_id, func.max(mailings.c.sequence))
            .join(sessions, sessions.c.id == mailings.c.session_id)
            .where(
                mailings.c.kind == "invitation",
                sessions.c.start_utc > now,
                sessions.c.cancelled_at.is_(None),
            )
            .group_by(mailings.c.session_id)
        )
        with self._db.connect() as c:
            latest = c.execute(q).all()
            ids = [
                c.execute(
                    select(mailings.c.id).where(
                        mailings.c.session_id == sid,
                        mailings.c.kind == "invitation",
                        mailings.c.sequence == seq,
                    )
                ).scalar_one()
                for sid, seq in latest
            ]
        return sorted(ids)

    def set_details(self, mailing_id: int, details: dict[str, Any]) -> None:
        with self._db.begin() as c:
            c.execute(
                update(mailings)
                .where(mailings.c.id == mailing_id)
                .values(details=json.dumps(details, ensure_ascii=False))
            )

    def details(self, mailing_id: int) -> dict[str, Any]:
        with self._db.connect() as c:
            raw = c.execute(select(mailings.c.details).where(mailings.c.id == mailing_id)).scalar()
        return dict(json.loads(raw)) if raw else {}

    def kinds_by_session(self) -> dict[str, dict[str, dt.datetime]]:
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
        with self._db.connect() as c:
            for key, kind, created in c.execute(q):
                out.setdefault(key, {})[kind] = created
        return out

    def delivery_log(self, mailing_id: int) -> list[dict[str, Any]]:
        """Who got what, when, with which server answer (one dict per delivery row)."""
        with self._db.connect() as c:
            rows = c.execute(
                select(deliveries)
                .where(deliveries.c.mailing_id == mailing_id)
                .order_by(deliveries.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def waiting(self, mailing_id: int) -> tuple[dt.datetime | None, str | None]:
        """Of the rows still owed: the next retry moment and the latest server answer."""
        owed = (deliveries.c.mailing_id == mailing_id) & deliveries.c.status.in_(
            ("pending", "sending")
        )
        with self._db.connect() as c:
            nxt = c.execute(select(func.min(deliveries.c.next_attempt_at)).where(owed)).scalar()
            answer = c.execute(
                select(deliveries.c.last_code, deliveries.c.last_response)
                .where(owed, deliveries.c.last_response.is_not(None))
                .order_by(deliveries.c.id.desc())
                .limit(1)
            ).first()
        said = f"{answer[0] or ''} {answer[1]}".strip() if answer else None
        return nxt, said

    def delivery_counts(self, mailing_id: int | None = None) -> dict[str, int]:
        q = select(deliveries.c.status, func.count()).group_by(deliveries.c.status)
        if mailing_id is not None:
            q = q.where(deliveries.c.mailing_id == mailing_id)
        with self._db.connect() as c:
            return {status: n for status, n in c.execute(q)}

    def summaries(self, mailing_id: int | None = None) -> list[dict[str, Any]]:
        """Every mailing (or the one asked for), newest first, with its session's date and start
        and its rows counted: sent, pending (incl. sending), failed, bounced (the failed rows
        that bounced hard: a 55x answer or a subscriber set aside as bounced), skipped."""
        q = summary_select()
        if mailing_id is not None:
            q = q.where(mailings.c.id == mailing_id)
        with self._db.connect() as c:
            rows = c.execute(q).all()
        return [
            for_announcement(
                {k: (int(v or 0) if k in COUNTED else v) for k, v in r._mapping.items()}
            )
            for r in rows
        ]

    def delivery_page(
        self,
        *,
        mailing_id: int | None = None,
        email: str | None = None,
        state: str | None = None,
        offset: int = 0,
        limit: int = 100,
    ) -> tuple[int, list[dict[str, Any]]]:
        """One page of delivery rows (of a mailing, or to an address, case-insensitive) with
        their mailing, session and ``hard`` (bounced hard), and how many rows match in all.

        ``state``: a delivery status, ``pending`` (with ``sending``) or ``bounced``."""
        where = delivery_filter(mailing_id, email, state)
        joined = deliveries.join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        with self._db.connect() as c:
            total = c.execute(select(func.count()).select_from(joined).where(where)).scalar_one()
            rows = c.execute(
                delivery_select().where(where).offset(max(offset, 0)).limit(limit)
            ).all()
        return int(total), [for_announcement({**r._mapping, "hard": bool(r.hard)}) for r in rows]
