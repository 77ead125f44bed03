"""Zoom REST client: Server-to-Server OAuth, typed meetings, retries as policy.

The only package that speaks HTTP to Zoom. One seam per module:

- ``client``: ``ZoomClient``, the meeting calls, each stating the status it expects.
- ``oauth``: the access token, fetched once and shared through a ``TokenCache``.
- ``transport``: the ``requests`` session and ``RetryPolicy`` (honouring ``Retry-After``); the
  one place where ``requests`` exceptions and exhausted retries become our errors.
- ``answers``: the one place where Zoom's error answers become our errors.
- ``errors``: ``LostCreateAnswer`` and ``ZoomUnknownUser``.

The meeting values (``Meeting``, ``DialIn``, ``MeetingRequest``, ``marker``) are pure and live in
``session_bot.core.meeting``. Every module logs as ``session_bot.zoom``.

This module re-exports the names importers use, so ``from session_bot.adapters.zoom import …``
keeps working; new code imports from the module it needs.
"""

from __future__ import annotations

from session_bot.adapters.zoom.answers import SCOPES
from session_bot.adapters.zoom.client import AGENDA_MAX, TOPIC_MAX, MeetingSummary, ZoomClient
from session_bot.adapters.zoom.oauth import TOKEN_MARGIN, MemoryTokenCache, TokenCache
from session_bot.adapters.zoom.transport import RetryPolicy
from session_bot.core.errors import LostCreateAnswer, ZoomUnknownUser
from session_bot.core.meeting import (
    MARKER_PREFIX,
    DialIn,
    Meeting,
    MeetingRequest,
    group_meeting_id,
    marker,
    parse_marker,
)

__all__ = [
    "AGENDA_MAX",
    "MARKER_PREFIX",
    "SCOPES",
    "TOKEN_MARGIN",
    "TOPIC_MAX",
    "DialIn",
    "LostCreateAnswer",
    "Meeting",
    "MeetingRequest",
    "MeetingSummary",
    "MemoryTokenCache",
    "RetryPolicy",
    "TokenCache",
    "ZoomClient",
    "ZoomUnknownUser",
    "group_meeting_id",
    "marker",
    "parse_marker",
]
