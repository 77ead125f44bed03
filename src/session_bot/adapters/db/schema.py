"""Tables of the store (SQLAlchemy Core). Timestamps are UTC; reads return aware datetimes."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)

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
    # pending | confirmed | unsubscribed | bounced | forgotten (erased tombstone)
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
    # Set when Zoom told us (webhook) the meeting changed: the next run reads it back.
    Column("check_zoom_at", UTCDateTime),
    Column("updated_at", UTCDateTime, nullable=False),
    # The change the organiser chose to send (reviewed series): its fingerprint makes the
    # update or cancellation due (core/review.py).
    Column("approved_json", Text),
)

mailings = Table(
    "mailings",
    metadata,
    Column("id", Integer, primary_key=True),
    # None for an announcement: a one-off mail to the list, about no session (issue 17).
    Column("session_id", ForeignKey("sessions.id"), nullable=True),
    # invitation | reminder | update | cancellation | late-invitation | announcement
    Column("kind", String(20), nullable=False),
    Column("sequence", Integer, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("recipients", Integer, nullable=False, default=0),
    Column("finished_at", UTCDateTime),
    # JSON: what this mailing says beyond the plan (per-language change lines, reason).
    Column("details", Text),
    UniqueConstraint("session_id", "kind", "sequence", name="uq_mailing"),
    # NULLs are distinct in uq_mailing: an announcement's number is unique by this index.
    Index(
        "uq_mailing_announcement",
        "kind",
        "sequence",
        unique=True,
        sqlite_where=text("session_id IS NULL"),
        postgresql_where=text("session_id IS NULL"),
    ),
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
    Column("counts_json", Text),  # RunReport.counts(): the console words them
)

kv = Table(
    "kv",
    metadata,
    Column("key", String(80), primary_key=True),
    Column("value", Text, nullable=False),
    # Indexed: clearing expired rows must cost what expired, not what is alive (issue 18).
    Column("expires_at", UTCDateTime, index=True),
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


# --- the organisers' console ------------------------------------------------------------------

organisers = Table(
    "organisers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),  # stored lower-case
    Column("name", String(200)),
    Column("password_hash", String(255)),  # None until the person set one through the link
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_set_at", UTCDateTime),
    Column("last_sign_in_at", UTCDateTime),
)

console_sessions = Table(
    "console_sessions",
    metadata,
    # SHA-256 of the cookie's token: a copy of the database signs nobody in.
    Column("token_hash", String(64), primary_key=True),
    Column("organiser_id", ForeignKey("organisers.id", ondelete="CASCADE"), nullable=False),
    Column("csrf", String(64), nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("client", String(64)),
)

audit_log = Table(
    "audit_log",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("at", UTCDateTime, nullable=False, index=True),
    Column("actor", String(320), nullable=False),  # an organiser's address, or "cli (user@host)"
    Column("action", String(40), nullable=False),
    Column("detail", Text, nullable=False, default=""),
    Column("client", String(64)),
)

plan_revisions = Table(
    "plan_revisions",
    metadata,
    Column("id", Integer, primary_key=True),
    # Each revision names the one it was made from; unique, so that two saves made from the
    # same revision cannot both land (the second is refused and told what changed).
    Column("parent_id", Integer, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("author", String(320), nullable=False),
    Column("source", String(20), nullable=False),  # import | console | restore
    Column("note", String(500), nullable=False, default=""),
    Column("digest", String(64), nullable=False),
    Column("text", Text, nullable=False),
)
