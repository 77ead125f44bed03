"""Pending updates and cancellations: list them, send one, or mark one as not worth a mail.

Sending stores the fingerprint the organiser approved; the next run (which the caller asks for:
the console's run request, `session-bot updates send`'s own run) mails it through the usual
update or cancellation step, so a standby's console and the leader agree on what happens.
Dismissing records the new state as announced without a mail. Both are in the audit log.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable

from session_bot.app.plan_book import Who
from session_bot.app.ports.store import Store
from session_bot.core.clock import Clock
from session_bot.core.errors import SessionBotError
from session_bot.core.plan import Plan
from session_bot.core.review import PendingChange, pending_changes, review_fingerprint

log = logging.getLogger("session_bot.runner")

ALERT_KEY = "pending.alerted:"


class NotPending(SessionBotError):
    """The session has no change waiting (sent, dismissed or edited back meanwhile)."""


class PendingDesk:
    def __init__(self, store: Store, clock: Clock, plan: Callable[[], Plan]) -> None:
        self.store = store
        self.clock = clock
        self.plan = plan

    def pending(self) -> list[PendingChange]:
        rows = self.store.sessions.all()
        kinds = self.store.mailings.kinds_by_session()
        return pending_changes(
            self.clock(),
            self.plan(),
            {key: set(k) for key, k in kinds.items()},
            {r.key: r.announced for r in rows},
            {r.key: r.approved for r in rows if r.approved is not None},
        )

    def find(self, key: str) -> PendingChange:
        for change in self.pending():
            if change.key == key:
                return change
        raise NotPending(
            f"für den Termin {key.partition('/')[2]} wartet keine Änderung (schon gesendet, "
            "verworfen oder wieder zurückgeändert)"
        )

    def send(self, key: str, who: Who) -> PendingChange:
        """Approve the change for mailing; the next run sends it."""
        change = self.find(key)
        row = self.store.sessions.get(key)
        if row is None:  # an invited session has a row; kept for the type checker
            raise NotPending(f"no session {key}")
        now = self.clock()
        self.store.sessions.approve(row.id, review_fingerprint(change.occurrence), now)
        self.store.audit.record(now, who.actor, f"{change.kind}-send", _detail(change), who.client)
        log.info("%s for %s approved by %s", change.kind, key, who.actor)
        return change

    def dismiss(self, key: str, who: Who) -> PendingChange:
        """Record the change as told, without a mail (a typo fix, a speaker's title)."""
        change = self.find(key)
        if change.kind == "cancellation":
            raise NotPending(
                "eine Absage lässt sich nicht ohne Mail erledigen: senden Sie sie, oder nehmen "
                "Sie die Absage im Plan zurück"
            )
        row = self.store.sessions.get(key)
        if row is None:
            raise NotPending(f"no session {key}")
        now = self.clock()
        fingerprint = change.occurrence.announced_fingerprint()
        self.store.sessions.record_announcement(row.id, fingerprint, row.sequence, now)
        self.store.audit.record(now, who.actor, "update-dismiss", _detail(change), who.client)
        log.info("update for %s dismissed by %s (no mail)", key, who.actor)
        return change

    def due_alerts(self) -> list[PendingChange]:
        """Pending changes close to their session that the organiser was not yet alerted to;
        each is marked as alerted (once per change)."""
        now = self.clock()
        out = []
        for change in self.pending():
            if now < change.alert_at:
                continue
            key = f"{ALERT_KEY}{change.key}:{change.digest}"
            if self.store.kv.get(key) is not None:
                continue
            self.store.kv.set(key, now.isoformat(), expires_at=change.occurrence.start + _WEEK)
            out.append(change)
        return out


_WEEK = dt.timedelta(days=7)


def _detail(change: PendingChange) -> str:
    fields = ", ".join(change.fields)
    return f"{change.key} {change.kind}" + (f" ({fields})" if fields else "")
