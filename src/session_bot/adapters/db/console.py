"""The console's tables: organiser accounts, signed-in sessions, the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import delete, insert, select, update
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.schema import audit_log, console_sessions, organisers
from session_bot.core.console import AuditEntry, ConsoleSession, Organiser


def _organiser(r: Any) -> Organiser:
    return Organiser(
        id=r.id,
        email=r.email,
        name=r.name,
        password_hash=r.password_hash,
        created_at=r.created_at,
        password_set_at=r.password_set_at,
        last_sign_in_at=r.last_sign_in_at,
    )


class OrganiserRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def add(self, email: str, name: str | None, now: dt.datetime) -> Organiser | None:
        """The new account; None if the address has one already."""
        with self._db.begin() as c:
            try:
                with c.begin_nested():
                    c.execute(insert(organisers).values(email=email, name=name, created_at=now))
            except IntegrityError:
                return None
        return self.get(email)

    def get(self, email: str) -> Organiser | None:
        with self._db.connect() as c:
            r = c.execute(select(organisers).where(organisers.c.email == email)).first()
        return _organiser(r) if r else None

    def get_by_id(self, organiser_id: int) -> Organiser | None:
        with self._db.connect() as c:
            r = c.execute(select(organisers).where(organisers.c.id == organiser_id)).first()
        return _organiser(r) if r else None

    def all(self) -> list[Organiser]:
        with self._db.connect() as c:
            rows = c.execute(select(organisers).order_by(organisers.c.email)).all()
        return [_organiser(r) for r in rows]

    def set_password(self, organiser_id: int, password_hash: str, now: dt.datetime) -> None:
        with self._db.begin() as c:
            c.execute(
                update(organisers)
                .where(organisers.c.id == organiser_id)
                .values(password_hash=password_hash, password_set_at=now)
            )
            # A new password ends every session signed in with the old one.
            c.execute(
                delete(console_sessions).where(console_sessions.c.organiser_id == organiser_id)
            )

    def signed_in(self, organiser_id: int, now: dt.datetime) -> None:
        with self._db.begin() as c:
            c.execute(
                update(organisers)
                .where(organisers.c.id == organiser_id)
                .values(last_sign_in_at=now)
            )

    def remove(self, organiser_id: int) -> None:
        with self._db.begin() as c:
            c.execute(
                delete(console_sessions).where(console_sessions.c.organiser_id == organiser_id)
            )
            c.execute(delete(organisers).where(organisers.c.id == organiser_id))


class ConsoleSessionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(
        self, token_hash: str, organiser_id: int, csrf: str, client: str | None, now: dt.datetime
    ) -> None:
        with self._db.begin() as c:
            c.execute(
                insert(console_sessions).values(
                    token_hash=token_hash,
                    organiser_id=organiser_id,
                    csrf=csrf,
                    created_at=now,
                    last_seen_at=now,
                    client=(client or "")[:64] or None,
                )
            )

    def get(self, token_hash: str) -> ConsoleSession | None:
        q = (
            select(console_sessions, organisers)
            .join(organisers, organisers.c.id == console_sessions.c.organiser_id)
            .where(console_sessions.c.token_hash == token_hash)
        )
        with self._db.connect() as c:
            r = c.execute(q).first()
        if r is None:
            return None
        return ConsoleSession(
            organiser=_organiser(r),
            csrf=r.csrf,
            created_at=r.created_at,
            last_seen_at=r.last_seen_at,
        )

    def touch(self, token_hash: str, now: dt.datetime) -> None:
        with self._db.begin() as c:
            c.execute(
                update(console_sessions)
                .where(console_sessions.c.token_hash == token_hash)
                .values(last_seen_at=now)
            )

    def end(self, token_hash: str) -> None:
        with self._db.begin() as c:
            c.execute(delete(console_sessions).where(console_sessions.c.token_hash == token_hash))

    def end_idle(self, seen_before: dt.datetime, created_before: dt.datetime) -> int:
        with self._db.begin() as c:
            return int(
                c.execute(
                    delete(console_sessions).where(
                        (console_sessions.c.last_seen_at < seen_before)
                        | (console_sessions.c.created_at < created_before)
                    )
                ).rowcount
                or 0
            )


class AuditRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self, at: dt.datetime, actor: str, action: str, detail: str, client: str | None
    ) -> None:
        with self._db.begin() as c:
            c.execute(
                insert(audit_log).values(
                    at=at,
                    actor=actor[:320],
                    action=action[:40],
                    detail=detail,
                    client=(client or "")[:64] or None,
                )
            )

    def latest(self, limit: int = 200) -> list[AuditEntry]:
        with self._db.connect() as c:
            rows = c.execute(select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)).all()
        return [AuditEntry(r.at, r.actor, r.action, r.detail, r.client) for r in rows]
