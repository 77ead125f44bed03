"""What the database records, as plain values: the rows the use cases read and write.

The database adapter builds them; nothing here knows SQL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

RateWindows = Sequence[tuple[dt.timedelta, int]]
OutcomeStatus = Literal["sent", "pending", "unknown", "failed", "skipped", "released"]


@dataclass(frozen=True)
class SessionRow:
    id: int
    key: str
    series_id: str
    date: str
    meeting_intent_at: dt.datetime | None
    meeting_id: int | None
    meeting_json: dict[str, Any] | None
    announced: dict[str, Any] | None
    sequence: int
    cancelled_at: dt.datetime | None
    approved: dict[str, Any] | None = None  # the change the organiser sent (core/review.py)


@dataclass(frozen=True)
class PlanRevision:
    """One saved state of the plan: who made it, when, how, and its YAML text."""

    id: int
    parent_id: int | None
    created_at: dt.datetime
    author: str
    source: str  # import | console | restore
    note: str
    digest: str
    text: str


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
    """What happened to one claimed row; written in batches with the next claim."""

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


@dataclass(frozen=True)
class ImportedRow:
    """One validated row of an import, ready to insert."""

    email: str
    name: str | None
    language: str
