"""Performs the actions the timeline says are due, recording intent before and outcome after.

Every trigger (daemon schedule, `session-bot run`, POST /admin/run, the demo) calls ``Runner.run``.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from session_bot.delivery import DeliveryReport, deliver_mailing
from session_bot.errors import PlanError, ZoomNotFound
from session_bot.plan import Occurrence, Plan, Series
from session_bot.store import DeliveryRow, MailingRow, SessionRow, Store
from session_bot.timeline import Action, SessionState, due_actions
from session_bot.zoom import LostCreateAnswer, Meeting, MeetingRequest, ZoomClient, marker

if TYPE_CHECKING:
    from session_bot.invitations import RenderedMailing, Renderer
    from session_bot.mailer import Transport

log = logging.getLogger(__name__)

LANGUAGES = ("de", "en")

Clock = Callable[[], dt.datetime]


@dataclass
class RunReport:
    trigger: str
    started_at: dt.datetime
    planned: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    meetings_created: int = 0
    meetings_adopted: int = 0
    mailings_frozen: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    dry_run: bool = False

    @property
    def nothing_to_do(self) -> bool:
        return not self.planned and not (self.delivery.sent or self.delivery.temporary)

    def summary(self) -> str:
        if self.dry_run:
            return "dry run: " + ("; ".join(self.planned) if self.planned else "nothing due")
        parts = [
            f"{len(self.done)} action(s)",
            f"{self.meetings_created} meeting(s) created",
            f"{self.meetings_adopted} adopted",
            f"{self.mailings_frozen} mailing(s) frozen",
            f"{self.delivery.sent} message(s) sent",
        ]
        if self.delivery.temporary:
            parts.append(f"{self.delivery.temporary} to retry")
        if self.delivery.permanent:
            parts.append(f"{self.delivery.permanent} failed")
        if self.held:
            parts.append(f"{len(self.held)} held")
        return ", ".join(parts)


def state_from_store(store: Store) -> dict[str, SessionState]:
    kinds = store.mailing_kinds_by_session()
    return {
        row.key: SessionState(
            meeting_id=row.meeting_id,
            mailings=kinds.get(row.key, {}),
            announced=row.announced,
            cancelled=row.cancelled_at is not None,
        )
        for row in store.all_sessions()
    }


def meeting_request(occ: Occurrence) -> MeetingRequest:
    content = occ.content
    speakers = "; ".join(
        ", ".join(p for p in (s.name, s.role, s.organisation) if p)
        for s in (content.speakers if content else ())
    )
    agenda = f"{marker(occ.series.id, occ.date)} {occ.content.topic_one_line if content else ''}"
    if speakers:
        agenda += f"\nImpulse: {speakers}"
    topic = f"{occ.series.title} – {content.topic_one_line}" if content else occ.series.title
    return MeetingRequest(
        topic=topic[:200],
        agenda=agenda[:2000],
        start=occ.start,
        duration=occ.duration,
        timezone=occ.series.timezone,
        alternative_hosts=occ.series.alternative_hosts,
    )


class Runner:
    """The reconcile loop's one implementation."""

    def __init__(
        self,
        *,
        plan: Plan,
        store: Store,
        zoom: ZoomClient,
        renderer_for: Callable[[Series], Renderer],
        transport: Transport,
        clock: Clock,
        sender: str,
        recipient_for: Callable[[DeliveryRow, MailingRow], object],
        message_id_domain: str,
        on_hold: Callable[[Occurrence, dt.datetime], None] | None = None,
        worker: str = "",
    ) -> None:
        self.plan = plan
        self.store = store
        self.zoom = zoom
        self.renderer_for = renderer_for
        self.transport = transport
        self.clock = clock
        self.sender = sender
        self.recipient_for = recipient_for
        self.message_id_domain = message_id_domain
        self.on_hold = on_hold
        self.worker = worker

    # --- the loop ----------------------------------------------------------------------------
    def plan_actions(self, now: dt.datetime) -> list[Action]:
        return due_actions(now, self.plan, state_from_store(self.store))

    def run(self, trigger: str = "manual", dry_run: bool = False) -> RunReport:
        now = self.clock()
        report = RunReport(trigger=trigger, started_at=now, dry_run=dry_run)
        actions = self.plan_actions(now)
        report.planned = [a.describe() for a in actions]
        pending = [m for m in self.store.open_mailings()]
        if dry_run:
            report.planned += [f"resume mailing {m.id} ({m.kind} {m.session_key})" for m in pending]
            return report
        run_id = self.store.start_run(trigger, now)
        outcome = "error"
        try:
            for action in actions:
                log.info("action: %s", action.describe())
                self._perform(action, report)
                report.done.append(action.describe())
            for mailing in self.store.open_mailings():
                report.delivery.add(self._deliver(mailing))
            outcome = "ok" if not report.delivery.permanent else "partial"
        finally:
            self.store.finish_run(run_id, self.clock(), outcome, report.summary())
        log.info("run finished: %s", report.summary())
        return report

    def _perform(self, action: Action, report: RunReport) -> None:
        occ = action.occurrence
        now = self.clock()
        row = self.store.ensure_session(
            occ.key, occ.series.id, occ.date.isoformat(), occ.start, occ.duration, now
        )
        if action.kind == "hold":
            report.held.append(f"{occ.key}: {action.note}")
            if self.on_hold is not None:
                self.on_hold(occ, now)
            return
        if action.kind == "meeting":
            self.ensure_meeting(occ, row, report)
            return
        if action.kind in ("invitation", "reminder"):
            meeting = self.ensure_meeting(occ, row, report)
            # Render every language before freezing: a template error must stop the mailing
            # before anyone gets anything, not halfway through the list.
            self._render_all(action.kind, occ, meeting, row.sequence, now)
            _, created = self.store.freeze_mailing(row.id, action.kind, row.sequence, now)
            if action.kind == "invitation":
                self.store.record_announcement(
                    row.id, occ.announced_fingerprint(), row.sequence, now
                )
            report.mailings_frozen += int(created)
            return
        raise NotImplementedError(f"action {action.kind} is not supported yet")

    # --- Zoom --------------------------------------------------------------------------------
    def ensure_meeting(self, occ: Occurrence, row: SessionRow, report: RunReport) -> Meeting:
        """The session's meeting: stored, adopted after a crash, or created — never two."""
        if row.meeting_id is not None and row.meeting_json is not None:
            return Meeting.from_json(row.meeting_json)
        tag = marker(occ.series.id, occ.date)
        if row.meeting_intent_at is not None:
            adopted = self._adopt(tag, row)
            if adopted is not None:
                report.meetings_adopted += 1
                return adopted
        self.store.record_meeting_intent(row.id, self.clock())
        try:
            meeting = self.zoom.create_meeting(meeting_request(occ))
        except LostCreateAnswer:
            log.warning("create answer lost for %s; looking for the meeting by its marker", occ.key)
            adopted = self._adopt(tag, row)
            if adopted is None:
                raise
            report.meetings_adopted += 1
            return adopted
        self.store.record_meeting(row.id, meeting.to_json(), self.clock())
        report.meetings_created += 1
        log.info("meeting %s created for %s", meeting.display_id, occ.key)
        return meeting

    def _adopt(self, tag: str, row: SessionRow) -> Meeting | None:
        found = self.zoom.find_by_marker(tag)
        if found is None:
            return None
        try:
            meeting = self.zoom.get_meeting(found.id)
        except ZoomNotFound:
            return None
        self.store.record_meeting(row.id, meeting.to_json(), self.clock())
        log.info("adopted meeting %s for %s", meeting.display_id, row.key)
        return meeting

    # --- mail --------------------------------------------------------------------------------
    def occurrence_for(self, session_key: str) -> Occurrence:
        from session_bot.plan import find_occurrence

        series_id, _, day = session_key.partition("/")
        return find_occurrence(self.plan, dt.date.fromisoformat(day), series_id)

    def _render_all(
        self, kind: str, occ: Occurrence, meeting: Meeting | None, sequence: int, now: dt.datetime
    ) -> dict[str, RenderedMailing]:
        renderer = self.renderer_for(occ.series)
        return {
            lang: renderer.render(kind, occ, meeting, sequence=sequence, now=now, language=lang)
            for lang in LANGUAGES
        }

    def _deliver(self, mailing: MailingRow) -> DeliveryReport:
        try:
            occ = self.occurrence_for(mailing.session_key)
        except PlanError as exc:
            log.error(
                "mailing %s: its session is gone from the plan (%s); not sent", mailing.id, exc
            )
            return DeliveryReport(failures=[str(exc)])
        row = self.store.get_session(mailing.session_key)
        meeting = Meeting.from_json(row.meeting_json) if row and row.meeting_json else None
        now = self.clock()
        rendered = self._render_all(mailing.kind, occ, meeting, mailing.sequence, now)

        def personalise(d: DeliveryRow) -> bytes:
            lang = d.language if d.language in rendered else occ.series.language
            recipient = self.recipient_for(d, mailing)
            mid = f"<{mailing.id}.{d.id}.{mailing.kind}@{self.message_id_domain}>"
            return rendered[lang].personalise(recipient, message_id=mid, date=now)  # type: ignore[arg-type]

        log.info("delivering mailing %s (%s, %s)", mailing.id, mailing.kind, mailing.session_key)
        return deliver_mailing(
            self.store,
            self.transport,
            mailing.id,
            personalise,
            sender=self.sender,
            clock=self.clock,
            worker=self.worker,
        )
