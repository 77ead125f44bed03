"""One session's mail as recipients see it, for proof-reading and test sends (`session-bot
preview`, `send --to`, the console's session page): with the stored meeting, or with marked
sample join details while the meeting does not exist yet (weeks ahead)."""

from __future__ import annotations

import datetime as dt

from session_bot.adapters.render.mailing import RenderedMailing
from session_bot.adapters.render.renderer import Renderer
from session_bot.app.ports.store import Sessions
from session_bot.core.meeting import Meeting
from session_bot.core.plan import Occurrence
from session_bot.core.records import SessionRow


def stored_meeting(sessions: Sessions, occ: Occurrence) -> Meeting | None:
    """The session's Zoom meeting as the store recorded it; None before it is created."""
    return _meeting(sessions.get(occ.key))


def render_session_mail(
    renderer: Renderer,
    sessions: Sessions,
    occ: Occurrence,
    kind: str,
    now: dt.datetime,
    *,
    language: str | None = None,
    test_send: bool = False,
) -> tuple[RenderedMailing, Meeting | None]:
    """The session's ``kind`` mail in ``language`` (default: the series'); (mail, its meeting,
    None when the mail shows sample join details)."""
    row = sessions.get(occ.key)
    meeting = _meeting(row)
    rendered = renderer.render(
        kind,
        occ,
        meeting,
        sequence=row.sequence if row else 0,
        now=now,
        language=language,
        reason=occ.content.reason if occ.content else None,
        test_send=test_send,
        sample_meeting=meeting is None,
    )
    return rendered, meeting


def _meeting(row: SessionRow | None) -> Meeting | None:
    return Meeting.from_json(row.meeting_json) if row and row.meeting_json else None
