"""Queries on subscribers (a mixin of ``Store``); the consent workflow lives in ``subscribers.py``."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Engine,
    Integer,
    Text,
    and_,
    cast,
    delete,
    func,
    insert,
    or_,
    select,
    update,
)
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.schema import (
    deliveries,
    forgotten,
    kv,
    mailings,
    sessions,
    subscribers,
)
from session_bot.core.errors import StoreError

# IN (…) lists stay well below SQLite's and PostgreSQL's parameter limits.
_CHUNK = 500
_RATE_PREFIX = "rl:"
# email_key of an erased subscriber's tombstone; contains no "@", so no address ever matches it.
FORGOTTEN_KEY = "forgotten:"


@dataclass(frozen=True)
class ImportedRow:
    """One validated row of an import, ready to insert."""

    email: str
    name: str | None
    language: str


def _chunks(items: Sequence[str]) -> Iterator[Sequence[str]]:
    for i in range(0, len(items), _CHUNK):
        yield items[i : i + _CHUNK]


class SubscriberQueries:
    """Subscriber rows, the ``forgotten`` hashes and the subscribe rate-limit counters."""

    engine: Engine

    # --- single rows -------------------------------------------------------------------------
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
            pk = c.execute(
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
            ).inserted_primary_key
        assert pk is not None
        return int(pk[0])

    def try_add_subscriber(
        self,
        email: str,
        *,
        name: str | None,
        language: str,
        status: str,
        now: dt.datetime,
        **consent: Any,
    ) -> int | None:
        """Like ``add_subscriber``; None if the address is already there (a concurrent insert)."""
        try:
            return self.add_subscriber(
                email, name=name, language=language, status=status, now=now, **consent
            )
        except IntegrityError:
            return None

    def get_subscriber(self, email: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(
                select(subscribers).where(subscribers.c.email_key == email.lower())
            ).first()
        return dict(r._mapping) if r else None

    def get_subscriber_by_id(self, subscriber_id: int) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(select(subscribers).where(subscribers.c.id == subscriber_id)).first()
        return dict(r._mapping) if r else None

    def count_subscribers(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(subscribers)
        if status:
            q = q.where(subscribers.c.status == status)
        else:
            q = q.where(subscribers.c.status != "forgotten")
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())

    def iter_subscribers(
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
            with self.engine.connect() as c:
                rows = c.execute(q.order_by(subscribers.c.id).limit(batch)).all()
            if not rows:
                return
            for r in rows:
                yield dict(r._mapping)
            last = rows[-1].id

    def update_subscriber(
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
        with self.engine.begin() as c:
            n = c.execute(
                update(subscribers).where(and_(*conds)).values(updated_at=now, **values)
            ).rowcount
        return bool(n)

    def claim_owner_notice(self, subscriber_id: int, now: dt.datetime, every: dt.timedelta) -> bool:
        """Record a notice to the address's owner unless one went out within ``every``."""
        with self.engine.begin() as c:
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

    # --- import ------------------------------------------------------------------------------
    def statuses_of(self, email_keys: Sequence[str]) -> dict[str, str]:
        """email_key → status for the keys that exist."""
        out: dict[str, str] = {}
        with self.engine.connect() as c:
            for part in _chunks(email_keys):
                q = select(subscribers.c.email_key, subscribers.c.status).where(
                    subscribers.c.email_key.in_(list(part))
                )
                out.update({k: s for k, s in c.execute(q)})
        return out

    def import_subscribers(
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
        try:
            with self.engine.begin() as c:
                for i in range(0, len(values), _CHUNK):
                    c.execute(insert(subscribers), values[i : i + _CHUNK])
        except IntegrityError:
            raise StoreError(
                "the subscriber list changed while importing (an address in the file was added "
                "meanwhile); nothing was imported. Run the import again."
            ) from None
        return len(values)

    # --- forgetting --------------------------------------------------------------------------
    def forget_subscriber(self, email_key: str, email_hash: str, now: dt.datetime) -> bool:
        """Erase the subscriber's data and delivery rows; keep only ``email_hash``. False if unknown.

        The row stays as an empty tombstone (status ``forgotten``): SQLite hands a deleted
        highest id to the next insert, and the person's old unsubscribe link (which names the
        id) must never act on somebody else.
        """
        with self.engine.begin() as c:
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
        with self.engine.connect() as c:
            r: dt.datetime | None = c.execute(
                select(forgotten.c.forgotten_at).where(forgotten.c.email_hash == email_hash)
            ).scalar()
        return r

    def forgotten_among(self, hashes: Sequence[str]) -> set[str]:
        out: set[str] = set()
        with self.engine.connect() as c:
            for part in _chunks(hashes):
                q = select(forgotten.c.email_hash).where(forgotten.c.email_hash.in_(list(part)))
                out.update(c.execute(q).scalars())
        return out

    def unforget(self, email_hash: str) -> None:
        """The person gave consent anew (a confirmed web request): lift the block."""
        with self.engine.begin() as c:
            c.execute(delete(forgotten).where(forgotten.c.email_hash == email_hash))

    # --- late confirmations ------------------------------------------------------------------
    def upcoming_invitation_mailings(self, now: dt.datetime) -> list[int]:
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
        with self.engine.connect() as c:
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

    # --- rate limits (kv rows "rl:…", keyed by a hash, never by the address or IP) -----------
    def hit_rate_limit(self, key: str, now: dt.datetime, window: dt.timedelta, limit: int) -> bool:
        """Count one hit in ``key``'s fixed window; True if this hit is within ``limit``."""
        full = _RATE_PREFIX + key
        with self.engine.begin() as c:
            n = c.execute(
                update(kv)
                .where(kv.c.key == full, kv.c.expires_at > now)
                .values(value=cast(cast(kv.c.value, Integer) + 1, Text))
            ).rowcount
            if not n:
                # A new window: drop this key's expired counter and any other stale ones.
                c.execute(
                    delete(kv).where(kv.c.key.like(_RATE_PREFIX + "%"), kv.c.expires_at <= now)
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
