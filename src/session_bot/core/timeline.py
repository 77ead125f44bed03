"""What should have happened by now that has not: pure functions of (now, plan, state).

No I/O and no clock: the caller passes ``now`` and what the store recorded.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from session_bot.core.plan.model import Plan
from session_bot.core.plan.occurrences import Occurrence, occurrences
from session_bot.core.review import approved, reviewed

ActionKind = Literal["meeting", "invitation", "reminder", "update", "cancellation", "hold"]


@dataclass(frozen=True)
class SessionState:
    """What the store recorded about one session."""

    meeting_id: int | None = None
    mailings: Mapping[str, dt.datetime] = field(default_factory=dict)  # kind → latest frozen at
    announced: Mapping[str, object] | None = None  # fingerprint sent with the last mail
    cancelled: bool = False
    approved: Mapping[str, object] | None = None  # the change the organiser sent (review)


@dataclass(frozen=True)
class Action:
    kind: ActionKind
    occurrence: Occurrence
    due: dt.datetime
    note: str = ""

    def describe(self) -> str:
        occ = self.occurrence
        text = f"{self.kind} for {occ.key} (due {self.due.astimezone(occ.series.zone):%Y-%m-%d %H:%M %Z})"
        return f"{text}: {self.note}" if self.note else text


State = Mapping[str, SessionState]


def _window(plan: Plan, now: dt.datetime, ahead_days: int) -> Iterator[Occurrence]:
    today = now.date()
    for series in plan.series:
        back = today - dt.timedelta(days=2)
        yield from occurrences(
            series, back, today + dt.timedelta(days=ahead_days), source=plan.source
        )


def _lead_days(plan: Plan) -> int:
    return max(s.lead.invitation_days for s in plan.series) + 2


def actions_for(occ: Occurrence, now: dt.datetime, st: SessionState) -> list[Action]:
    """The actions one session needs at ``now`` (empty when nothing is due)."""
    if occ.skip_reason or now >= occ.start:
        return []
    invited = "invitation" in st.mailings
    inv_at = occ.invitation_at
    # In a reviewed series, a change of what subscribers were told waits for the organiser
    # (``core.review``); once she sends it, the fingerprint she approved makes it due here.
    held_for_review = reviewed(occ) and not approved(occ, st.approved)
    if occ.cancelled:
        out: list[Action] = []
        if invited and "cancellation" not in st.mailings:
            if held_for_review:
                return out
            out.append(
                Action("cancellation", occ, now, occ.content.reason or "" if occ.content else "")
            )
        elif st.meeting_id is not None and not invited:
            out.append(Action("cancellation", occ, now, "meeting only; nobody was invited yet"))
        return out
    if now < inv_at:
        return []
    if not occ.has_topic:
        return [Action("hold", occ, inv_at, "no topic in the plan yet")]
    out = []
    if st.meeting_id is None:
        out.append(Action("meeting", occ, inv_at))
    if not invited:
        late = now - inv_at > dt.timedelta(hours=1)
        out.append(Action("invitation", occ, inv_at, "late: catching up" if late else ""))
        return out
    announced = dict(st.announced) if st.announced is not None else None
    if announced is not None and announced != occ.announced_fingerprint():
        if occ.content and occ.content.minor_change:
            pass  # the organiser marked the edit as minor: no mail
        elif held_for_review:
            pass  # a pending update (``core.review``): mailed when she sends it
        else:
            out.append(Action("update", occ, now, "the plan changed since the last mail"))
    rem_at = occ.reminder_at
    # An invitation that itself went out after the reminder moment already serves as one; a
    # reminder sent by hand before the moment does not replace the scheduled one.
    if (
        rem_at is not None
        and now >= rem_at
        and not _reminded_since(st, rem_at)
        and st.mailings["invitation"] < rem_at
    ):
        out.append(Action("reminder", occ, rem_at))
    return out


def _reminded_since(st: SessionState, moment: dt.datetime) -> bool:
    last = st.mailings.get("reminder")
    return last is not None and last >= moment


def due_actions(now: dt.datetime, plan: Plan, state: State) -> list[Action]:
    """Everything due at ``now``, in the order the runner must perform it."""
    out: list[Action] = []
    for occ in _window(plan, now, _lead_days(plan)):
        out.extend(actions_for(occ, now, state.get(occ.key, SessionState())))
    return out


def next_due(
    now: dt.datetime, plan: Plan, state: State, horizon_days: int = 400
) -> dt.datetime | None:
    """The next moment after ``now`` at which some action becomes due (for the scheduler)."""
    best: dt.datetime | None = None
    for occ in _window(plan, now, horizon_days):
        if occ.skip_reason or occ.start <= now:
            continue
        st = state.get(occ.key, SessionState())
        moments = [occ.invitation_at]
        if occ.reminder_at is not None and not _reminded_since(st, occ.reminder_at):
            moments.append(occ.reminder_at)
        for m in moments:
            if m > now and (best is None or m < best):
                best = m
    return best


def upcoming(now: dt.datetime, plan: Plan, days: int = 120) -> list[Occurrence]:
    """Sessions that have not started yet, skipped ones included (status shows why)."""
    return [o for o in _window(plan, now, days) if o.start > now]
