"""A session's Zoom meeting: stored, adopted after a crash, or created — never two; read back and
restored when somebody changed it in Zoom; deleted when the session is cancelled.

The session row records the intent before the create call, and the meeting's agenda opens with
the session's marker: after a crash between "Zoom created it" and "we stored it", the meeting is
found by its marker and adopted instead of created again.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from session_bot.app.alert_texts import zoom_changed_text, zoom_deleted_text
from session_bot.app.ports.store import Store
from session_bot.app.ports.zoom import ZoomMeetings
from session_bot.app.run_report import RunReport
from session_bot.core.clock import Clock
from session_bot.core.errors import LostCreateAnswer, ZoomNotFound
from session_bot.core.meeting import Meeting, MeetingRequest, marker
from session_bot.core.plan import Occurrence
from session_bot.core.records import SessionRow

# The runner's log name: admins filter on it, and these lines were the runner's before the split.
log = logging.getLogger("session_bot.runner")

Alert = Callable[[str, str], None]
"""(subject, body) of a notice to the organiser."""


def meeting_request(occ: Occurrence) -> MeetingRequest:
    """What the plan says the session's meeting is; the agenda opens with the session's marker."""
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


def _differs(live: Meeting, want: MeetingRequest) -> bool:
    return (
        live.start_time.astimezone(dt.UTC) != want.start.astimezone(dt.UTC)
        or live.duration != want.duration
        or live.topic != want.topic
    )


class MeetingKeeper:
    """Keeps each session's Zoom meeting as the plan says, recording every step in the store."""

    def __init__(self, store: Store, zoom: ZoomMeetings | None, clock: Clock, alert: Alert) -> None:
        self._store = store
        self._zoom_client = zoom
        self._clock = clock
        self._alert = alert

    def ensure(
        self, occ: Occurrence, row: SessionRow, report: RunReport, *, adopt: bool = True
    ) -> Meeting:
        """The session's meeting: stored, adopted (after a crash, or found in Zoom by its marker
        when this database has none), or created — never two."""
        if row.meeting_id is not None and row.meeting_json is not None:
            return Meeting.from_json(row.meeting_json)
        tag = marker(occ.series.id, occ.date)
        # Not only after a crash: a fresh or restored database does not know the meetings that
        # an earlier one made, and Zoom does (one list call, once per session).
        if adopt:
            adopted = self._adopt(tag, row)
            if adopted is not None:
                report.meetings_adopted += 1
                return adopted
        self._store.sessions.record_meeting_intent(row.id, self._clock())
        try:
            meeting = self._zoom().create_meeting(meeting_request(occ))
        except LostCreateAnswer:
            log.warning("create answer lost for %s; looking for the meeting by its marker", occ.key)
            adopted = self._adopt(tag, row)
            if adopted is None:
                raise
            report.meetings_adopted += 1
            return adopted
        self._store.sessions.record_meeting(row.id, meeting.to_json(), self._clock())
        report.meetings_created += 1
        log.info("meeting %s created for %s", meeting.display_id, occ.key)
        return meeting

    def reconcile(
        self, occ: Occurrence, row: SessionRow, meeting: Meeting, report: RunReport
    ) -> tuple[Meeting, bool]:
        """Read the meeting back and make Zoom follow the plan; (meeting, join details changed)."""
        want = meeting_request(occ)
        try:
            live = self._zoom().get_meeting(meeting.id)
        except ZoomNotFound:
            return self._replace_deleted(occ, row, meeting, report), True
        if _differs(live, want):
            # The plan changed (Zoom still has what we recorded): Zoom follows, nobody is told.
            # Zoom itself changed since we recorded it: somebody worked there — restored, alerted.
            found = (live.start_time, live.duration, live.topic)
            changed_in_zoom = found != (meeting.start_time, meeting.duration, meeting.topic)
            if changed_in_zoom:
                log.warning("meeting %s was changed in Zoom; restoring the plan", live.display_id)
            else:
                log.info("meeting %s follows the plan's change for %s", live.display_id, occ.key)
            live = self._zoom().update_meeting(live.id, want)
            if changed_in_zoom:
                lang = occ.series.language
                self._alert(*zoom_changed_text(occ, live.display_id, found, lang))
        joined = (live.join_url, live.password) != (meeting.join_url, meeting.password)
        self._store.sessions.record_meeting(row.id, live.to_json(), self._clock())
        self._store.sessions.clear_zoom_check(row.id)
        return live, joined

    def delete(self, meeting_id: int) -> None:
        """Delete the meeting in Zoom; one that is already gone is what we wanted."""
        with contextlib.suppress(ZoomNotFound):
            self._zoom().delete_meeting(meeting_id)

    def _replace_deleted(
        self, occ: Occurrence, row: SessionRow, meeting: Meeting, report: RunReport
    ) -> Meeting:
        self._alert(*zoom_deleted_text(occ, meeting.display_id, occ.series.language))
        self._store.sessions.clear_meeting(row.id, self._clock())
        fresh = self._store.sessions.get(row.key)
        assert fresh is not None
        meeting = self.ensure(occ, fresh, report, adopt=False)
        self._store.sessions.clear_zoom_check(row.id)
        return meeting

    def _adopt(self, tag: str, row: SessionRow) -> Meeting | None:
        found = self._zoom().find_by_marker(tag)
        if found is None:
            return None
        try:
            meeting = self._zoom().get_meeting(found.id)
        except ZoomNotFound:
            return None
        self._store.sessions.record_meeting(row.id, meeting.to_json(), self._clock())
        log.info("adopted meeting %s for %s", meeting.display_id, row.key)
        return meeting

    def _zoom(self) -> ZoomMeetings:
        if (
            self._zoom_client is None
        ):  # a delivery-only runner (`session-bot deliver`) never needs Zoom
            raise RuntimeError("this runner was built without a Zoom client")
        return self._zoom_client
