"""A mailing rendered once per language, then filled in per recipient.

``personalise`` is the delivery hot path: per recipient it encodes a few short values and joins
pre-encoded bytes (see ``personalise.py``); everything else is done once in :func:`assemble`.
"""

from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass, field
from email.utils import format_datetime

from markupsafe import escape

from session_bot.adapters.render import ics
from session_bot.adapters.render.mime import dkim_sign, message_segments
from session_bot.adapters.render.personalise import (
    Segment,
    Slot,
    clean_line,
    fill_tokens,
    format_address,
    join,
    qp_encode,
    safe_header_value,
    token,
)
from session_bot.adapters.render.values import MailConfig, MailParts
from session_bot.app.ports.mail import NoLeadingDots, dotted
from session_bot.core.recipient import Recipient


@dataclass(frozen=True)
class Salutation:
    """The salutation rendered with and without a name, so a recipient costs no template run."""

    text_named: str  # contains token("name")
    text_anonymous: str
    html_named: str
    html_anonymous: str


@dataclass
class RenderedMailing:
    """One mailing in one language, rendered once; ``personalise`` per recipient."""

    kind: str
    language: str
    subject: str
    text: str  # generic parts for preview (anonymous greeting, preview unsubscribe link)
    html: str
    ics: bytes | None
    bulk: bool
    test_send: bool
    _config: MailConfig
    _segments: list[Segment]
    _salutation: Salutation
    _ics_halves: tuple[bytes, bytes] | None = None  # REQUEST: calendar around the ATTENDEE line
    _slots: frozenset[Slot] = field(default_factory=frozenset)
    # Filled on first use (each assignment is atomic: a renderer may serve several threads).
    _fixed: dict[str, bytes] | None = None
    _date_line: tuple[dt.datetime, str] | None = None
    _segments_dotted: bool | None = None  # whether a fixed part has a line beginning with "."

    def personalise(self, recipient: Recipient, *, message_id: str, date: dt.datetime) -> bytes:
        """The complete RFC 5322 message for ``recipient`` (CRLF line ends), DKIM-signed if set up;
        a ``NoLeadingDots`` when no line begins with ``.`` (nearly always: the per-recipient
        values are checked here, the fixed parts once)."""
        values = self._values(recipient, message_id, date)
        message = join(self._segments, values)
        parts = list(values.values())
        dkim = self._config.dkim
        if dkim:
            signature = dkim_sign(message, dkim)
            parts.append(signature)
            message = signature + message
        if self._fixed_dotted():
            return message
        for v in parts:
            if v.startswith(b".") or b"\n." in v:  # ``dotted``, inline: ten values a message
                return message
        return NoLeadingDots(message)

    def _fixed_dotted(self) -> bool:
        fixed = self._segments_dotted
        if fixed is None:
            fixed = self._segments_dotted = any(
                dotted(s) for s in self._segments if isinstance(s, bytes)
            )
        return fixed

    def preview_bytes(self, *, date: dt.datetime, message_id: str = "<preview@localhost>") -> bytes:
        """The message as an anonymous test recipient would get it (``preview --format eml``)."""
        preview_url = self._config.preview_unsubscribe_url
        to = Recipient("preview@example.invalid", None, self.language, preview_url)
        return self._fill(to, message_id, date)

    def _fill(self, recipient: Recipient, message_id: str, date: dt.datetime) -> bytes:
        return join(self._segments, self._values(recipient, message_id, date))

    def _values(
        self, recipient: Recipient, message_id: str, date: dt.datetime
    ) -> dict[Slot, bytes]:
        name = clean_line(recipient.name) if recipient.name else None
        url = recipient.unsubscribe_url
        if url is None and self.bulk and not self.test_send:
            raise ValueError(f"{self.kind} mail to {recipient.email} needs an unsubscribe link")
        shown_url = url or self._config.preview_unsubscribe_url
        fixed = self._fixed
        if fixed is None:
            fixed = self._fixed = _anonymous_values(self._salutation)
        values: dict[Slot, bytes] = {_HEADERS: self._headers(recipient, name, message_id, date)}
        sal = self._salutation
        for slot in self._slots:
            if slot.name == "salutation":
                if not name:
                    values[slot] = fixed[slot.part]
                elif slot.part == "text":
                    values[slot] = qp_encode(sal.text_named.replace(_NAME, name))
                else:
                    html = sal.html_named.replace(_NAME, str(escape(name)))
                    values[slot] = qp_encode(html)
            elif slot.name == "unsubscribe_url":
                values[slot] = qp_encode(
                    str(escape(shown_url)) if slot.part == "html" else shown_url
                )
            elif slot.part == "ics" and self._ics_halves:
                head, tail = self._ics_halves
                cal = head + ics.attendee_line(name, recipient.email) + tail
                values[slot] = base64.encodebytes(cal).replace(b"\n", b"\r\n")
        return values

    def _headers(self, r: Recipient, name: str | None, message_id: str, date: dt.datetime) -> bytes:
        if date.tzinfo is None:
            raise ValueError("Date header needs an aware datetime")
        mid = safe_header_value(
            message_id.strip().removeprefix("<").removesuffix(">"), "Message-ID"
        )
        # One moment for the whole mailing: formatted once, not per recipient.
        last = self._date_line
        if last is None or last[0] != date:
            last = self._date_line = (date, f"Date: {format_datetime(date)}\r\n")
        head = f"To: {format_address(name, r.email)}\r\n{last[1]}Message-ID: <{mid}>\r\n"
        if self.bulk and r.unsubscribe_url:
            links = f"<{safe_header_value(r.unsubscribe_url, 'unsubscribe URL')}>"
            if r.unsubscribe_mailto:
                links += f",\r\n <{safe_header_value(r.unsubscribe_mailto, 'unsubscribe mailto')}>"
            head += f"List-Unsubscribe: {links}\r\n{_ONE_CLICK}"
        return head.encode("utf-8")


_HEADERS = Slot("headers", "personal")
_NAME = token("name")
_ONE_CLICK = "List-Unsubscribe-Post: List-Unsubscribe=One-Click\r\n"


def _anonymous_values(sal: Salutation) -> dict[str, bytes]:
    """The salutation without a name, encoded once per mailing (per part)."""
    return {"text": qp_encode(sal.text_anonymous), "html": qp_encode(sal.html_anonymous)}


def assemble(
    config: MailConfig,
    kind: str,
    lang: str,
    parts: MailParts,
    salutation: Salutation,
    list_name: str,
    test_send: bool = False,
) -> RenderedMailing:
    """Encode ``parts`` (personal values still as tokens) into a mailing ready to personalise."""
    bulk = kind != "confirmation"
    segments, ics_halves = message_segments(config, parts, lang, bulk, list_name)
    # The preview reads as a subscriber without a name gets it: with the plain greeting.
    url = config.preview_unsubscribe_url
    text_values = {"salutation": salutation.text_anonymous, "unsubscribe_url": url}
    html_values = {"salutation": salutation.html_anonymous, "unsubscribe_url": str(escape(url))}
    generic_ics = parts.ics.replace(ics.ATTENDEE_SLOT, b"") if parts.ics else None
    return RenderedMailing(
        kind=kind,
        language=lang,
        subject=parts.subject,
        text=fill_tokens(parts.text, text_values),
        html=fill_tokens(parts.html, html_values),
        ics=generic_ics,
        bulk=bulk,
        test_send=test_send,
        _config=config,
        _segments=segments,
        _salutation=salutation,
        _ics_halves=ics_halves,
        _slots=frozenset(s for s in segments if isinstance(s, Slot)),
    )
