"""Header lines stay within RFC 5322's limits however long a name is (issue 14, finding 19).

RFC 5322 2.1.1: a line MUST NOT exceed 998 characters and SHOULD NOT exceed 78. Names fold as
RFC 2047 encoded-words, which split anywhere; they must read back unchanged.
"""

from __future__ import annotations

import datetime as dt
import email
import re
from email import policy
from email.header import decode_header, make_header

import pytest

from session_bot.adapters.render.personalise import format_address
from tests.support.invitations import NOW, meeting, occurrence, recipient, renderer

LONG_NAMES = [
    "A" * 3000,  # no place to fold at all
    "Verein für Bildung und Begegnung e. V. " * 80,
    "Zoë, Søren & „Freunde“ " * 40,
    'Karl "Kalle" O\'Neill, Jr. <kalle@example.org> ' * 10,
]


def head_lines(raw: bytes) -> list[bytes]:
    return raw.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def address(raw: bytes, header: str) -> tuple[str, str]:
    """(display name, address) of ``header`` by RFC 2047's rules (no space between words)."""
    value = email.message_from_bytes(raw, policy=policy.compat32)[header]
    value = re.sub(r"\r?\n(?=[ \t])", "", value)
    name, _, addr = value.rpartition("<")
    decoded = str(make_header(decode_header(name.strip())))
    if len(decoded) >= 2 and decoded[0] == decoded[-1] == '"':
        decoded = re.sub(r"\\(.)", r"\1", decoded[1:-1])
    return decoded, addr.rstrip(">").strip()


def clean(name: str) -> str:
    return " ".join(name.split())


@pytest.mark.parametrize("name", LONG_NAMES)
def test_a_long_organiser_and_subscriber_name_fold_to_78_character_lines(name: str) -> None:
    occ = occurrence(dt.date(2025, 2, 26), title="Willkommen " * 18)
    mailing = renderer(from_name=name).render(
        "invitation", occ, meeting(occ), sequence=0, now=NOW, language="de"
    )
    raw = mailing.personalise(recipient(name=name), message_id="<1@sb.example.org>", date=NOW)
    too_long = [line[:40] for line in head_lines(raw) if len(line) > 78]
    assert too_long == []
    assert address(raw, "From") == (clean(name), "kristina.neumann@bertelsmann-stiftung.de")
    assert address(raw, "To") == (clean(name), "anna@example.org")
    assert address(raw, "List-Id") == (clean("Willkommen " * 18), "willkommen.sb.example.org")


def test_a_long_address_gets_a_line_of_its_own() -> None:
    addr = ("x" * 60) + "@" + ("sub." * 10) + "example.org"
    value = format_address("Anna Müller-Lüdenscheidt", addr, "To")
    lines = f"To: {value}".split("\r\n")
    assert lines[-1] == f" <{addr}>"
    assert all(len(line) <= 78 for line in lines[:-1])


def test_an_address_longer_than_smtp_carries_is_refused() -> None:
    with pytest.raises(ValueError, match="not a plain mail address"):
        format_address("Anna", "a" * 250 + "@example.org")


def test_a_short_name_stays_on_one_line_as_before() -> None:
    assert format_address("Anna Müller", "anna@example.org") == (
        "=?utf-8?q?Anna_M=C3=BCller?= <anna@example.org>"
    )
    assert format_address("Anna Mueller", "anna@example.org") == "Anna Mueller <anna@example.org>"
    assert format_address("Mueller, Anna", "a@example.org") == '"Mueller, Anna" <a@example.org>'
