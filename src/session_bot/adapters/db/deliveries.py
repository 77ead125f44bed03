"""Queries on mailings and deliveries (a mixin of ``Store``).

Delivery rows move ``pending`` → ``sending`` (claimed, before DATA) → ``sent`` | ``pending`` (retry
at ``next_attempt_at``) | ``failed`` | ``skipped``. A row stays ``sending`` when its fate is unknown
(the connection broke after the data, or the process died): it may be at the server, and is sent
again later. Claims are small batches taken in one transaction with the previous batch's results,
so a connection never has more than one batch in ``sending``.

The rate limiter reads its windows from the same rows, so every process sharing the database
shares the limits, and a restart remembers them. For a window of length W at the moment ``s``, a
message counts if its 250 came after ``s - W`` (``sent_at``), or if it may reach or have reached
the server without an answer seen (``sending``, or ``failed`` with no code) and was claimed after
``s - W - inflight_bound``. A message starts only while fewer than the limit count. It reaches the
server between its claim and its recorded 250, so no window of the server's receive times can
hold more than the limit (as long as a claimed message finishes within ``inflight_bound``, which
the delivery loop guarantees by releasing rows it did not start in time).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import (
    Connection,
    Engine,
    and_,
    bindparam,
    case,
    func,
    insert,
    literal,
    or_,
    select,
    type_coerce,
    update,
)
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.schema import (
    UTCDateTime,
    deliveries,
    kv,
    mailings,
    sessions,
    subscribers,
)

_LOCK_KEY = "deliveries.claim-lock"
_SEEK_SPAN = 500  # ids after the cursor a PostgreSQL claim looks at first (see _HotSql)
_MUTEX_GUARD = threading.Lock()
RateWindows = Sequence[tuple[dt.timedelta, int]]
OutcomeStatus = Literal["sent", "pending", "unknown", "failed", "skipped", "released"]


def type_coerce_utc(expr: Any) -> Any:
    return type_coerce(expr, UTCDateTime)


def _outcome_update(**values: Any) -> Any:
    return update(deliveries).where(deliveries.c.id == bindparam("b_id")).values(**values)


def _utc_param(name: str) -> Any:
    return bindparam(name, type_=UTCDateTime)


_CODE: Any = bindparam("b_code")
_RESPONSE: Any = bindparam("b_response")
_ATTEMPT = deliveries.c.attempts + 1
# One statement per outcome, built once: executemany with SQLAlchemy's compiled cache.
_OUTCOME_UPDATES: dict[str, Any] = {
    "pending": _outcome_update(
        status="pending",
        last_code=_CODE,
        last_response=_RESPONSE,
        attempts=_ATTEMPT,
        next_attempt_at=_utc_param("b_retry"),
    ),
    # No answer after the data went out: it may be at the server. Still "sending", with a retry.
    "unknown": _outcome_update(
        status="sending",
        last_code=None,
        last_response=_RESPONSE,
        attempts=_ATTEMPT,
        next_attempt_at=_utc_param("b_retry"),
    ),
    "failed": _outcome_update(
        status="failed",
        last_code=_CODE,
        last_response=_RESPONSE,
        attempts=_ATTEMPT,
        next_attempt_at=None,
    ),
    "skipped": _outcome_update(status="skipped", last_response=_RESPONSE, next_attempt_at=None),
    # Claimed but never started (stop, connection unusable): as if never claimed, due now.
    "released": _outcome_update(
        status="pending", sending_at=None, claimed_by=None, next_attempt_at=_utc_param("b_at")
    ),
}
_CLAIM_COLUMNS = (
    deliveries.c.id,
    deliveries.c.mailing_id,
    deliveries.c.subscriber_id,
    deliveries.c.email,
    deliveries.c.attempts,
    deliveries.c.status,
    subscribers.c.name,
    subscribers.c.language,
    subscribers.c.status.label("subscriber_status"),
    subscribers.c.hard_bounces,
)


def _claimable(status: str) -> Any:
    return (
        select(*_CLAIM_COLUMNS)
        .join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
        .where(deliveries.c.mailing_id == bindparam("c_mailing"), deliveries.c.status == status)
        .order_by(deliveries.c.id)
        .limit(bindparam("c_limit"))
        .with_for_update(skip_locked=True, of=deliveries)
    )


_CLEAR_BOUNCES = (
    update(subscribers)
    .where(subscribers.c.id.in_(bindparam("b_sids", expanding=True)))
    .values(hard_bounces=0)
)
_TOUCH_LOCK = update(kv).where(kv.c.key == _LOCK_KEY).values(value=kv.c.value)


class _HotSql:
    """The delivery loop's three most frequent statements as driver SQL, run on the connection of
    the surrounding SQLAlchemy transaction. Measured: a claim of 10 rows with the previous 10
    results costs 330 µs through SQLAlchemy's execution machinery, 170 µs this way."""

    def __init__(self, dialect: str) -> None:
        self.sqlite = dialect == "sqlite"

        def p(name: str) -> str:
            return f":{name}" if self.sqlite else f"%({name})s"

        self.fresh = (
            "SELECT d.id, d.mailing_id, d.subscriber_id, d.email, d.attempts, d.status, s.name, "
            "s.language, s.status, s.hard_bounces FROM deliveries d "
            "JOIN subscribers s ON s.id = d.subscriber_id "
            f"WHERE d.mailing_id = {p('m')} AND d.status = 'pending' AND d.id > {p('after')} "
            f"AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= {p('now')}) "
            f"ORDER BY d.id LIMIT {p('n')}"
            + ("" if self.sqlite else " FOR UPDATE OF d SKIP LOCKED")
        )
        self.claim = (
            f"UPDATE deliveries SET status = 'sending', sending_at = {p('now')}, "
            f"claimed_by = {p('w')}, next_attempt_at = NULL WHERE id IN "
        )
        self.sent = (
            f"UPDATE deliveries SET status = 'sent', sent_at = {p('at')}, last_code = {p('code')}, "
            f"last_response = {p('response')}, attempts = attempts + 1, next_attempt_at = NULL "
            f"WHERE id = {p('id')}"
        )
        # PostgreSQL: a batch's 250s in one statement (one fixed text, so psycopg prepares it)
        # instead of one UPDATE per row.
        self.sent_pg = (
            "UPDATE deliveries AS d SET status = 'sent', sent_at = v.at, last_code = v.code, "
            "last_response = v.response, attempts = d.attempts + 1, next_attempt_at = NULL "
            "FROM unnest(%(ids)s::int[], %(ats)s::timestamp[], %(codes)s::int[], "
            "%(responses)s::text[]) AS v(id, at, code, response) WHERE d.id = v.id"
        )
        # PostgreSQL: select, lock and mark `sending` in one statement (one round trip). After
        # the cursor, `mailing_id + 0` keeps the planner off ix_deliveries_mailing_status: that
        # index cannot give id order, so the plan read, joined and sorted every pending row of
        # the mailing for each claim of 10 (O(n) per claim); `status || ''` keeps it off a
        # bitmap scan of that index by status alone. With the window `id <= after + span` the
        # primary key range is the only way left, and it is short whatever the planner
        # estimates. A sweep from 0, and what the window misses (the mailing's end, a gap),
        # take the index.
        seek_where = (
            "WHERE d.mailing_id + 0 = %(m)s AND d.status || '' = 'pending' "
            "AND d.id <= %(after)s + %(span)s "
        )
        self.claim_pg = {
            seek: (
                "UPDATE deliveries AS u SET status = 'sending', sending_at = %(now)s, "
                "claimed_by = %(w)s, next_attempt_at = NULL FROM (SELECT d.id FROM deliveries d "
                + (seek_where if seek else "WHERE d.mailing_id = %(m)s AND d.status = 'pending' ")
                + "AND d.id > %(after)s "
                "AND (d.next_attempt_at IS NULL OR d.next_attempt_at <= %(now)s) "
                "ORDER BY d.id LIMIT %(n)s FOR UPDATE SKIP LOCKED) AS c, subscribers AS s "
                "WHERE u.id = c.id AND s.id = u.subscriber_id RETURNING u.id, u.mailing_id, "
                "u.subscriber_id, u.email, u.attempts, 'pending', s.name, s.language, s.status, "
                "s.hard_bounces"
            )
            for seek in (False, True)
        }

    def time(self, value: dt.datetime) -> Any:
        """As ``UTCDateTime`` stores it: naive UTC; SQLite in SQLAlchemy's fixed-width text."""
        naive = value.astimezone(dt.UTC).replace(tzinfo=None)
        return naive.strftime("%Y-%m-%d %H:%M:%S.%f") if self.sqlite else naive


_HOT_SQL: dict[str, _HotSql] = {}


def _hot_sql(dialect: str) -> _HotSql:
    sql = _HOT_SQL.get(dialect)
    if sql is None:
        sql = _HOT_SQL.setdefault(dialect, _HotSql(dialect))
    return sql


_BOUNCES_REACHED = and_(
    subscribers.c.status == "confirmed",
    subscribers.c.hard_bounces + 1 >= bindparam("b_limit"),
)
_BOUNCE_UPDATE = (
    update(subscribers)
    .where(subscribers.c.id == bindparam("b_sid"))
    .values(
        hard_bounces=subscribers.c.hard_bounces + 1,
        status=case((_BOUNCES_REACHED, literal("bounced")), else_=subscribers.c.status),
        bounced_at=case((_BOUNCES_REACHED, _utc_param("b_at")), else_=subscribers.c.bounced_at),
        updated_at=case((_BOUNCES_REACHED, _utc_param("b_at2")), else_=subscribers.c.updated_at),
    )
)


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


@dataclass(slots=True)  # not frozen: built per recipient, and frozen init costs µs each
class DeliveryRow:
    id: int
    mailing_id: int
    subscriber_id: int
    email: str
    name: str | None
    language: str
    subscriber_status: str
    attempts: int
    status: str = "pending"  # "sending" when taken over from a run that is gone: may be out
    claimed_at: dt.datetime | None = None
    hard_bounces: int = 0


@dataclass(slots=True)
class DeliveryOutcome:
    """What happened to one claimed row; written in batches by ``claim_deliveries``."""

    delivery_id: int
    subscriber_id: int
    status: OutcomeStatus
    at: dt.datetime
    code: int | None = None
    response: str = ""
    retry_at: dt.datetime | None = None
    hard_bounce: bool = False
    clears_bounces: bool = False  # delivered to a subscriber with earlier hard bounces


@dataclass(frozen=True)
class Claim:
    rows: list[DeliveryRow]
    # Nothing claimed: the earliest moment something may be (a retry falls due, a rate window
    # frees a slot, a stale claim may be taken over); None when nothing is left to send.
    wait_until: dt.datetime | None = None
    rate_limited: bool = False


@dataclass(frozen=True)
class BouncedSubscriber:
    email: str
    hard_bounces: int
    bounced_at: dt.datetime | None
    last_response: str | None


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

    # --- claiming and recording (the delivery loop) -------------------------------------------
    def claim_deliveries(
        self,
        mailing_id: int,
        *,
        clock: Callable[[], dt.datetime],
        worker: str,
        limit: int,
        after: int = 0,
        resume_before: dt.datetime | None = None,
        stale_after: dt.timedelta = dt.timedelta(minutes=15),
        outcomes: Sequence[DeliveryOutcome] = (),
        bounce_limit: int = 3,
        rate: RateWindows = (),
        inflight_bound: dt.timedelta = dt.timedelta(minutes=5),
    ) -> Claim:
        """Record ``outcomes``, then claim up to ``limit`` rows, in one transaction.

        Fresh rows are taken in id order after ``after`` (the caller's cursor, so each claim is an
        index seek); ``after=0`` also sweeps up due retries and rows left in ``sending`` by a run
        that is gone: this worker's own from before ``resume_before``, anyone's after
        ``stale_after``. With ``rate`` windows the claim is capped so that no window overflows
        (see the module docstring), and a row that may be at the server is taken over only once
        that attempt has left every window.
        """
        sqlite = self.engine.dialect.name == "sqlite"
        with self._writer(), self.engine.begin() as c:
            if outcomes:
                self._write_outcomes(c, outcomes, bounce_limit)
            if (sqlite and not outcomes) or (rate and not sqlite):
                # SQLite: the first statement must write, so the snapshot read below is current.
                # PostgreSQL: the limiter's count-then-claim runs one process at a time.
                self._take_claim_lock(c)
            now = clock()
            hot = _hot_sql(self.engine.dialect.name)
            at_now = hot.time(now)
            slot_at: dt.datetime | None = None
            if rate:
                free, slot_at = self._rate_capacity(c, now, rate, inflight_bound)
                limit = min(limit, free)
            rows: list[Any] = []
            if limit > 0:
                if after == 0:
                    resumable = self._resumable(
                        now, worker, resume_before, stale_after, rate, inflight_bound
                    )
                    rows = list(
                        c.execute(
                            _claimable("sending").where(resumable),
                            {"c_mailing": mailing_id, "c_limit": limit},
                        ).all()
                    )
                if rows:
                    ids = ",".join(str(int(r[0])) for r in rows)  # integers from the database
                    self._cursor(c).execute(
                        f"{hot.claim}({ids})", {"now": at_now, "w": worker or None}
                    )
                if len(rows) < limit:
                    cur = self._cursor(c)
                    params: dict[str, Any] = {
                        "m": mailing_id,
                        "n": limit - len(rows),
                        "after": after,
                    }
                    if sqlite:
                        cur.execute(hot.fresh, {**params, "now": at_now})
                        fresh = cur.fetchall()
                        if fresh:
                            ids = ",".join(str(int(r[0])) for r in fresh)
                            cur.execute(f"{hot.claim}({ids})", {"now": at_now, "w": worker or None})
                    else:
                        params.update(now=at_now, w=worker or None, span=_SEEK_SPAN)
                        fresh = []
                        if after > 0:
                            cur.execute(hot.claim_pg[True], params)
                            fresh = cur.fetchall()
                        if len(fresh) < params["n"]:
                            cur.execute(
                                hot.claim_pg[False], {**params, "n": params["n"] - len(fresh)}
                            )
                            fresh += cur.fetchall()
                        fresh.sort()  # RETURNING has no order
                    rows += fresh
            if rows:
                return Claim([self._delivery_row(r, now) for r in rows])
            if limit <= 0 and slot_at is not None:
                return Claim([], slot_at, rate_limited=True)
            return Claim(
                [],
                self._next_claimable(
                    c, mailing_id, now, worker, resume_before, rate, stale_after, inflight_bound
                ),
            )

    def _writer(self) -> Any:
        """In-process mutex for SQLite writes: threads queue here and wake at once, instead of
        in SQLite's busy handler, which sleeps milliseconds. Other processes still meet the
        database lock (busy_timeout)."""
        if self.engine.dialect.name != "sqlite":
            return contextlib.nullcontext()
        mutex = self.__dict__.get("_sb_write_mutex")
        if mutex is None:
            with _MUTEX_GUARD:
                mutex = self.__dict__.setdefault("_sb_write_mutex", threading.Lock())
        return mutex

    def record_outcomes(self, outcomes: Sequence[DeliveryOutcome], bounce_limit: int = 3) -> None:
        if outcomes:
            with self._writer(), self.engine.begin() as c:
                self._write_outcomes(c, outcomes, bounce_limit)

    @staticmethod
    def _resumable(
        now: dt.datetime,
        worker: str,
        resume_before: dt.datetime | None,
        stale_after: dt.timedelta,
        rate: RateWindows,
        inflight_bound: dt.timedelta,
    ) -> Any:
        """Which ``sending`` rows may be sent again (each may already be at the server)."""
        mine = (
            deliveries.c.claimed_by.is_(None) if not worker else deliveries.c.claimed_by == worker
        )
        cond = or_(
            deliveries.c.next_attempt_at <= now,  # cut off without an answer; retry is due
            deliveries.c.sending_at < now - stale_after,
        )
        if resume_before is not None:
            cond = or_(cond, and_(mine, deliveries.c.sending_at < resume_before))
        if rate:
            longest = max(w for w, _ in rate)
            cond = and_(cond, deliveries.c.sending_at < now - longest - inflight_bound)
        return cond

    def _next_claimable(
        self,
        c: Connection,
        mailing_id: int,
        now: dt.datetime,
        worker: str,
        resume_before: dt.datetime | None,
        rate: RateWindows,
        stale_after: dt.timedelta,
        inflight_bound: dt.timedelta,
    ) -> dt.datetime | None:
        """When a row of the mailing may next be claimable; None when none is left to send."""
        unscheduled = c.execute(
            select(deliveries.c.id)
            .where(
                deliveries.c.mailing_id == mailing_id,
                deliveries.c.status == "pending",
                deliveries.c.next_attempt_at.is_(None),
            )
            .limit(1)
        ).first()
        if unscheduled is not None:
            return now  # behind the caller's cursor or locked by another process: look again
        moments: list[dt.datetime] = []
        first_retry = c.execute(
            select(type_coerce_utc(func.min(deliveries.c.next_attempt_at))).where(
                deliveries.c.mailing_id == mailing_id, deliveries.c.status == "pending"
            )
        ).scalar()
        if first_retry is not None:
            moments.append(first_retry)
        longest = max((w for w, _ in rate), default=None)
        for sending_at, next_at, claimed_by in c.execute(
            select(
                deliveries.c.sending_at, deliveries.c.next_attempt_at, deliveries.c.claimed_by
            ).where(deliveries.c.mailing_id == mailing_id, deliveries.c.status == "sending")
        ):
            at = sending_at + stale_after
            if next_at is not None:
                at = min(at, next_at)
            mine = resume_before is not None and (claimed_by or "") == worker
            if mine and resume_before is not None and sending_at < resume_before:
                at = now  # left by this worker's previous run
            if longest is not None:
                at = max(at, sending_at + longest + inflight_bound)
            moments.append(at)
        return min(moments) if moments else None

    def _take_claim_lock(self, c: Connection) -> None:
        """Serialise claims: the first write takes SQLite's write lock; on PostgreSQL a row lock."""
        if c.execute(_TOUCH_LOCK).rowcount == 0:
            with contextlib.suppress(IntegrityError), c.begin_nested():
                c.execute(insert(kv).values(key=_LOCK_KEY, value="", expires_at=None))
            c.execute(_TOUCH_LOCK)

    def _rate_capacity(
        self, c: Connection, now: dt.datetime, rate: RateWindows, bound: dt.timedelta
    ) -> tuple[int, dt.datetime | None]:
        """Free slots in the fullest window, and the earliest moment one frees if none is free."""
        longest = max(w for w, _ in rate)
        recent = select(mailings.c.id).where(
            or_(mailings.c.finished_at.is_(None), mailings.c.finished_at > now - longest - bound)
        )
        free: int | None = None
        frees_at: list[dt.datetime] = []
        for window, most in rate:
            since = now - window
            n_sent, first_sent = c.execute(
                select(func.count(), type_coerce_utc(func.min(deliveries.c.sent_at))).where(
                    deliveries.c.sent_at > since
                )
            ).one()
            n_open, first_open = c.execute(
                select(func.count(), type_coerce_utc(func.min(deliveries.c.sending_at))).where(
                    deliveries.c.mailing_id.in_(recent),
                    deliveries.c.status.in_(("sending", "failed")),
                    or_(deliveries.c.status == "sending", deliveries.c.last_code.is_(None)),
                    deliveries.c.sending_at > since - bound,
                )
            ).one()
            left = most - n_sent - n_open
            free = left if free is None else min(free, left)
            if left <= 0:
                if n_open:
                    # An in-flight message may finish any moment and then count by its 250.
                    frees_at.append(now + min(window / 10, dt.timedelta(milliseconds=100)))
                if first_sent is not None:
                    frees_at.append(first_sent + window)
                if first_open is not None:
                    frees_at.append(first_open + window + bound)
        return max(free or 0, 0), (min(frees_at) if frees_at else None)

    def _write_outcomes(
        self, c: Connection, outcomes: Sequence[DeliveryOutcome], bounce_limit: int
    ) -> None:
        by_status: dict[str, list[dict[str, Any]]] = {}
        hot = _hot_sql(self.engine.dialect.name)
        if hot.sqlite:
            sent = [
                {
                    "id": o.delivery_id,
                    "at": hot.time(o.at),
                    "code": o.code,
                    "response": o.response[:500],
                }
                for o in outcomes
                if o.status == "sent"
            ]
            if sent:
                self._cursor(c).executemany(hot.sent, sent)
        else:
            done = [o for o in outcomes if o.status == "sent"]
            if done:
                self._cursor(c).execute(
                    hot.sent_pg,
                    {
                        "ids": [o.delivery_id for o in done],
                        "ats": [hot.time(o.at) for o in done],
                        "codes": [o.code for o in done],
                        "responses": [o.response[:500] for o in done],
                    },
                )
        for o in outcomes:
            if o.status == "sent":
                continue
            by_status.setdefault(o.status, []).append(
                {
                    "b_id": o.delivery_id,
                    "b_at": o.at,
                    "b_code": o.code,
                    "b_response": o.response[:500],
                    "b_retry": o.retry_at,
                }
            )
        for status, params in by_status.items():
            c.execute(_OUTCOME_UPDATES[status], params)
        # "Repeated" hard bounces means in a row: a delivered message clears the count.
        cleared = [o.subscriber_id for o in outcomes if o.status == "sent" and o.clears_bounces]
        if cleared:
            c.execute(_CLEAR_BOUNCES, {"b_sids": cleared})
        bounced = [
            {"b_sid": o.subscriber_id, "b_at": o.at, "b_at2": o.at, "b_limit": bounce_limit}
            for o in outcomes
            if o.hard_bounce
        ]
        if bounced:
            c.execute(_BOUNCE_UPDATE, bounced)

    @staticmethod
    def _cursor(c: Connection) -> Any:
        dbapi = c.connection.dbapi_connection
        assert dbapi is not None
        return dbapi.cursor()

    @staticmethod
    def _delivery_row(r: Any, claimed_at: dt.datetime | None = None) -> DeliveryRow:
        # Positional: rows come from _CLAIM_COLUMNS / _HotSql.fresh, in the same column order.
        return DeliveryRow(
            id=r[0],
            mailing_id=r[1],
            subscriber_id=r[2],
            email=r[3],
            attempts=r[4],
            status=r[5],
            name=r[6],
            language=r[7],
            subscriber_status=r[8],
            hard_bounces=r[9],
            claimed_at=claimed_at,
        )

    def delivery_log(self, mailing_id: int) -> list[dict[str, Any]]:
        """Who got what, when, with which server answer (one dict per delivery row)."""
        with self.engine.connect() as c:
            rows = c.execute(
                select(deliveries)
                .where(deliveries.c.mailing_id == mailing_id)
                .order_by(deliveries.c.id)
            ).all()
        return [dict(r._mapping) for r in rows]

    def bounced_subscribers(self) -> list[BouncedSubscriber]:
        """Subscribers set aside after repeated hard bounces, with the last server answer."""
        last_answer = (
            select(deliveries.c.last_response)
            .where(deliveries.c.subscriber_id == subscribers.c.id, deliveries.c.status == "failed")
            .order_by(deliveries.c.id.desc())
            .limit(1)
            .scalar_subquery()
        )
        with self.engine.connect() as c:
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
