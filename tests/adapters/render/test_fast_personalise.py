"""The per-recipient fast path (issue 18): headers written by hand, no ``email.header`` per
recipient. One rendering, many recipients: each message parses with the email package and says
its own recipient, name, unsubscribe link and Message-ID; names that need RFC 2047 decode back
exactly, whatever their length or script, with no line over 78 characters."""

from __future__ import annotations

import base64
import datetime as dt
import email
import re
from email import policy
from email.header import decode_header, make_header

import pytest

from session_bot.adapters.render.personalise import encoded_words, qp_encode
from session_bot.app.ports.mail import NoLeadingDots
from tests.support.invitations import NOW, meeting, occurrence, parse, recipient, renderer

NAMES = [
    "Anna Müller",
    "Jürgen Groß-Übel von und zu Lüdenscheidt-Überlingen-Hohenzollern-Sigmaringen",
    "李小龙 " * 12,
    "Zoë 🎉 Søren",
    "Ünïcödé" * 20,
    "Plain Ascii But Really Quite Long Name Going On And On Past The Line Limit",
]


def _display_name(raw: bytes) -> str:
    head = email.message_from_bytes(raw, policy=policy.compat32)["To"]
    head = re.sub(r"\r?\n(?=[ \t])", "", head)
    name = head.rpartition("<")[0].strip()
    return str(make_header(decode_header(name)))


def test_each_recipient_gets_their_own_headers_and_links() -> None:
    occ = occurrence(dt.date(2025, 2, 26))
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    for i, name in enumerate(NAMES):
        r = recipient(name, f"person{i}@example.org", token=f"tok-{i}")
        raw = mailing.personalise(r, message_id=f"<{i}.invitation@sb.example.org>", date=NOW)
        msg = parse(raw)
        assert msg["To"].addresses[0].addr_spec == f"person{i}@example.org"
        assert _display_name(raw) == " ".join(name.split())
        assert msg["Message-ID"] == f"<{i}.invitation@sb.example.org>"
        assert msg["List-Unsubscribe"].startswith(f"<https://sb.example.org/unsubscribe/tok-{i}>")
        assert msg["Date"].datetime == NOW
        text = msg.get_body(("plain",))
        assert text is not None
        assert f"https://sb.example.org/unsubscribe/tok-{i}" in str(text.get_content())
        head = raw.split(b"\r\n\r\n", 1)[0]
        assert all(len(line) <= 78 for line in head.split(b"\r\n")), name


@pytest.mark.parametrize("text", ["Anna Müller", "李" * 40, "🎉" * 30, "a" * 200, "Zoë & Co"])
@pytest.mark.parametrize("room", [78 - len("To: "), 78 - len("List-Id: ")])
def test_encoded_words_fit_and_decode(text: str, room: int) -> None:
    words = encoded_words(text, room)
    assert len(words[0]) <= room and all(len(w) <= 75 for w in words)
    assert str(make_header(decode_header(" ".join(words)))) == text
    for w in words:  # no word ends inside a character
        if w.startswith("=?utf-8?b?"):
            base64.b64decode(w[10:-2]).decode("utf-8")


def test_quoted_printable_values_keep_their_text() -> None:
    import quopri

    for value in ("https://sb.example.org/unsubscribe/" + "x" * 120, "Hallo Jürgen =,  \n"):
        encoded = qp_encode(value)
        assert encoded.endswith(b"\r\n")
        assert all(len(line) <= 76 for line in encoded.split(b"\r\n"))
        decoded = quopri.decodestring(encoded.replace(b"\r\n", b"\n")).decode()
        assert decoded == value


def _leading_dot_name() -> str:
    """A name whose salutation's quoted-printable line breaks right before its ".", so that a
    line of the message begins with a dot."""
    occ = occurrence(dt.date(2025, 2, 26))
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    for n in range(1, 200):
        name = "A" * n + ".Z"
        raw = mailing.personalise(recipient(name, "a@example.org"), message_id="<1@x>", date=NOW)
        if b"\n." in raw:
            return name
    raise AssertionError("no name puts a dot at the start of a line")


def test_a_message_says_whether_smtp_must_dot_stuff_it() -> None:
    """The SMTP transport skips its search for lines to dot-stuff only for a ``NoLeadingDots``;
    a recipient whose values put a dot at a line's start gets plain bytes (and is stuffed)."""
    occ = occurrence(dt.date(2025, 2, 26))
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    for i, name in enumerate(NAMES):
        raw = mailing.personalise(
            recipient(name, f"p{i}@example.org"), message_id="<1@x>", date=NOW
        )
        assert type(raw) is NoLeadingDots and not re.search(rb"(^|\n)\.", raw), name
    dotty = _leading_dot_name()
    raw = mailing.personalise(recipient(dotty, "d@example.org"), message_id="<2@x>", date=NOW)
    assert type(raw) is bytes and b"\n." in raw
    text = parse(raw).get_body(("plain",))
    assert text is not None and dotty in str(text.get_content())
