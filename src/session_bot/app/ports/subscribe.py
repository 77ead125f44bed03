"""What the consent mails need from the outside: the confirmation renderer and a mail sender.

``session_bot.adapters.render.Renderer`` renders the confirmation; any mail transport sends.
"""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from session_bot.app.ports.render import RenderedMail


class ConfirmationRenderer(Protocol):
    """Renders the double-opt-in mail (no unsubscribe headers, no calendar)."""

    def render_confirmation(
        self, *, language: str, confirm_url: str, series_title: str, now: dt.datetime
    ) -> RenderedMail: ...


class SendAnswer(Protocol):
    """The server's answer to one message."""

    @property
    def outcome(self) -> str:
        """``sent``, ``temporary`` or ``permanent``."""
        ...

    @property
    def code(self) -> int | None: ...

    @property
    def response(self) -> str: ...


class MailSender(Protocol):
    """Sends one finished message; raises ``MailError`` when the server cannot be used at all."""

    def send(self, sender: str, recipient: str, message: bytes) -> SendAnswer: ...

    def close(self) -> None: ...
