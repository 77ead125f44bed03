"""What the runner needs of the mail renderer: one mailing per kind and language, rendered once,
then personalised per recipient.

``session_bot.adapters.render.Renderer`` implements it (Jinja2 templates, MIME, .ics).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Protocol

from session_bot.core.meeting import Meeting
from session_bot.core.plan import Occurrence, Series
from session_bot.core.recipient import Recipient


class RenderedMail(Protocol):
    """One mailing in one language; the template work is done, only the recipient is missing."""

    def personalise(self, recipient: Recipient, *, message_id: str, date: dt.datetime) -> bytes:
        """The complete RFC 5322 message for ``recipient``."""
        ...


class MailRenderer(Protocol):
    """Renders the session mails of one series; a template error raises ``TemplateError``."""

    def render(
        self,
        kind: str,
        occ: Occurrence,
        meeting: Meeting | None,
        *,
        sequence: int,
        now: dt.datetime,
        language: str | None = None,
        reason: str | None = None,
        changes: list[str] | None = None,
    ) -> RenderedMail: ...


RendererFor = Callable[[Series], MailRenderer]
"""The renderer of a series (each series has its own sender, list and templates)."""
