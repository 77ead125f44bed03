"""Changes to announced sessions that wait for the organiser: pure functions of (now, plan, state).

In a series with ``updates: review`` (the default) a change of an invited session's time, topic
or speakers, or its cancellation, mails nobody by itself: it is a ``PendingChange`` until the
organiser sends it (the approved fingerprint is stored; the timeline then makes the update or
cancellation due) or dismisses it (the new state is recorded as announced, without mail).
Zoom drift that changes join details is not a plan change and is still mailed at once.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from session_bot.core.changes import changed_fields
from session_bot.core.plan.model import Plan
from session_bot.core.plan.occurrences import Occurrence, occurrences

PendingKind = Literal["update", "cancellation"]

# An update still pending this long before the reminder (or, without one, the session) alerts
# the organiser.
ALERT_BEFORE = dt.timedelta(hours=24)
LOOK_AHEAD_DAYS = 400


def review_fingerprint(occ: Occurrence) -> dict[str, Any]:
    """What the organiser approves when she sends a change: what recipients will be told."""
    reason = occ.content.reason if occ.content and occ.cancelled else None
    return {**occ.announced_fingerprint(), "cancelled": occ.cancelled, "reason": reason}


def reviewed(occ: Occurrence) -> bool:
    return occ.series.updates == "review"


def approved(occ: Occurrence, approved_fingerprint: Any) -> bool:
    return approved_fingerprint is not None and approved_fingerprint == review_fingerprint(occ)


@dataclass(frozen=True)
class PendingChange:
    occurrence: Occurrence
    kind: PendingKind
    fields: tuple[str, ...]  # time / topic / speakers (update); () for a cancellation
    before: dict[str, Any]  # what subscribers were last told
    alert_at: dt.datetime

    @property
    def key(self) -> str:
        return self.occurrence.key

    @property
    def digest(self) -> str:
        """Names this very change (the alert is sent once per change, not once per session)."""
        import hashlib
        import json

        after = review_fingerprint(self.occurrence)
        blob = json.dumps([self.before, after], sort_keys=True, default=str)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def pending_for(
    occ: Occurrence,
    now: dt.datetime,
    *,
    invited: bool,
    cancelled_mailed: bool,
    announced: dict[str, Any] | None,
    approved_fingerprint: Any,
) -> PendingChange | None:
    """The change of one session that waits for the organiser, if any."""
    if not reviewed(occ) or occ.skip_reason or now >= occ.start or not invited:
        return None
    if approved(occ, approved_fingerprint):
        return None  # she sent it: the timeline makes it due
    before = dict(announced) if announced is not None else {}
    anchor = occ.reminder_at or occ.start
    alert_at = anchor - ALERT_BEFORE
    if occ.cancelled:
        if cancelled_mailed:
            return None
        return PendingChange(occ, "cancellation", (), before, alert_at)
    if announced is None or announced == occ.announced_fingerprint():
        return None
    if occ.content and occ.content.minor_change:
        return None
    fields = tuple(changed_fields(announced, occ))
    return PendingChange(occ, "update", fields, before, alert_at)


def pending_changes(
    now: dt.datetime,
    plan: Plan,
    mailed: dict[str, set[str]],
    announced: dict[str, dict[str, Any] | None],
    approvals: dict[str, Any],
) -> list[PendingChange]:
    """Every session's change that waits for the organiser, soonest session first.

    ``mailed``: kinds mailed per session key; ``announced``: the fingerprint last mailed;
    ``approvals``: the fingerprint the organiser approved per key (if any)."""
    found: list[PendingChange] = []
    today = now.date()
    for series in plan.series:
        for occ in occurrences(
            series, today, today + dt.timedelta(days=LOOK_AHEAD_DAYS), source=plan.source
        ):
            kinds = mailed.get(occ.key, set())
            change = pending_for(
                occ,
                now,
                invited="invitation" in kinds,
                cancelled_mailed="cancellation" in kinds,
                announced=announced.get(occ.key),
                approved_fingerprint=approvals.get(occ.key),
            )
            if change is not None:
                found.append(change)
    return sorted(found, key=lambda c: c.occurrence.start)
