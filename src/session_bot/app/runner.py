"""Performs the actions the timeline says are due, recording intent before and outcome after.

Every trigger (daemon schedule, `session-bot run`, POST /admin/run, the demo) calls ``Runner.run``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from session_bot.adapters.db.store import Store
from session_bot.adapters.zoom import LostCreateAnswer, Meeting, MeetingRequest, ZoomClient, marker
from session_bot.app.delivery import DeliveryReport, RateLimits, deliver_mailing
from session_bot.core.changes import changed_fields, describe
from session_bot.core.errors import PlanError, ZoomNotFound
from session_bot.core.plan import Occurrence, Plan, Series
from session_bot.core.records import DeliveryRow, MailingRow, SessionRow
from session_bot.core.timeline import Action, SessionState, due_actions

if TYPE_CHECKING:
    from session_bot.adapters.mail import Transport
    from session_bot.adapters.render.invitations import RenderedMailing, Renderer

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
    kinds = store.mailings.kinds_by_session()
    return {
        row.key: SessionState(
            meeting_id=row.meeting_id,
            mailings=kinds.get(row.key, {}),
            announced=row.announced,
            cancelled=row.cancelled_at is not None,
        )
        for row in store.sessions.all()
    }


def _differs(live: Meeting, want: MeetingRequest) -> bool:
    return (
        live.start_time.astimezone(dt.UTC) != want.start.astimezone(dt.UTC)
        or live.duration != want.duration
        or live.topic != want.topic
    )


def meeting_request(occ: Occurrence) -> MeetingRequest:
    content = occ.content
    speakers = "; ".join(
        ", ".join(p for p in (s.name, s.role, s.organisation) if p)
        for s in (content.speakers if content else ())
    )
    agenda = f"{marker(occ.series.id, occ.date)} {content.topic_one_line if content else ''}"
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
        zoom: ZoomClient | None,
        renderer_for: Callable[[Series], Renderer],
        transport: Transport,
        clock: Clock,
        sender: str,
        recipient_for: Callable[[DeliveryRow, MailingRow], object],
        message_id_domain: str,
        on_hold: Callable[[Occurrence, dt.datetime], None] | None = None,
        on_alert: Callable[[str, str], None] | None = None,
        worker: str = "",
        connections: int = 1,
        rate: RateLimits | None = None,
        progress: bool = False,
        stop: threading.Event | None = None,
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
        self.on_alert = on_alert
        self.worker = worker
        self.connections = connections
        self.rate = rate
        self.progress = progress
        self.stop = stop
        self._rendered: dict[int, dict[str, RenderedMailing]] = {}

    def _zoom(self) -> ZoomClient:
        if self.zoom is None:  # a delivery-only runner (`session-bot deliver`) never needs Zoom
            raise RuntimeError("this runner was built without a Zoom client")
        return self.zoom

    # --- the loop ----------------------------------------------------------------------------
    def plan_actions(self, now: dt.datetime) -> list[Action]:
        return due_actions(now, self.plan, state_from_store(self.store))

    def run(self, trigger: str = "manual", dry_run: bool = False) -> RunReport:
        now = self.clock()
        report = RunReport(trigger=trigger, started_at=now, dry_run=dry_run)
        actions = self.plan_actions(now)
        report.planned = [a.describe() for a in actions]
        pending = [m for m in self.store.mailings.open()]
        if dry_run:
            report.planned += [f"resume mailing {m.id} ({m.kind} {m.session_key})" for m in pending]
            return report
        run_id = self.store.runs.start(trigger, now)
        outcome = "error"
        try:
            self._recheck_flagged(report)
            for action in actions:
                log.info("action: %s", action.describe())
                self._perform(action, report)
                report.done.append(action.describe())
            for mailing in self.store.mailings.open():
                report.delivery.add(self.deliver(mailing))
            outcome = "ok" if not report.delivery.permanent else "partial"
        finally:
            self.store.runs.finish(run_id, self.clock(), outcome, report.summary())
        log.info("run finished: %s", report.summary())
        return report

    def _perform(self, action: Action, report: RunReport) -> None:
        occ = action.occurrence
        now = self.clock()
        row = self.store.sessions.ensure(
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
        if action.kind == "invitation":
            meeting = self.ensure_meeting(occ, row, report)
            self._freeze(occ, row, "invitation", row.sequence, meeting, report, announce=True)
            return
        if action.kind == "reminder":
            meeting = self.ensure_meeting(occ, row, report)
            meeting, join_changed = self.reconcile_zoom(occ, self._reload(row), meeting, report)
            row = self._reload(row)
            if join_changed:
                # The join details subscribers hold are wrong: an update first, then the reminder.
                self._freeze(
                    occ, row, "update", row.sequence + 1, meeting, report, fields=["join"],
                    announce=True,
                )  # fmt: skip
                row = self._reload(row)
            self._freeze(occ, row, "reminder", row.sequence, meeting, report)
            return
        if action.kind == "update":
            meeting = self.ensure_meeting(occ, row, report)
            meeting, join_changed = self.reconcile_zoom(occ, self._reload(row), meeting, report)
            row = self._reload(row)
            fields = changed_fields(row.announced, occ) + (["join"] if join_changed else [])
            self._freeze(
                occ, row, "update", row.sequence + 1, meeting, report, fields=fields, announce=True
            )
            return
        if action.kind == "cancellation":
            self._cancel(occ, row, report)
            return
        raise NotImplementedError(f"action {action.kind} is not supported yet")

    # --- Zoom --------------------------------------------------------------------------------
    def ensure_meeting(
        self, occ: Occurrence, row: SessionRow, report: RunReport, *, adopt: bool = True
    ) -> Meeting:
        """The session's meeting: stored, adopted after a crash, or created — never two."""
        if row.meeting_id is not None and row.meeting_json is not None:
            return Meeting.from_json(row.meeting_json)
        tag = marker(occ.series.id, occ.date)
        if adopt and row.meeting_intent_at is not None:
            adopted = self._adopt(tag, row)
            if adopted is not None:
                report.meetings_adopted += 1
                return adopted
        self.store.sessions.record_meeting_intent(row.id, self.clock())
        try:
            meeting = self._zoom().create_meeting(meeting_request(occ))
        except LostCreateAnswer:
            log.warning("create answer lost for %s; looking for the meeting by its marker", occ.key)
            adopted = self._adopt(tag, row)
            if adopted is None:
                raise
            report.meetings_adopted += 1
            return adopted
        self.store.sessions.record_meeting(row.id, meeting.to_json(), self.clock())
        report.meetings_created += 1
        log.info("meeting %s created for %s", meeting.display_id, occ.key)
        return meeting

    def reconcile_zoom(
        self, occ: Occurrence, row: SessionRow, meeting: Meeting, report: RunReport
    ) -> tuple[Meeting, bool]:
        """Read the meeting back and make Zoom follow the plan; (meeting, join details changed)."""
        want = meeting_request(occ)
        try:
            live = self._zoom().get_meeting(meeting.id)
        except ZoomNotFound:
            self._alert(
                f"Zoom-Meeting für {occ.key} wurde in Zoom gelöscht",
                f"The Zoom meeting {meeting.display_id} of the session {occ.key} no longer exists "
                "in Zoom. session-bot created a new one as the plan says and informs subscribers "
                "of the new join details.",
            )
            self.store.sessions.clear_meeting(row.id, self.clock())
            fresh = self.ensure_meeting(occ, self._reload(row), report, adopt=False)
            self.store.sessions.clear_zoom_check(row.id)
            return fresh, True
        if _differs(live, want):
            log.warning("meeting %s drifted from the plan in Zoom; restoring", live.display_id)
            live = self._zoom().update_meeting(live.id, want)
            self._alert(
                f"Zoom-Meeting für {occ.key} wurde in Zoom geändert",
                f"The Zoom meeting {live.display_id} of {occ.key} differed from the plan "
                "(time, length or topic). session-bot restored what the plan says.",
            )
        joined = (live.join_url, live.password) != (meeting.join_url, meeting.password)
        self.store.sessions.record_meeting(row.id, live.to_json(), self.clock())
        self.store.sessions.clear_zoom_check(row.id)
        return live, joined

    def _recheck_flagged(self, report: RunReport) -> None:
        """Sessions whose meeting Zoom told us about (webhook): read back, restore, inform."""
        for key in self.store.sessions.to_check():
            row = self.store.sessions.get(key)
            if row is None:
                continue
            try:
                occ = self.occurrence_for(key)
            except PlanError:
                occ = None
            if (
                occ is None
                or occ.cancelled
                or row.meeting_json is None
                or occ.start <= self.clock()
            ):
                self.store.sessions.clear_zoom_check(row.id)
                continue
            meeting, join_changed = self.reconcile_zoom(
                occ, row, Meeting.from_json(row.meeting_json), report
            )
            invited = self._invited(row)
            if join_changed and invited:
                row = self._reload(row)
                self._freeze(
                    occ, row, "update", row.sequence + 1, meeting, report, fields=["join"],
                    announce=True,
                )  # fmt: skip
            report.done.append(f"zoom re-check for {key}")

    def _cancel(self, occ: Occurrence, row: SessionRow, report: RunReport) -> None:
        if row.meeting_id is not None:
            with contextlib.suppress(ZoomNotFound):  # already gone: what we wanted
                self._zoom().delete_meeting(row.meeting_id)
        if self._invited(row):
            self._freeze(occ, row, "cancellation", row.sequence + 1, None, report, announce=True)
        now = self.clock()
        self.store.sessions.clear_meeting(row.id, now)
        self.store.sessions.mark_cancelled(row.id, now)

    def _invited(self, row: SessionRow) -> bool:
        return any(m.kind == "invitation" for m in self.store.mailings.of_session(row.id))

    def _reload(self, row: SessionRow) -> SessionRow:
        fresh = self.store.sessions.get(row.key)
        assert fresh is not None
        return fresh

    def _alert(self, subject: str, body: str) -> None:
        log.warning("alert: %s", subject)
        if self.on_alert is not None:
            self.on_alert(subject, body)

    def _adopt(self, tag: str, row: SessionRow) -> Meeting | None:
        found = self._zoom().find_by_marker(tag)
        if found is None:
            return None
        try:
            meeting = self._zoom().get_meeting(found.id)
        except ZoomNotFound:
            return None
        self.store.sessions.record_meeting(row.id, meeting.to_json(), self.clock())
        log.info("adopted meeting %s for %s", meeting.display_id, row.key)
        return meeting

    # --- mail --------------------------------------------------------------------------------
    def occurrence_for(self, session_key: str) -> Occurrence:
        from session_bot.core.plan import find_occurrence

        series_id, _, day = session_key.partition("/")
        return find_occurrence(self.plan, dt.date.fromisoformat(day), series_id)

    def _freeze(
        self,
        occ: Occurrence,
        row: SessionRow,
        kind: str,
        sequence: int,
        meeting: Meeting | None,
        report: RunReport,
        *,
        fields: list[str] | None = None,
        announce: bool = False,
    ) -> None:
        """Render (every language, so a template error stops us first), then freeze the mailing."""
        now = self.clock()
        details: dict[str, Any] = {}
        if fields:
            details["changes"] = {lang: describe(fields, occ, lang) for lang in LANGUAGES}
        # The cancellation's reason comes from the plan, in each recipient's language.
        rendered = self._render_all(kind, occ, meeting, sequence, now, details)
        mailing_id, created = self.store.mailings.freeze(row.id, kind, sequence, now)
        if created:
            # The same run delivers it next: keep the rendering instead of doing it twice.
            self._rendered[mailing_id] = rendered
        if created and details:
            self.store.mailings.set_details(mailing_id, details)
        if announce:
            self.store.sessions.record_announcement(
                row.id, occ.announced_fingerprint(), sequence, now
            )
        report.mailings_frozen += int(created)

    def _render_all(
        self,
        kind: str,
        occ: Occurrence,
        meeting: Meeting | None,
        sequence: int,
        now: dt.datetime,
        details: dict[str, Any],
    ) -> dict[str, RenderedMailing]:
        renderer = self.renderer_for(occ.series)
        changes = details.get("changes", {})
        return {
            lang: renderer.render(
                kind,
                occ,
                meeting,
                sequence=sequence,
                now=now,
                language=lang,
                reason=details.get("reason"),
                changes=changes.get(lang),
            )
            for lang in LANGUAGES
        }

    def deliver(self, mailing: MailingRow) -> DeliveryReport:
        try:
            occ = self.occurrence_for(mailing.session_key)
        except PlanError as exc:
            log.error(
                "mailing %s: its session is gone from the plan (%s); not sent", mailing.id, exc
            )
            return DeliveryReport(failures=[str(exc)])
        row = self.store.sessions.get(mailing.session_key)
        meeting = Meeting.from_json(row.meeting_json) if row and row.meeting_json else None
        now = self.clock()
        details = self.store.mailings.details(mailing.id)
        if mailing.kind == "cancellation":
            meeting = None
        rendered = self._rendered.pop(mailing.id, None) or self._render_all(
            mailing.kind, occ, meeting, mailing.sequence, now, details
        )

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
            connections=self.connections,
            rate=self.rate,
            progress=self.progress,
            stop=self.stop,
        )
