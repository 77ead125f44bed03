"""Queries on mailings and deliveries (a mixin of ``Store``)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Engine,
    func,
    insert,
    literal,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from session_bot.schema import deliveries, mailings, sessions, subscribers


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


class DeliveryQueries:
    """Freezing mailings, streaming and marking their delivery rows."""

    engine: Engine

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
                    session_id=session_id,
                    kind=kind,
                    sequence=sequence,
                    created_at=now,
                    recipients=0,
                )
            ).inserted_primary_key[0]
            src = select(
                literal(mailing_id),
                subscribers.c.id,
                subscribers.c.email,
                literal("pending"),
                literal(0),
            ).where(subscribers.c.status == "confirmed")
            c.execute(
                insert(deliveries).from_select(
                    ["mailing_id", "subscriber_id", "email", "status", "attempts"], src
                )
            )
            # Counted, not taken from rowcount: psycopg reports -1 for INSERT … SELECT.
            n = c.execute(
                select(func.count())
                .select_from(deliveries)
                .where(deliveries.c.mailing_id == mailing_id)
            ).scalar_one()
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
                self._mailing_select()
                .where(mailings.c.finished_at.is_(None))
                .order_by(mailings.c.id)
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
                    (deliveries.c.next_attempt_at.is_(None))
                    | (deliveries.c.next_attempt_at <= now),
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
                self._mailing_select()
                .where(mailings.c.session_id == session_id)
                .order_by(mailings.c.id)
            ).all()
        return [self._mailing_row(r) for r in rows]
