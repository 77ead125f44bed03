"""One addressee of a mail, as the use cases hand it to the renderer."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    language: str
    unsubscribe_url: str | None = None  # https…/unsubscribe/<token>; None for confirmation/test
    unsubscribe_mailto: str | None = None  # mailto:…?subject=unsubscribe-<token>
