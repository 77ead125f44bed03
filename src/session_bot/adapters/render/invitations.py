"""Invitations, reminders, updates, cancellations and confirmations as complete mail messages.

``Renderer.render`` turns templates (Jinja2, StrictUndefined, autoescaped HTML), Babel dates and an
iCalendar attachment into a :class:`RenderedMailing` once per mailing and language; its
``personalise`` fills in one recipient (To, salutation, unsubscribe links, Message-ID, ATTENDEE)
by joining pre-encoded bytes (see ``personalise.py``), so a large mailing costs one render.

The work is done in the sibling modules:

- ``values.py``: ``MailConfig``, ``DkimConfig``, ``MeetingView``, ``MailParts`` and ``KINDS``
- ``templates.py``: the Jinja2 environment, its filters, template errors with file and line
- ``parts.py``: template context, subject, text, HTML, salutation and calendar of one mail
- ``mime.py``: the MIME layout as pre-encoded segments, and the DKIM signature
- ``mailing.py``: ``RenderedMailing`` and its per-recipient ``personalise``
- ``check.py``: the template check behind ``session-bot check``
- ``renderer.py``: ``Renderer``, the entry point

This module re-exports their public names for existing importers.
"""

from __future__ import annotations

from session_bot.adapters.render.mailing import RenderedMailing
from session_bot.adapters.render.renderer import Renderer
from session_bot.adapters.render.templates import default_templates_dir
from session_bot.adapters.render.values import (
    KINDS,
    SAMPLE_MEETING,
    DialInLike,
    DkimConfig,
    MailConfig,
    MailParts,
    MeetingLike,
    MeetingView,
)
from session_bot.core.languages import LANGUAGES
from session_bot.core.recipient import Recipient

__all__ = [
    "KINDS",
    "LANGUAGES",
    "SAMPLE_MEETING",
    "DialInLike",
    "DkimConfig",
    "MailConfig",
    "MailParts",
    "MeetingLike",
    "MeetingView",
    "Recipient",
    "RenderedMailing",
    "Renderer",
    "default_templates_dir",
]
