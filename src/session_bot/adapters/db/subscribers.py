"""The ``subscribers`` and ``forgotten`` tables; the consent workflow lives in ``app.subscriptions``."""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Iterator, Sequence
from typing import Any

from sqlalchemy import and_, bindparam, delete, func, insert, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.driver_sql import DriverStatement
from session_bot.adapters.db.schema import deliveries, forgotten, mailings, subscribers
from session_bot.core.errors import StoreError
from session_bot.core.records import BouncedSubscriber, ImportedRow

# IN (…) lists stay well below SQLite's and PostgreSQL's parameter limits.
_CHUNK = 500
# email_key of an erased subscriber's tombstone; contains no "@", so no address ever matches it.
FORGOTTEN_KEY = "forgotten:"
_BY_KEY = select(subscribers).where(subscribers.c.email_key == bindparam("b_key"))


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


def _new_row(
    email: str, name: str | None, language: str, status: str, now: dt.datetime, consent: Any
) -> dict[str, Any]:
    return {
        "email": email,
        "email_key": email.lower(),
        "name": name,
        "language": language,
        "status": status,
        "created_at": now,
        "updated_at": now,
        "hard_bounces": 0,
        **consent,
    }


class SubscriberRepository:
    """Subscriber rows and the hashes of erased addresses."""

    def __init__(self, db: Database) -> None:
        self._db = db
        self._inserts: dict[tuple[str, ...], DriverStatement] = {}

    def add(
        self,
        email: str,
        *,
        name: str | None,
        language: str,
        status: str,
        now: dt.datetime,
        **consent: Any,
    ) -> int:
        values = _new_row(email, name, language, status, now, consent)
        with self._db.begin() as c:
            pk = c.execute(insert(subscribers).values(**values)).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def try_add(
        self,
        email: str,
        *,
        name: str | None,
        language: str,
        status: str,
        now: dt.datetime,
        **consent: Any,
    ) -> int | None:
        """Like ``add``; None if the address is already there (a concurrent insert).

        One statement (no savepoint): it runs inside a subscribe request's transaction, where
        each statement is another wait for the interpreter lock while the writers queue."""
        values = _new_row(email, name, language, status, now, consent)
        with self._db.begin() as c:
            row = self._try_add(tuple(values)).first(c, values)
        return None if row is None else int(row[0])

    def _try_add(self, columns: tuple[str, ...]) -> DriverStatement:
        """``try_add``'s statement for these columns, built once: run as driver SQL."""
        statement = self._inserts.get(columns)
        if statement is None:
            dialect_insert = pg_insert if self._db.dialect == "postgresql" else sqlite_insert
            insert_new = (
                dialect_insert(subscribers)
                .on_conflict_do_nothing(index_elements=[subscribers.c.email_key])
                .returning(subscribers.c.id)
            )
            statement = DriverStatement(insert_new, self._db.engine.dialect, columns)
            statement = self._inserts.setdefault(columns, statement)
        return statement

    def get(self, email: str) -> dict[str, Any] | None:
        with self._db.connect() as c:
            r = self._by_key.first(c, {"b_key": email.lower()})
        return dict(zip(self._by_key.keys, r, strict=True)) if r else None

    @functools.cached_property
    def _by_key(self) -> DriverStatement:
        """Every subscribe request looks its address up: driver SQL."""
        return DriverStatement(_BY_KEY, self._db.engine.dialect)

    def get_by_id(self, subscriber_id: int) -> dict[str, Any] | None:
        with self._db.connect() as c:
            r = c.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return dict(r._mapping) if r else None

    def count(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(subscribers)
        if status:
            q = q.where(subscribers.c.status == status)
        else:
            q = q.where(subscribers.c.status != "forgotten")
        with self._db.connect() as c:
            return int(c.execute(q).scalar_one())

    def iter(
        self, statuses: Sequence[str] | None = None, batch: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Subscribers (of ``statuses``, else all but erased ones) in id order, in keyset pages."""
        last = 0
        while True:
            q = select(subscribers).where(subscribers.c.id > last)
            if statuses:
                q = q.where(subscribers.c.status.in_(list(statuses)))
            else:
                q = q.where(subscribers.c.status != "forgotten")
            with self._db.connect() as c:
                rows = c.execute(q.order_by(subscribers.c.id).limit(batch)).all()
            if not rows:
                return
            for r in rows:
                yield dict(r._mapping)
            last = rows[-1].id

    def update(
        self,
        subscriber_id: int,
        now: dt.datetime,
        *,
        only_if: dict[str, Any] | None = None,
        **values: Any,
    ) -> bool:
        """Set ``values``; with ``only_if`` only when those columns still hold those values.

        A value in ``only_if`` may be a tuple (any of) or None (IS NULL). Returns whether a row
        changed, so a caller can tell that a concurrent request got there first.
        """
        conds = [subscribers.c.id == subscriber_id]
        for col, want in (only_if or {}).items():
            column = subscribers.c[col]
            if want is None:
                conds.append(column.is_(None))
            elif isinstance(want, tuple):
                conds.append(column.in_(want))
            else:
                conds.append(column == want)
        with self._db.begin() as c:
            n = c.execute(
                update(subscribers).where(and_(*conds)).values(updated_at=now, **values)
            ).rowcount
        return bool(n)

    def claim_owner_notice(self, subscriber_id: int, now: dt.datetime, every: dt.timedelta) -> bool:
        """Record a notice to the address's owner unless one went out within ``every``."""
        with self._db.begin() as c:
            n = c.execute(
                update(subscribers)
                .where(
                    subscribers.c.id == subscriber_id,
                    or_(
                        subscribers.c.owner_notice_at.is_(None),
                        subscribers.c.owner_notice_at <= now - every,
                    ),
                )
                .values(owner_notice_at=now)
            ).rowcount
        return bool(n)

    def statuses_of(self, email_keys: Sequence[str]) -> dict[str, str]:
        """email_key → status for the keys that exist."""
        out: dict[str, str] = {}
        with self._db.connect() as c:
            for part in _chunks(email_keys):
                q = select(subscribers.c.email_key, subscribers.c.status).where(
                    subscribers.c.email_key.in_(list(part))
                )
                out.update({k: s for k, s in c.execute(q)})
        return out

    def import_rows(
        self,
        rows: Sequence[ImportedRow],
        *,
        now: dt.datetime,
        import_file: str,
        imported_by: str,
    ) -> int:
        """Insert all rows as confirmed in one transaction: all or nothing."""
        values = [
            {
                "email": r.email,
                "email_key": r.email.lower(),
                "name": r.name,
                "language": r.language,
                "status": "confirmed",
                "created_at": now,
                "updated_at": now,
                "confirmed_at": now,
                "import_file": import_file[:500],
                "imported_by": imported_by[:200],
                "hard_bounces": 0,
            }
            for r in rows
        ]
        if not values:
            return 0
        with self._db.begin() as c:
            try:
                with c.begin_nested():
                    for i in range(0, len(values), _CHUNK):
                        c.execute(insert(subscribers), values[i : i + _CHUNK])
            except IntegrityError:
                raise StoreError(
                    "the subscriber list changed while importing (an address in the file was added "
                    "meanwhile); nothing was imported. Run the import again."
                ) from None
        return len(values)

    def forget(self, email_key: str, email_hash: str, now: dt.datetime) -> bool:
        """Erase the subscriber's data and delivery rows; keep only ``email_hash``. False if unknown.

        The row stays as an empty tombstone (status ``forgotten``): SQLite hands a deleted
        highest id to the next insert, and the person's old unsubscribe link (which names the
        id) must never act on somebody else.
        """
        with self._db.begin() as c:
            sid = c.execute(
                select(subscribers.c.id).where(subscribers.c.email_key == email_key)
            ).scalar()
            if sid is not None:
                per_mailing = c.execute(
                    select(deliveries.c.mailing_id, func.count())
                    .where(deliveries.c.subscriber_id == sid)
                    .group_by(deliveries.c.mailing_id)
                ).all()
                for mailing_id, n in per_mailing:
                    c.execute(
                        update(mailings)
                        .where(mailings.c.id == mailing_id)
                        .values(recipients=mailings.c.recipients - n)
                    )
                c.execute(delete(deliveries).where(deliveries.c.subscriber_id == sid))
                blank = {col.name: None for col in subscribers.columns if col.nullable}
                c.execute(
                    update(subscribers)
                    .where(subscribers.c.id == sid)
                    .values(
                        **blank,
                        email="",
                        email_key=f"{FORGOTTEN_KEY}{sid}",
                        language="de",
                        status="forgotten",
                        created_at=now,
                        updated_at=now,
                        hard_bounces=0,
                    )
                )
            known = c.execute(
                select(forgotten.c.email_hash).where(forgotten.c.email_hash == email_hash)
            ).scalar()
            if known is None:
                c.execute(insert(forgotten).values(email_hash=email_hash, forgotten_at=now))
        return sid is not None

    def forgotten_at(self, email_hash: str) -> dt.datetime | None:
        with self._db.connect() as c:
            r: dt.datetime | None = c.execute(
                select(forgotten.c.forgotten_at).where(forgotten.c.email_hash == email_hash)
            ).scalar()
        return r

    def forgotten_among(self, hashes: Sequence[str]) -> set[str]:
        out: set[str] = set()
        with self._db.connect() as c:
            for part in _chunks(hashes):
                q = select(forgotten.c.email_hash).where(forgotten.c.email_hash.in_(list(part)))
                out.update(c.execute(q).scalars())
        return out

    def unforget(self, email_hash: str) -> None:
        """The person gave consent anew (a confirmed web request): lift the block."""
        with self._db.begin() as c:
            c.execute(delete(forgotten).where(forgotten.c.email_hash == email_hash))

    def bounced(self) -> list[BouncedSubscriber]:
        """Subscribers set aside after repeated hard bounces, with the last server answer."""
        last_answer = (
            select(deliveries.c.last_response)
            .where(deliveries.c.subscriber_id == subscribers.c.id, deliveries.c.status == "failed")
            .order_by(deliveries.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        with self._db.connect() as c:
            rows = c.execute(
                select(
                    subscribers.c.email,
                    subscribers.c.hard_bounces,
                    subscribers.c.bounced_at,
                    last_answer.label("last_response"),
                )
                .where(subscribers.c.status == "bounced")
                .order_by(subscribers.c.bounced_at)
            ).all()
        return [
            BouncedSubscriber(r.email, r.hard_bounces, r.bounced_at, r.last_response) for r in rows
        ]
