"""What the console's overview shows: the upcoming sessions and their state, what happens next,
what needs the organiser, and the last run. Values only; the pages put them into words."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

from session_bot.app.pending import PendingDesk
from session_bot.app.ports.store import Store
from session_bot.app.runner import state_from_store
from session_bot.core.plan import Occurrence, Plan
from session_bot.core.timeline import SessionState, upcoming


@dataclass(frozen=True)
class MailingCount:
    id: int
    kind: str
    sequence: int
    frozen_at: dt.datetime
    recipients: int
    counts: dict[str, int]

    @property
    def owed(self) -> int:
        return self.counts.get("pending", 0) + self.counts.get("sending", 0)


@dataclass(frozen=True)
class SessionView:
    occurrence: Occurrence
    # planned | held (waiting for a topic) | invited | reminded | cancelled | skipped
    state: str
    reason: str | None
    meeting_id: int | None
    mailings: list[MailingCount]

    @property
    def key(self) -> str:
        return self.occurrence.key

    @property
    def date(self) -> str:
        return self.occurrence.date.isoformat()


@dataclass(frozen=True)
class NextStep:
    at: dt.datetime
    kind: str  # invitation | reminder
    session: Occurrence
    recipients: int  # confirmed subscribers now


@dataclass
class Overview:
    now: dt.datetime
    sessions: list[SessionView]
    next_steps: list[NextStep]
    attention: list[tuple[str, dict[str, Any]]] = field(default_factory=list)  # (key, values)
    last_run: dict[str, Any] | None = None


def mailings_of(store: Store, session_id: int) -> list[MailingCount]:
    return [
        MailingCount(
            m.id,
            m.kind,
            m.sequence,
            m.created_at,
            m.recipients,
            store.mailings.delivery_counts(m.id),
        )
        for m in store.mailings.of_session(session_id)
    ]


def session_view(store: Store, occ: Occurrence, st: SessionState, now: dt.datetime) -> SessionView:
    row = store.sessions.get(occ.key)
    mailings = mailings_of(store, row.id) if row else []
    kinds = {m.kind for m in mailings}
    reason: str | None = None
    if occ.skip_reason:
        state, reason = "skipped", occ.skip_reason
    elif occ.cancelled:
        state = "cancelled"
        reason = occ.content.reason if occ.content else None
    elif "reminder" in kinds:
        state = "reminded"
    elif "invitation" in kinds:
        state = "invited"
    elif not occ.has_topic:
        state = "held" if now >= occ.invitation_at else "waiting"
    else:
        state = "planned"
    return SessionView(occ, state, reason, st.meeting_id, mailings)


def overview(store: Store, plan: Plan, now: dt.datetime, problems: list[str]) -> Overview:
    state = state_from_store(store)
    confirmed = store.subscribers.count("confirmed")
    views = [
        session_view(store, o, state.get(o.key, SessionState()), now)
        for o in upcoming(now, plan, 120)
    ]
    steps: list[NextStep] = []
    for v in views:
        occ = v.occurrence
        if v.state in ("planned", "waiting", "held"):
            steps.append(NextStep(max(occ.invitation_at, now), "invitation", occ, confirmed))
        elif v.state == "invited" and occ.reminder_at is not None:
            steps.append(NextStep(max(occ.reminder_at, now), "reminder", occ, confirmed))
    steps.sort(key=lambda s: s.at)
    result = Overview(now, views, steps[:3], last_run=store.runs.last())
    for problem in problems:
        result.attention.append(("problem", {"text": problem}))
    for change in PendingDesk(store, lambda: now, lambda: plan).pending():
        result.attention.append(("pending", {"session": change.occurrence, "kind": change.kind}))
    for v in views:
        if v.state == "held":
            result.attention.append(("held", {"session": v.occurrence}))
        for m in v.mailings:
            if m.owed and m.counts.get("pending", 0):
                result.attention.append(("owed", {"session": v.occurrence, "mailing": m}))
    bounced = store.subscribers.count("bounced")
    if bounced:
        result.attention.append(("bounced", {"count": bounced}))
    run = result.last_run
    if run and run.get("outcome") not in (None, "ok"):
        result.attention.append(("run", {"run": run}))
    return result
