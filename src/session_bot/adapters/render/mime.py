"""The MIME layout of a mailing as pre-encoded segments, and its DKIM signature.

The layout is written by hand rather than with ``email.message``: the text, HTML and calendar
parts stay split around their personal slots (see ``personalise.py``), so that filling in one
recipient is a join of bytes.
"""

from __future__ import annotations

import base64
import hashlib
from email import policy

from session_bot.adapters.render import ics
from session_bot.adapters.render.personalise import (
    LINE_MAX,
    Segment,
    Slot,
    clean_line,
    encoded_words,
    format_address,
    phrase_and_address,
    safe_header_value,
    split_slots,
)
from session_bot.adapters.render.values import DkimConfig, MailConfig, MailParts
from session_bot.core.errors import ConfigError

_DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip
_QP_HEAD = (
    'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
)


def message_segments(
    config: MailConfig, parts: MailParts, lang: str, bulk: bool, list_name: str
) -> tuple[list[Segment], tuple[bytes, bytes] | None]:
    """The whole message with its slots, and the calendar around its ATTENDEE slot (if any)."""
    # Boundaries from the content: the same mailing always gets the same bytes.
    digest = hashlib.sha256((parts.text + parts.html).encode() + (parts.ics or b"")).hexdigest()
    outer, inner = f"=_sb_{digest[:24]}_m", f"=_sb_{digest[:24]}_a"
    alternative = _alternative(parts, inner)
    ics_halves: tuple[bytes, bytes] | None = None
    if parts.ics is None:
        body = alternative
    else:
        calendar, ics_halves = _calendar_attachment(parts, parts.ics, outer)
        body = [
            f'Content-Type: multipart/mixed;\r\n boundary="{outer}"\r\n\r\n--{outer}\r\n'.encode(),
            *alternative,
            *calendar,
            f"\r\n--{outer}--\r\n".encode(),
        ]
    segments: list[Segment] = [
        Slot("headers", "personal"),
        static_headers(config, parts, lang, bulk, list_name),
        *body,
    ]
    return _merged(segments), ics_halves


def _merged(segments: list[Segment]) -> list[Segment]:
    """Adjacent bytes joined once here, so a recipient's message is a join of few pieces."""
    out: list[Segment] = []
    for s in segments:
        if isinstance(s, bytes) and out and isinstance(out[-1], bytes):
            out[-1] += s
        else:
            out.append(s)
    return out


def _alternative(parts: MailParts, boundary: str) -> list[Segment]:
    return [
        f'Content-Type: multipart/alternative;\r\n boundary="{boundary}"\r\n\r\n'.encode(),
        f"--{boundary}\r\n{_QP_HEAD.format('plain')}".encode(),
        *split_slots(parts.text, "text"),
        f"\r\n--{boundary}\r\n{_QP_HEAD.format('html')}".encode(),
        *split_slots(parts.html, "html"),
        f"\r\n--{boundary}--\r\n".encode(),
    ]


def _calendar_attachment(
    parts: MailParts, data: bytes, boundary: str
) -> tuple[list[Segment], tuple[bytes, bytes] | None]:
    fname, method = parts.calendar_filename, parts.calendar_method
    ics_halves: tuple[bytes, bytes] | None = None
    if ics.ATTENDEE_SLOT in data:
        head, tail = data.split(ics.ATTENDEE_SLOT)
        ics_halves = (head, tail)
        cal: Segment = Slot("ics", "attendee")
    else:
        cal = base64.encodebytes(data).replace(b"\n", b"\r\n")
    head_bytes = (
        f"\r\n--{boundary}\r\n"
        f'Content-Type: text/calendar; charset="utf-8"; method={method};\r\n name="{fname}"\r\n'
        f'Content-Disposition: attachment; filename="{fname}"\r\n'
        "Content-Transfer-Encoding: base64\r\n\r\n"
    ).encode()
    return [head_bytes, cal], ics_halves


def static_headers(
    config: MailConfig, parts: MailParts, lang: str, bulk: bool, list_name: str
) -> bytes:
    """The headers every recipient of the mailing shares."""
    c = config
    out = [
        f"From: {format_address(c.from_name, c.from_email, 'From')}\r\n",
        f"Reply-To: {format_address(None, c.reply_to, 'Reply-To')}\r\n" if c.reply_to else "",
        _fold_encoded("Subject", clean_line(parts.subject)),
        "MIME-Version: 1.0\r\n",
        f"Content-Language: {lang}\r\n",
    ]
    if bulk:
        list_id = safe_header_value(c.list_id, "List-Id")
        name = clean_line(list_name)
        line = f"List-Id: {_phrase(name)} <{list_id}>"
        if not name.isascii() or len(line) > LINE_MAX:
            line = f"List-Id: {phrase_and_address('List-Id', name, list_id)}"
        out.append(line + "\r\n")
    return "".join(out).encode("utf-8")


def _fold_encoded(name: str, value: str) -> str:
    """A folded header line, RFC 2047-encoded when not ASCII (policy.SMTP leaves short ones raw)."""
    if value.isascii():
        return str(policy.SMTP.fold(name, value))
    words = encoded_words(value, LINE_MAX - len(name) - 2)
    return f"{name}: " + "\r\n ".join(words) + "\r\n"


def _phrase(name: str) -> str:
    name = clean_line(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}"'


def dkim_sign(message: bytes, cfg: DkimConfig) -> bytes:
    """The ``DKIM-Signature`` header line(s) to put in front of ``message``."""
    import dkim  # optional dependency (extra "dkim"); only needed when a key is configured

    head = message.split(b"\r\n\r\n", 1)[0].lower()
    present = [h for h in _DKIM_HEADERS if head.startswith(h + b":") or b"\r\n" + h + b":" in head]
    try:
        return bytes(
            dkim.sign(
                message,
                cfg.selector.encode(),
                cfg.domain.encode(),
                cfg.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=present,
                linesep=b"\r\n",
            )
        )
    except dkim.DKIMException as exc:
        raise ConfigError(
            f"DKIM signing failed ({exc}); SESSION_BOT_DKIM_KEY_FILE must be an unencrypted PEM "
            "RSA private key, SESSION_BOT_DKIM_SELECTOR and SESSION_BOT_DKIM_DOMAIN plain names"
        ) from None
