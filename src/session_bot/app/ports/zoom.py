"""What the reconcile runner needs of Zoom: a session's meeting, created, read back, restored,
deleted, and found again by its marker after a lost create answer.

``session_bot.adapters.zoom.ZoomClient`` implements it (against Zoom or the bundled sandbox).
"""

from __future__ import annotations

from typing import Protocol

from session_bot.core.meeting import Meeting, MeetingRequest


class MeetingRef(Protocol):
    """One entry of the host's meeting list: enough to read the whole meeting."""

    @property
    def id(self) -> int: ...


class ZoomMeetings(Protocol):
    """Scheduled meetings of the host. Errors are ``session_bot.core.errors.ZoomError``s."""

    def create_meeting(self, req: MeetingRequest) -> Meeting:
        """Create it; ``req.agenda`` opens with the session's marker. Never retried blindly: a
        lost answer raises ``LostCreateAnswer`` and the meeting may exist (find it by marker)."""
        ...

    def get_meeting(self, meeting_id: int) -> Meeting:
        """The meeting as Zoom has it now; ``ZoomNotFound`` if it was deleted."""
        ...

    def update_meeting(self, meeting_id: int, req: MeetingRequest) -> Meeting:
        """Make the meeting say what ``req`` says; the meeting as read back afterwards."""
        ...

    def delete_meeting(self, meeting_id: int) -> None:
        """Delete it; ``ZoomNotFound`` if it is already gone."""
        ...

    def find_by_marker(self, tag: str) -> MeetingRef | None:
        """The meeting whose agenda starts with ``tag`` (the first, if Zoom lists several)."""
        ...
