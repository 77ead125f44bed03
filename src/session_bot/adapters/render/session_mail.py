"""One session's mail as recipients see it, for proof-reading and test sends (`session-bot
preview`, `send --to`, the console's session page): with the stored meeting, or with marked
sample join details while the meeting does not exist yet (weeks ahead)."""

from __future__ import annotations

import datetime as dt

from session_bot.adapters.render.mailing import RenderedMailing
from session_bot.adapters.render.renderer import Renderer
from session_bot.app.ports.store import Sessions
from session_bot.core.changes import describe
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
    fields: list[str] | None = None,
) -> tuple[RenderedMailing, Meeting | None]:
    """The session's ``kind`` mail in ``language`` (default: the series'); (mail, its meeting,
    None when the mail shows sample join details).

    ``fields`` (a pending change's changed fields, empty for a cancellation): the update or
    cancellation exactly as the next run sends it, naming what changed, with the next calendar
    SEQUENCE, and a cancellation without join details."""
    row = sessions.get(occ.key)
    meeting = _meeting(row)
    sequence = row.sequence if row else 0
    changes: list[str] | None = None
    shown, sample = meeting, meeting is None
    if fields is not None:
        sequence += 1  # the runner's update and cancellation carry the session's sequence + 1
        lang = language or occ.series.language
        changes = describe(fields, occ, lang) if fields else None
        if kind == "cancellation":
            shown, sample = None, False
    rendered = renderer.render(
        kind,
        occ,
        shown,
        sequence=sequence,
        now=now,
        language=language,
        # None: the templates take the reason from the plan in the mail's language, as the
        # runner's cancellation does.
        reason=None,
        changes=changes,
        test_send=test_send,
        sample_meeting=sample,
    )
    return rendered, meeting


def _meeting(row: SessionRow | None) -> Meeting | None:
    return Meeting.from_json(row.meeting_json) if row and row.meeting_json else None
