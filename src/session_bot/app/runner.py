"""Performs the actions the timeline says are due, recording intent before and outcome after.

Every trigger (daemon schedule, `session-bot run`, POST /admin/run, the demo) calls ``Runner.run``:
plan → due actions → perform each. ``MeetingKeeper`` (``app.meetings``) keeps each session's Zoom
meeting, ``MailingDesk`` (``app.mailings``) renders, freezes and delivers its mailings.
`session-bot send` calls ``Runner.send``, `session-bot deliver` ``Runner.deliver``.
Announcements (``app.announcements``) go through the same ``deliver``: a run first freezes the
scheduled ones whose moment has come.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

from session_bot.app import announcements
from session_bot.app.alert_texts import pending_text, stuck_text
from session_bot.app.announcements import AnnouncementDesk, AnnouncementRendererFor
from session_bot.app.delivery import DeliveryReport, RateLimits
from session_bot.app.mailings import DeliveryOptions, MailingDesk, Sent
from session_bot.app.meetings import MeetingKeeper, meeting_request
from session_bot.app.pending import PendingDesk
from session_bot.app.personaliser import RecipientFor
from session_bot.app.ports.delivery import DeliveryHelpers
from session_bot.app.ports.render import RendererFor
from session_bot.app.ports.store import Store
from session_bot.app.ports.zoom import ZoomMeetings
from session_bot.app.run_report import RunReport
from session_bot.core.changes import changed_fields
from session_bot.core.clock import Clock
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.meeting import Meeting
from session_bot.core.plan import Occurrence, Plan, find_occurrence
from session_bot.core.records import DeliveryRow, MailingRow, SessionRow
from session_bot.core.timeline import Action, SessionState, due_actions

if TYPE_CHECKING:
    # The transport's protocol moves to session_bot.app.ports.mail.
    from session_bot.app.ports.mail import Transport

# ``meeting_request`` is re-exported for the tests that create meetings the way the runner does.
__all__ = ["RunReport", "Runner", "meeting_request", "state_from_store"]

log = logging.getLogger("session_bot.runner")

Step = Callable[[Occurrence, SessionRow, RunReport], None]


def state_from_store(store: Store) -> dict[str, SessionState]:
    kinds = store.mailings.kinds_by_session()
    return {
        row.key: SessionState(
            meeting_id=row.meeting_id,
            mailings=kinds.get(row.key, {}),
            announced=row.announced,
            cancelled=row.cancelled_at is not None,
            approved=row.approved,
        )
        for row in store.sessions.all()
    }


class Runner:
    """The reconcile loop's one implementation."""

    def __init__(
        self,
        *,
        plan: Plan,
        store: Store,
        zoom: ZoomMeetings | None,
        renderer_for: RendererFor,
        transport: Transport,
        clock: Clock,
        sender: str,
        recipient_for: RecipientFor,
        message_id_domain: str,
        on_hold: Callable[[Occurrence, dt.datetime], None] | None = None,
        on_alert: Callable[[str, str], None] | None = None,
        worker: str = "",
        connections: int = 1,
        rate: RateLimits | None = None,
        progress: bool = False,
        stop: threading.Event | None = None,
        retry_wait: dt.timedelta | None = None,
        announcements: AnnouncementRendererFor | None = None,
        delivery_helpers: DeliveryHelpers | None = None,
    ) -> None:
        self.plan = plan
        self.store = store
        self.zoom = zoom  # None: a delivery-only runner (`session-bot deliver`)
        self.transport = transport
        self.clock = clock
        # Hooks and delivery options are read at each use: the daemon sets them after building.
        self.on_hold = on_hold
        self.on_alert = on_alert
        self.worker = worker
        self.connections = connections
        self.rate = rate
        self.progress = progress
        self.stop = stop
        self.retry_wait = retry_wait
        self.announcements = announcements  # None: announcements are reported, not sent
        self._meetings = MeetingKeeper(store, zoom, clock, self._alert)
        self._mailings = MailingDesk(
            store=store,
            renderer_for=renderer_for,
            transport=transport,
            clock=clock,
            sender=sender,
            recipient_for=recipient_for,
            message_id_domain=message_id_domain,
            occurrence_for=self.occurrence_for,
            helpers=delivery_helpers,
        )
        self._announcements = AnnouncementDesk(
            store, plan, clock, recipient_for, message_id_domain, lambda: self.announcements
        )
        self._steps: dict[str, Step] = {
            "meeting": self._meeting,
            "invitation": self._invitation,
            "reminder": self._reminder,
            "update": self._update,
            "cancellation": self._cancellation,
        }

    # --- the loop ----------------------------------------------------------------------------
    def plan_actions(self, now: dt.datetime) -> list[Action]:
        return due_actions(now, self.plan, state_from_store(self.store))

    def run(self, trigger: str = "manual", dry_run: bool = False) -> RunReport:
        now = self.clock()
        report = RunReport(trigger=trigger, started_at=now, dry_run=dry_run)
        actions = self.plan_actions(now)
        report.planned = [a.describe() for a in actions]
        if dry_run:
            report.planned += [
                f"resume mailing {m.id} ({m.kind} {m.session_key})"
                for m in self.store.mailings.open()
            ]
            return report
        run_id = self.store.runs.start(trigger, now)
        try:
            self._recheck_flagged(report)
            announcements.freeze_due(self.store, now)
            for action in actions:
                log.info("action: %s", action.describe())
                self._perform(action, report)
                report.done.append(action.describe())
            for mailing in self.store.mailings.open():
                # Each mailing on its own: one that cannot go out must not hold back the others.
                report.delivery.add(self.deliver(mailing))
        except BaseException as exc:
            # Recorded with the run, so that `status` says why (and re-raised for the caller).
            report.error = str(exc) if isinstance(exc, SessionBotError) else repr(exc)
            raise
        finally:
            self.store.runs.finish(
                run_id, self.clock(), report.outcome, report.summary(), report.counts()
            )
        for why in report.delivery.stuck:
            self._alert(*stuck_text(why, self.plan.series[0].language))
        self._alert_pending()
        log.info("run finished: %s", report.summary())
        return report

    def send(self, occ: Occurrence, kind: str) -> Sent:
        """A deliberate send of ``kind`` to every subscriber, now, as a new mailing; the session's
        meeting is created first if it has none yet."""
        now = self.clock()
        row = self._session_row(occ, now)
        meeting = self.ensure_meeting(occ, row, RunReport(trigger="send", started_at=now))
        return self._mailings.send(occ, row, kind, meeting, now, self._delivery_options())

    def deliver(self, mailing: MailingRow) -> DeliveryReport:
        options = self._delivery_options()
        if mailing.kind == announcements.KIND:
            return self._announcements.deliver(
                mailing, lambda m, personalise: self._mailings.push(m, personalise, options)
            )
        return self._mailings.deliver(mailing, options)

    def push(
        self, mailing: MailingRow, personalise: Callable[[DeliveryRow], bytes]
    ) -> DeliveryReport:
        """The mailing's due rows with ``personalise`` as it is (a helper process's work)."""
        return self._mailings.push(mailing, personalise, self._delivery_options())

    def _perform(self, action: Action, report: RunReport) -> None:
        occ = action.occurrence
        now = self.clock()
        row = self._session_row(occ, now)
        if action.kind == "hold":
            report.held.append(f"{occ.key}: {action.note}")
            if self.on_hold is not None:
                self.on_hold(occ, now)
            return
        step = self._steps.get(action.kind)
        if step is None:
            raise NotImplementedError(f"action {action.kind} is not supported yet")
        step(occ, row, report)

    # --- the actions -------------------------------------------------------------------------
    def _meeting(self, occ: Occurrence, row: SessionRow, report: RunReport) -> None:
        self.ensure_meeting(occ, row, report)

    def _invitation(self, occ: Occurrence, row: SessionRow, report: RunReport) -> None:
        meeting = self.ensure_meeting(occ, row, report)
        self._mailings.freeze(occ, row, "invitation", row.sequence, meeting, report, announce=True)

    def _reminder(self, occ: Occurrence, row: SessionRow, report: RunReport) -> None:
        meeting, join_changed, row = self._read_back(occ, row, report)
        if join_changed:
            # The join details subscribers hold are wrong: an update first, then the reminder.
            self._announce_join(occ, row, meeting, report)
            row = self._reload(row)
        sequence = row.sequence
        earlier = self.store.mailings.of_session(row.id)
        if any(m.kind == "reminder" and m.sequence == sequence for m in earlier):
            # A reminder sent by hand (`send --kind reminder`) holds this sequence: the
            # scheduled one is a mailing of its own, not silently the same one.
            sequence = max(m.sequence for m in earlier) + 1
            announced = row.announced or occ.announced_fingerprint()
            self.store.sessions.record_announcement(row.id, announced, sequence, self.clock())
        self._mailings.freeze(occ, row, "reminder", sequence, meeting, report)

    def _update(self, occ: Occurrence, row: SessionRow, report: RunReport) -> None:
        meeting, join_changed, row = self._read_back(occ, row, report)
        fields = changed_fields(row.announced, occ) + (["join"] if join_changed else [])
        self._mailings.freeze(
            occ, row, "update", row.sequence + 1, meeting, report, fields=fields, announce=True
        )

    def _cancellation(self, occ: Occurrence, row: SessionRow, report: RunReport) -> None:
        # Mail still owed for this session (an invitation while SMTP was down) would now invite
        # to a cancelled session: it is skipped; the cancellation says what is true.
        skipped = self.store.mailings.supersede(
            row.id, "not sent: the session was cancelled before it went out", self.clock()
        )
        if skipped:
            log.info("%s cancelled: %d message(s) still owed for it are not sent", occ.key, skipped)
        if row.meeting_id is not None:
            self._meetings.delete(row.meeting_id)
        if self._mailings.invited(row):
            self._mailings.freeze(
                occ, row, "cancellation", row.sequence + 1, None, report, announce=True
            )
        now = self.clock()
        self.store.sessions.clear_meeting(row.id, now)
        self.store.sessions.mark_cancelled(row.id, now)

    def _recheck_flagged(self, report: RunReport) -> None:
        """Sessions whose meeting Zoom told us about (webhook): read back, restore, inform."""
        for key in self.store.sessions.to_check():
            row = self.store.sessions.get(key)
            if row is None:
                continue
            occ = self._still_ahead(key)
            if occ is None or row.meeting_json is None:
                self.store.sessions.clear_zoom_check(row.id)
                continue
            stored = Meeting.from_json(row.meeting_json)
            meeting, join_changed = self.reconcile_zoom(occ, row, stored, report)
            if join_changed and self._mailings.invited(row):
                self._announce_join(occ, self._reload(row), meeting, report)
            report.done.append(f"zoom re-check for {key}")

    # --- Zoom --------------------------------------------------------------------------------
    def ensure_meeting(
        self, occ: Occurrence, row: SessionRow, report: RunReport, *, adopt: bool = True
    ) -> Meeting:
        """The session's meeting: stored, adopted after a crash, or created — never two."""
        return self._meetings.ensure(occ, row, report, adopt=adopt)

    def reconcile_zoom(
        self, occ: Occurrence, row: SessionRow, meeting: Meeting, report: RunReport
    ) -> tuple[Meeting, bool]:
        """Read the meeting back and make Zoom follow the plan; (meeting, join details changed)."""
        return self._meetings.reconcile(occ, row, meeting, report)

    # --- helpers -----------------------------------------------------------------------------
    def occurrence_for(self, session_key: str) -> Occurrence:
        series_id, _, day = session_key.partition("/")
        return find_occurrence(self.plan, dt.date.fromisoformat(day), series_id)

    def _still_ahead(self, key: str) -> Occurrence | None:
        """The session of ``key`` if the plan still holds it, uncancelled and not yet begun."""
        try:
            occ = self.occurrence_for(key)
        except PlanError:
            return None
        return None if occ.cancelled or occ.start <= self.clock() else occ

    def _read_back(
        self, occ: Occurrence, row: SessionRow, report: RunReport
    ) -> tuple[Meeting, bool, SessionRow]:
        """The meeting as Zoom has it, restored to the plan; whether its join details changed;
        and the session row as it is afterwards."""
        meeting = self.ensure_meeting(occ, row, report)
        meeting, join_changed = self.reconcile_zoom(occ, self._reload(row), meeting, report)
        return meeting, join_changed, self._reload(row)

    def _announce_join(
        self, occ: Occurrence, row: SessionRow, meeting: Meeting, report: RunReport
    ) -> None:
        self._mailings.freeze(
            occ, row, "update", row.sequence + 1, meeting, report, fields=["join"], announce=True
        )

    def _session_row(self, occ: Occurrence, now: dt.datetime) -> SessionRow:
        return self.store.sessions.ensure(
            occ.key, occ.series.id, occ.date.isoformat(), occ.start, occ.duration, now
        )

    def _reload(self, row: SessionRow) -> SessionRow:
        fresh = self.store.sessions.get(row.key)
        assert fresh is not None
        return fresh

    def _alert(self, subject: str, body: str) -> None:
        log.warning("alert: %s", subject)
        if self.on_alert is not None:
            self.on_alert(subject, body)

    def _alert_pending(self) -> None:
        """A change still waiting for the organiser close to its session: tell her, once."""
        for change in PendingDesk(self.store, self.clock, lambda: self.plan).due_alerts():
            self._alert(*pending_text(change, change.occurrence.series.language))

    def _delivery_options(self) -> DeliveryOptions:
        return DeliveryOptions(
            self.worker, self.connections, self.rate, self.progress, self.stop, self.retry_wait
        )
