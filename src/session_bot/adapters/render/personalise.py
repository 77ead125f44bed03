"""Pre-encoded messages with slots, filled per recipient by joining bytes.

A mailing is rendered once; its text and HTML are quoted-printable encoded with every personal
value (salutation, unsubscribe link) left as a :class:`Slot`. Each encoded run ends at a line
boundary (a soft line break ``=\\r\\n`` where the text itself does not break), and so does every
encoded value, so QP never splits inside an inserted value and the decoded part is exactly the
template rendered with that value.
"""

from __future__ import annotations

import base64
import binascii
import re
from email.utils import formataddr
from typing import NamedTuple

# Private-use code points: never produced by templates or plan text, survive HTML autoescape.
_OPEN, _CLOSE = "\U000f0000", "\U000f0001"
_TOKEN_RE = re.compile(f"{_OPEN}([a-z_]+){_CLOSE}")
_UNSAFE_LINE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029\U000f0000\U000f0001]")
_ADDR_SPEC = re.compile(r"^[^\s<>()\[\],;:\"\\@]+@[^\s<>()\[\],;:\"\\@]+$")


def token(name: str) -> str:
    """The stand-in a template outputs for the personal value ``name``."""
    return f"{_OPEN}{name}{_CLOSE}"


def clean_line(value: str) -> str:
    """One line of text: CR, LF and other control characters become spaces (no header injection)."""
    return " ".join(_UNSAFE_LINE.sub(" ", value).split())


def safe_header_value(value: str, what: str) -> str:
    """A value (URL, Message-ID) that must go into a header verbatim; refuses anything odd."""
    if not value or not value.isprintable() or " " in value or "<" in value or ">" in value:
        raise ValueError(f"{what} {value!r} is not usable in a mail header")
    return value


class Slot(NamedTuple):
    """A place in a pre-encoded message that gets one recipient's value (a tuple: hashed in C,
    ten times a message)."""

    part: str  # "headers", "text", "html" or "ics"
    name: str


Segment = bytes | Slot


def qp_encode(text: str) -> bytes:
    """Quoted-printable with CRLF, starting and ending at a line boundary.

    binascii's C encoder, not ``email.quoprimime`` (a Python loop per character): this runs per
    recipient. Fed LF line ends it writes LF ones (soft breaks too), turned into CRLF after."""
    if not text:
        return b""
    data = text.encode("utf-8")
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n")
    encoded = binascii.b2a_qp(data, istext=True).replace(b"\n", b"\r\n")
    if not encoded.endswith(b"\r\n"):
        encoded += b"=\r\n"  # soft break: the next run or value starts its own encoded line
    return encoded


def split_slots(rendered: str, part: str) -> list[Segment]:
    """QP-encode ``rendered``, turning every :func:`token` into a :class:`Slot` of ``part``."""
    segments: list[Segment] = []
    pos = 0
    for m in _TOKEN_RE.finditer(rendered):
        segments.append(qp_encode(rendered[pos : m.start()]))
        segments.append(Slot(part, m.group(1)))
        pos = m.end()
    segments.append(qp_encode(rendered[pos:]))
    return [s for s in segments if s != b""]


def slot_names(rendered: str) -> set[str]:
    return set(_TOKEN_RE.findall(rendered))


def fill_tokens(rendered: str, values: dict[str, str]) -> str:
    """Replace tokens by plain values (for previews)."""
    return _TOKEN_RE.sub(lambda m: values[m.group(1)], rendered)


# RFC 5322 2.1.1: lines SHOULD stay within 78 characters and MUST within 998.
LINE_MAX = 78
# RFC 5321 4.5.3.1.3: a path holds at most 256 octets, the address without its brackets 254.
_ADDRESS_MAX = 254


def format_address(name: str | None, email: str, header: str = "To") -> str:
    """An address header value, folded with CRLF so no line of ``header`` exceeds 78 characters
    (the address itself, at most 254, gets a line of its own if need be)."""
    if len(email) > _ADDRESS_MAX or not _ADDR_SPEC.match(email):
        raise ValueError(f"{email!r} is not a plain mail address")
    name = clean_line(name or "")
    if not name:
        return email
    if name.isascii():
        # The usual case, per recipient: a short name fits one line as it is.
        plain = formataddr((name, email))
        if len(header) + 2 + len(plain) <= LINE_MAX:
            return plain
    return phrase_and_address(header, name, email)


def phrase_and_address(header: str, phrase: str, address: str) -> str:
    """``phrase <address>`` with the phrase as RFC 2047 encoded-words folded at 78: they split
    anywhere, where a long unbroken name would otherwise stay one overlong line."""
    words = encoded_words(phrase, LINE_MAX - len(header) - 2)
    used = len(words[-1]) + (len(header) + 2 if len(words) == 1 else 1)
    fold = " " if used + len(address) + 3 <= LINE_MAX else "\r\n "
    return "\r\n ".join(words) + f"{fold}<{address}>"


# An encoded-word is at most 75 characters (RFC 2047 2); a folded line (" " + word) at most 78.
_WORD_MAX = 75
_WORD_FRAME = len("=?utf-8?q??=")
# RFC 2047 5(3): in a phrase only letters, digits and !*+-/ stand for themselves; space is "_".
_Q_SAFE = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789!*+-/")
_Q = ["_" if b == 0x20 else chr(b) if b in _Q_SAFE else f"={b:02X}" for b in range(256)]


def encoded_words(text: str, first_room: int = LINE_MAX) -> list[str]:
    """``text`` as RFC 2047 encoded-words of UTF-8, one per folded line (the first at most
    ``first_room`` characters), never splitting a character; "Q" or "B", whichever is shorter,
    as ``email.header.Header`` chooses. Written out rather than with Header: a To header with
    such a name is built per recipient, and Header costs ~100 µs where this costs a few."""
    data = text.encode("utf-8")
    q = "".join([_Q[b] for b in data])
    if len(q) <= (len(data) + 2) // 3 * 4:
        return _q_words(text, q, first_room)
    words = []
    start = 0
    room = min(_WORD_MAX, first_room) - _WORD_FRAME
    while start < len(data):
        end = min(start + room // 4 * 3, len(data))
        room = _WORD_MAX - _WORD_FRAME
        while end < len(data) and data[end] & 0xC0 == 0x80:
            end -= 1  # a UTF-8 continuation byte: the character starts before it
        words.append(f"=?utf-8?b?{base64.b64encode(data[start:end]).decode('ascii')}?=")
        start = end
    return words or ['""']


def _q_words(text: str, q: str, first_room: int) -> list[str]:
    room = min(_WORD_MAX, first_room) - _WORD_FRAME
    if len(q) <= room:
        return [f"=?utf-8?q?{q}?="]  # the usual case: one word
    words, word = [], ""
    for char in text:
        piece = "".join([_Q[b] for b in char.encode("utf-8")])
        if word and len(word) + len(piece) > room:
            words.append(f"=?utf-8?q?{word}?=")
            word, room = "", _WORD_MAX - _WORD_FRAME
        word += piece
    return [*words, f"=?utf-8?q?{word}?="]


def join(segments: list[Segment], values: dict[Slot, bytes]) -> bytes:
    """Fill every slot of ``segments`` from ``values``."""
    return b"".join([values[s] if type(s) is Slot else s for s in segments])  # type: ignore[misc]
