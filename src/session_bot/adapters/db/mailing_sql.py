"""The mailings repository's longer SQL: its summaries, delivery pages and recipient freezing."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, case, func, insert, literal, or_, select, true, update

from session_bot.adapters.db.schema import deliveries, mailings, sessions, subscribers

COUNTED = ("sent", "pending", "failed", "bounced", "skipped")


def for_announcement(row: dict[str, Any]) -> dict[str, Any]:
    """An announcement has no session: its moment (frozen, or scheduled) stands in for one."""
    if row.get("session_date") is None:
        row["session_start"] = row["created_at"]
        row["session_date"] = row["created_at"].date().isoformat()
    return row


def add_recipients(c: Any, mailing_id: int) -> None:
    """One pending delivery per confirmed subscriber, and the mailing's count of them."""
    src = select(
        literal(mailing_id), subscribers.c.id, subscribers.c.email, literal("pending"), literal(0)
    ).where(subscribers.c.status == "confirmed")
    columns = ["mailing_id", "subscriber_id", "email", "status", "attempts"]
    c.execute(insert(deliveries).from_select(columns, src))
    # Counted, not taken from rowcount: psycopg reports -1 for INSERT … SELECT.
    n = c.execute(
        select(func.count()).select_from(deliveries).where(deliveries.c.mailing_id == mailing_id)
    ).scalar_one()
    c.execute(update(mailings).where(mailings.c.id == mailing_id).values(recipients=n))


def _hard_bounce() -> Any:
    return (deliveries.c.status == "failed") & or_(
        subscribers.c.status == "bounced", deliveries.c.last_code.between(550, 559)
    )


def summary_select() -> Any:
    def count(condition: Any, name: str) -> Any:
        return func.sum(case((condition, 1), else_=0)).label(name)

    status = deliveries.c.status
    counts = (
        select(
            deliveries.c.mailing_id,
            count(status == "sent", "sent"),
            count(status.in_(("pending", "sending")), "pending"),
            count(status == "failed", "failed"),
            count(_hard_bounce(), "bounced"),
            count(status == "skipped", "skipped"),
        )
        .select_from(deliveries.join(subscribers, subscribers.c.id == deliveries.c.subscriber_id))
        .group_by(deliveries.c.mailing_id)
        .subquery()
    )
    return (
        select(
            mailings.c.id,
            mailings.c.kind,
            mailings.c.sequence,
            mailings.c.created_at,
            mailings.c.recipients,
            mailings.c.finished_at,
            sessions.c.key.label("session_key"),
            sessions.c.date.label("session_date"),
            sessions.c.start_utc.label("session_start"),
            *(counts.c[name] for name in COUNTED),
        )
        .outerjoin(sessions, sessions.c.id == mailings.c.session_id)
        .outerjoin(counts, counts.c.mailing_id == mailings.c.id)
        .order_by(mailings.c.created_at.desc(), mailings.c.id.desc())
    )


def delivery_filter(mailing_id: int | None, email: str | None, state: str | None) -> Any:
    where: list[Any] = []
    if mailing_id is not None:
        where.append(deliveries.c.mailing_id == mailing_id)
    if email is not None:
        key = email.strip().lower()
        where.append(or_(func.lower(deliveries.c.email) == key, subscribers.c.email_key == key))
    if state == "bounced":
        where.append(_hard_bounce())
    elif state == "pending":
        where.append(deliveries.c.status.in_(("pending", "sending")))
    elif state is not None:
        where.append(deliveries.c.status == state)
    return and_(true(), *where)


def delivery_select() -> Any:
    return (
        select(
            deliveries.c.id,
            deliveries.c.mailing_id,
            deliveries.c.email,
            deliveries.c.status,
            deliveries.c.attempts,
            deliveries.c.next_attempt_at,
            deliveries.c.last_code,
            deliveries.c.last_response,
            deliveries.c.sent_at,
            _hard_bounce().label("hard"),
            mailings.c.kind,
            mailings.c.sequence,
            mailings.c.created_at,
            sessions.c.key.label("session_key"),
            sessions.c.date.label("session_date"),
            sessions.c.start_utc.label("session_start"),
        )
        .select_from(
            deliveries.join(subscribers, subscribers.c.id == deliveries.c.subscriber_id)
            .join(mailings, mailings.c.id == deliveries.c.mailing_id)
            .outerjoin(sessions, sessions.c.id == mailings.c.session_id)
        )
        .order_by(mailings.c.created_at.desc(), mailings.c.id.desc(), deliveries.c.id)
    )
