"""Queries on mailings and deliveries (the delivery ledger).

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
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Connection, and_, func, insert, or_, select
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.delivery_sql import (
    CLAIM_LOCK_KEY,
    SEEK_SPAN,
    TOUCH_LOCK,
    claimable,
    delivery_row,
    hot_sql,
    type_coerce_utc,
    write_outcomes,
)
from session_bot.adapters.db.schema import deliveries, kv, mailings
from session_bot.core.records import Claim, DeliveryOutcome, RateWindows


def _own(claimed_by: str, worker: str) -> bool:
    """Whether ``worker`` resumes a row ``claimed_by`` left: its own, and its helper processes'
    (``worker#i``, see ``app.ports.delivery``); a helper resumes only its own."""
    if claimed_by == worker:
        return True
    return "#" not in worker and claimed_by.startswith(worker + "#")


def _claimed_by_own(worker: str) -> Any:
    """``_own`` as SQL."""
    exact = deliveries.c.claimed_by.is_(None) if not worker else deliveries.c.claimed_by == worker
    if "#" in worker:
        return exact
    escaped = worker.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return or_(exact, deliveries.c.claimed_by.like(escaped + "#%", escape="\\"))


class DeliveryLedger:
    """Claiming delivery rows in small batches and recording what the server answered."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def claim(
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
        sqlite = self._db.dialect == "sqlite"
        with self._db.writer(), self._db.begin() as c:
            if outcomes:
                write_outcomes(c, outcomes, bounce_limit)
            if (sqlite and not outcomes) or (rate and not sqlite):
                # SQLite: the first statement must write, so the snapshot read below is current.
                # PostgreSQL: the limiter's count-then-claim runs one process at a time.
                self._take_claim_lock(c)
            now = clock()
            hot = hot_sql(self._db.dialect)
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
                            claimable("sending").where(resumable),
                            {"c_mailing": mailing_id, "c_limit": limit},
                        ).all()
                    )
                if rows:
                    ids = ",".join(str(int(r[0])) for r in rows)  # integers from the database
                    self._db.cursor(c).execute(
                        f"{hot.claim}({ids})", {"now": at_now, "w": worker or None}
                    )
                if len(rows) < limit:
                    cur = self._db.cursor(c)
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
                        params.update(now=at_now, w=worker or None, span=SEEK_SPAN)
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
                return Claim([delivery_row(r, now) for r in rows])
            if limit <= 0 and slot_at is not None:
                return Claim([], slot_at, rate_limited=True)
            return Claim(
                [],
                self._next_claimable(
                    c, mailing_id, now, worker, resume_before, rate, stale_after, inflight_bound
                ),
            )

    def record_outcomes(self, outcomes: Sequence[DeliveryOutcome], bounce_limit: int = 3) -> None:
        if outcomes:
            with self._db.writer(), self._db.begin() as c:
                write_outcomes(c, outcomes, bounce_limit)

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
        mine = _claimed_by_own(worker)
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
            mine = resume_before is not None and _own(claimed_by or "", worker)
            if mine and resume_before is not None and sending_at < resume_before:
                at = now  # left by this worker's previous run
            if longest is not None:
                at = max(at, sending_at + longest + inflight_bound)
            moments.append(at)
        return min(moments) if moments else None

    def _take_claim_lock(self, c: Connection) -> None:
        """Serialise claims: the first write takes SQLite's write lock; on PostgreSQL a row lock."""
        if c.execute(TOUCH_LOCK).rowcount == 0:
            with contextlib.suppress(IntegrityError), c.begin_nested():
                c.execute(insert(kv).values(key=CLAIM_LOCK_KEY, value="", expires_at=None))
            c.execute(TOUCH_LOCK)

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
