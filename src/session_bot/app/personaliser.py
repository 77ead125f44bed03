"""The message for one delivery row: a rendered mailing plus the recipient's own parts.

A plain value (the rendered languages, the recipient factory, the mailing): it pickles, so a
large mailing's helper processes receive it ready-made with their order instead of opening the
templates and rendering the mailing again, which cost a warm helper about a quarter of a second
before its first message (``app.ports.delivery``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from session_bot.app.ports.render import RenderedMail
from session_bot.core.recipient import Recipient
from session_bot.core.records import DeliveryRow, MailingRow

RecipientFor = Callable[[DeliveryRow, MailingRow], Recipient]
"""The addressee of one delivery row (name, language, unsubscribe links)."""


@dataclass(frozen=True)
class Personaliser:
    mailing: MailingRow
    rendered: Mapping[str, RenderedMail]  # by language
    fallback_language: str  # the series' language, for a row whose language was not rendered
    recipient_for: RecipientFor
    message_id_domain: str
    date: dt.datetime  # the Date header of every message of the mailing

    def __call__(self, row: DeliveryRow) -> bytes:
        lang = row.language if row.language in self.rendered else self.fallback_language
        m = self.mailing
        mid = f"<{m.id}.{row.id}.{m.kind}@{self.message_id_domain}>"
        recipient = self.recipient_for(row, m)
        return self.rendered[lang].personalise(recipient, message_id=mid, date=self.date)
