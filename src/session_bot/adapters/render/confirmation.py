"""The double-opt-in mail rendered once per language and title; per request only its link.

Every subscribe request mails a confirmation that differs from the last only in the recipient
and the confirm link. The templates run once with the link as a personal slot (the one a
mailing's unsubscribe link takes: a confirmation has none of its own, having nobody subscribed
yet); a request then costs what ``RenderedMailing.personalise`` costs, and the decoded mail is
the one ``Renderer.render_confirmation`` renders from scratch.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading

from session_bot.adapters.render.mailing import RenderedMailing
from session_bot.adapters.render.personalise import token
from session_bot.adapters.render.renderer import Renderer
from session_bot.core.recipient import Recipient

_LINK = token("unsubscribe_url")
# A link as requests have them (nothing HTML escapes): the slotted templates must render it
# exactly as the templates do given it.
_SAMPLE = "https://example.invalid/confirm/MS4xNzM5.wmw8NfHM-yGs_S77q"


@dataclasses.dataclass(frozen=True)
class ConfirmationMail:
    """One confirmation: the pre-rendered mailing and this request's link (``RenderedMail``)."""

    mailing: RenderedMailing
    confirm_url: str

    def personalise(self, recipient: Recipient, *, message_id: str, date: dt.datetime) -> bytes:
        to = dataclasses.replace(recipient, unsubscribe_url=self.confirm_url)
        return self.mailing.personalise(to, message_id=message_id, date=date)


class ConfirmationMails:
    """``render_confirmation`` from pre-rendered mailings, one per (language, series title)."""

    def __init__(self, renderer: Renderer) -> None:
        self.renderer = renderer
        self._mailings: dict[tuple[str, str], RenderedMailing | None] = {}
        self._lock = threading.Lock()

    def render_confirmation(
        self, *, language: str, confirm_url: str, series_title: str, now: dt.datetime
    ) -> RenderedMailing | ConfirmationMail:
        key = (language, series_title)
        with self._lock:
            if key not in self._mailings:
                self._mailings[key] = self._prerender(language, series_title, now)
            mailing = self._mailings[key]
        if mailing is None:
            return self.renderer.render_confirmation(
                language=language, confirm_url=confirm_url, series_title=series_title, now=now
            )
        return ConfirmationMail(mailing, confirm_url)

    def _prerender(
        self, language: str, series_title: str, now: dt.datetime
    ) -> RenderedMailing | None:
        """The mailing with the link as a slot; None where the templates would not give the
        same mail that way (an organiser's templates that filter the link, put it in the
        subject or fill the slot with ``unsubscribe_url``): those render per request."""
        slotted = self.renderer.confirmation_parts(
            language=language, confirm_url=_LINK, series_title=series_title
        )
        direct = self.renderer.confirmation_parts(
            language=language, confirm_url=_SAMPLE, series_title=series_title
        )
        same = (
            slotted.subject == direct.subject
            and slotted.text.replace(_LINK, _SAMPLE) == direct.text
            and slotted.html.replace(_LINK, _SAMPLE) == direct.html
        )
        if not same:
            return None
        return self.renderer.render_confirmation(
            language=language, confirm_url=_LINK, series_title=series_title, now=now
        )
