"""The two Zoom errors the ``session_bot.core.errors`` family does not have yet.

Both are user-facing ``SessionBotError``s and belong in ``session_bot.core.errors``; they live
here until that module takes them, so that the move is one file and one re-export.
"""

from __future__ import annotations

from session_bot.core.errors import ZoomAuthError, ZoomNotFound, ZoomUnavailable


class LostCreateAnswer(ZoomUnavailable):
    """A create whose answer never arrived (timeout, dropped connection, 5xx): it may exist.

    The caller must look for the meeting's marker (``find_by_marker``) before creating again.
    """


class ZoomUnknownUser(ZoomAuthError, ZoomNotFound):
    """``SESSION_BOT_ZOOM_USER`` names no user of the account (Zoom code 1001).

    Both a setting to fix (``ZoomAuthError``) and Zoom's 404/1001 (``ZoomNotFound``).
    """
