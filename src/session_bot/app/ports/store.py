"""What the use cases need from the outside world, as small protocols.

The adapters implement them (the database's repositories in ``adapters.db``); the use cases
never import an adapter.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from typing import Any, Protocol

from session_bot.app.ports.console import AuditLog, ConsoleSessions, Organisers
from session_bot.app.ports.plans import PlanRevisions
from session_bot.core.records import (
    BouncedSubscriber,
    Claim,
    DeliveryOutcome,
    ImportedRow,
    MailingRow,
    RateWindows,
    SessionRow,
)


class DeliveryLedger(Protocol):
    """Claims delivery rows in small batches and records the server's answers."""

    def claim(
        self,
        mailing_id: int,
        *,
        clock: Callable[[], dt.datetime],
        worker: str,
        limit: int,
        after: int = 0,
        resume_before: dt.datetime | None = None,
        stale_after: dt.timedelta = ...,
        outcomes: Sequence[DeliveryOutcome] = (),
        bounce_limit: int = 3,
        rate: RateWindows = (),
        inflight_bound: dt.timedelta = ...,
    ) -> Claim: ...

    def record_outcomes(
        self, outcomes: Sequence[DeliveryOutcome], bounce_limit: int = 3
    ) -> None: ...


class Sessions(Protocol):
    """Sessions by key, with their meeting and what was announced."""

    def get(self, key: str) -> SessionRow | None: ...

    def ensure(
        self,
        key: str,
        series_id: str,
        date: str,
        start_utc: dt.datetime,
        duration: int,
        now: dt.datetime,
    ) -> SessionRow: ...

    def record_meeting_intent(self, session_id: int, now: dt.datetime) -> None: ...

    def record_meeting(
        self, session_id: int, meeting: dict[str, Any], now: dt.datetime
    ) -> None: ...

    def clear_meeting(self, session_id: int, now: dt.datetime) -> None: ...

    def record_announcement(
        self, session_id: int, announced: dict[str, Any], sequence: int, now: dt.datetime
    ) -> None: ...

    def approve(self, session_id: int, fingerprint: dict[str, Any], now: dt.datetime) -> None:
        """The organiser sends this change (a reviewed series): the timeline makes it due."""
        ...

    def mark_cancelled(self, session_id: int, now: dt.datetime) -> None: ...

    def flag_zoom_check(self, meeting_id: int, now: dt.datetime) -> str | None:
        """Mark the session that owns ``meeting_id`` for a read-back; its key, or None if unknown."""
        ...

    def to_check(self) -> list[str]: ...

    def clear_zoom_check(self, session_id: int) -> None: ...

    def all(self) -> list[SessionRow]: ...


class Runs(Protocol):
    """Each run's trigger, start, end and outcome."""

    def start(self, trigger: str, now: dt.datetime) -> int: ...

    def finish(
        self,
        run_id: int,
        now: dt.datetime,
        outcome: str,
        summary: str,
        counts: Mapping[str, int] | None = None,
    ) -> None: ...

    def last(self) -> dict[str, Any] | None: ...


class KeyValues(Protocol):
    """Named values shared by every process (optionally expiring)."""

    def get(self, key: str, now: dt.datetime | None = None) -> str | None: ...

    def get_with_expiry(self, key: str) -> tuple[str, dt.datetime] | None:
        """The value and its expiry, if it has one."""
        ...

    def set(self, key: str, value: str, expires_at: dt.datetime | None = None) -> None: ...

    def replace(self, key: str, value: str) -> None:
        """``set`` for a key several processes write at once: the last value wins, none fails."""
        ...

    def set_default(self, key: str, value: str) -> str:
        """The key's value; ``value`` stored first if it has none (safe across processes)."""
        ...

    def take(self, key: str) -> str | None:
        """Read and delete ``key`` in one statement: of two takers only one gets the value."""
        ...


class Counters(Protocol):
    """Zoom calls per day, alert periods, subscribe rate limits."""

    def count_zoom_call(self, kind: str, now: dt.datetime) -> int: ...

    def zoom_calls_on(self, day: dt.date) -> dict[str, int]: ...

    def alert_due(self, key: str, now: dt.datetime, every: dt.timedelta) -> bool:
        """True (and recorded) if no alert with this key went out within ``every``."""
        ...

    def hit_rate_limit(self, key: str, now: dt.datetime, window: dt.timedelta, limit: int) -> bool:
        """Count one hit in ``key``'s fixed window; True if this hit is within ``limit``."""
        ...


class Mailings(Protocol):
    """Frozen mailings, their recipients, log and counts."""

    def freeze(
        self, session_id: int, kind: str, sequence: int, now: dt.datetime
    ) -> tuple[int, bool]:
        """Create the mailing and one pending delivery per confirmed subscriber, atomically.

        Returns (mailing_id, created). An existing mailing is returned unchanged: freezing twice
        never adds recipients or copies.
        """
        ...

    def add_delivery(self, mailing_id: int, subscriber_id: int) -> bool:
        """Add one recipient to a frozen mailing (late confirmation); False if already there."""
        ...

    def create_announcement(
        self, details: dict[str, Any], now: dt.datetime, *, freeze: bool
    ) -> tuple[int, int]:
        """A new announcement (a mailing without a session), numbered after the last one;
        (mailing_id, number). ``freeze``: with its recipients now; else they are frozen by
        ``freeze_announcement`` when it is due."""
        ...

    def freeze_announcement(self, mailing_id: int, now: dt.datetime) -> bool:
        """Freeze a scheduled announcement's recipients; False if it was frozen before."""
        ...

    def open(self) -> list[MailingRow]: ...

    def get(self, mailing_id: int) -> MailingRow: ...

    def finish_if_done(self, mailing_id: int, now: dt.datetime) -> bool: ...

    def supersede(self, session_id: int, reason: str, now: dt.datetime) -> int:
        """Skip the rows still pending in the session's open mailings (say, an invitation to a
        session now cancelled) with ``reason``; returns how many."""
        ...

    def of_session(self, session_id: int) -> list[MailingRow]: ...

    def upcoming_invitations(self, now: dt.datetime) -> list[int]:
        """The latest invitation mailing of every session still ahead and not cancelled."""
        ...

    def set_details(self, mailing_id: int, details: dict[str, Any]) -> None: ...

    def details(self, mailing_id: int) -> dict[str, Any]: ...

    def kinds_by_session(self) -> dict[str, dict[str, dt.datetime]]:
        """session key → {kind: created_at of its latest mailing}."""
        ...

    def delivery_log(self, mailing_id: int) -> list[dict[str, Any]]:
        """Who got what, when, with which server answer (one dict per delivery row)."""
        ...

    def delivery_counts(self, mailing_id: int | None = None) -> dict[str, int]: ...

    def summaries(self, mailing_id: int | None = None) -> list[dict[str, Any]]:
        """Every mailing (or the one asked for), newest first, with its session's date and start
        and its rows counted: sent, pending (incl. sending), failed, bounced (failed rows that
        bounced hard), skipped."""
        ...

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
        their mailing and session, and how many rows match in all."""
        ...


class Subscribers(Protocol):
    """Subscriber rows and the hashes of erased addresses."""

    def add(
        self,
        email: str,
        *,
        name: str | None,
        language: str,
        status: str,
        now: dt.datetime,
        **consent: Any,
    ) -> int: ...

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
        """Like ``add``; None if the address is already there (a concurrent insert)."""
        ...

    def get(self, email: str) -> dict[str, Any] | None: ...

    def get_by_id(self, subscriber_id: int) -> dict[str, Any] | None: ...

    def count(self, status: str | None = None) -> int: ...

    def iter(
        self, statuses: Sequence[str] | None = None, batch: int = 500
    ) -> Iterator[dict[str, Any]]:
        """Subscribers (of ``statuses``, else all but erased ones) in id order, in keyset pages."""
        ...

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
        ...

    def claim_owner_notice(self, subscriber_id: int, now: dt.datetime, every: dt.timedelta) -> bool:
        """Record a notice to the address's owner unless one went out within ``every``."""
        ...

    def statuses_of(self, email_keys: Sequence[str]) -> dict[str, str]:
        """email_key → status for the keys that exist."""
        ...

    def import_rows(
        self,
        rows: Sequence[ImportedRow],
        *,
        now: dt.datetime,
        import_file: str,
        imported_by: str,
    ) -> int:
        """Insert all rows as confirmed in one transaction: all or nothing."""
        ...

    def forget(self, email_key: str, email_hash: str, now: dt.datetime) -> bool:
        """Erase the subscriber's data and delivery rows; keep only ``email_hash``. False if unknown.

        The row stays as an empty tombstone (status ``forgotten``): SQLite hands a deleted
        highest id to the next insert, and the person's old unsubscribe link (which names the
        id) must never act on somebody else.
        """
        ...

    def forgotten_at(self, email_hash: str) -> dt.datetime | None: ...

    def forgotten_among(self, hashes: Sequence[str]) -> set[str]: ...

    def unforget(self, email_hash: str) -> None:
        """The person gave consent anew (a confirmed web request): lift the block."""
        ...

    def bounced(self) -> list[BouncedSubscriber]:
        """Subscribers set aside after repeated hard bounces, with the last server answer."""
        ...


class Store(Protocol):
    """The database as the use cases see it: one repository per concern (read-only members,
    so an adapter may hold a more specific repository)."""

    def transaction(self) -> AbstractContextManager[None]:
        """Every repository call of this thread inside the block in one short write
        transaction, taken at once under the write discipline the deliveries keep: for a use
        case whose writes belong together (a subscribe request). Only database work inside."""
        ...

    @property
    def sessions(self) -> Sessions: ...

    @property
    def runs(self) -> Runs: ...

    @property
    def kv(self) -> KeyValues: ...

    @property
    def counters(self) -> Counters: ...

    @property
    def mailings(self) -> Mailings: ...

    @property
    def deliveries(self) -> DeliveryLedger: ...

    @property
    def subscribers(self) -> Subscribers: ...

    # The organisers' console (its protocols live in ``app.ports.console``).
    @property
    def organisers(self) -> Organisers: ...

    @property
    def console_sessions(self) -> ConsoleSessions: ...

    @property
    def audit(self) -> AuditLog: ...

    @property
    def plans(self) -> PlanRevisions: ...
