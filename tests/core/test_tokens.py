"""Link tokens verify in exactly one spelling (issue 14, finding 18)."""

from __future__ import annotations

import string
from collections.abc import Callable

import pytest

from session_bot.core.tokens import make_token, read_token

SECRET = "test-secret-key-0123456789abcdef"
B64URL = string.ascii_letters + string.digits + "-_"


def test_a_token_reads_back_its_subject() -> None:
    token = make_token(SECRET, "confirm", "42.1739437200000000")
    assert read_token(SECRET, "confirm", token) == "42.1739437200000000"
    assert read_token(SECRET, "unsubscribe", token) is None
    assert read_token("another-secret-0123456789abcdef", "confirm", token) is None


@pytest.mark.parametrize("subject", ["7", "42", "1234567.1739437200000000.0"])
def test_only_the_canonical_spelling_of_the_last_character_verifies(subject: str) -> None:
    token = make_token(SECRET, "unsubscribe", subject)
    body, sig = token.split(".")
    # 16 signature bytes are 22 characters carrying 132 bits: the last one has 4 unused bits,
    # which a lenient decoder ignores, so 16 spellings would verify.
    accepted = [
        c for c in B64URL if read_token(SECRET, "unsubscribe", f"{body}.{sig[:-1]}{c}") is not None
    ]
    assert accepted == [sig[-1]]
    last_body = [
        c for c in B64URL if read_token(SECRET, "unsubscribe", f"{body[:-1]}{c}.{sig}") is not None
    ]
    assert last_body == [body[-1]]


@pytest.mark.parametrize(
    "spoil",
    [
        lambda s: s[:5] + "!" + s[5:],  # a character the lenient decoder skips
        lambda s: s + "==",
        lambda s: s + "=",
        lambda s: s[:4] + "\n" + s[4:],
        lambda s: s.replace("-", "+").replace("_", "/"),
    ],
)
def test_stray_characters_and_padding_do_not_verify(spoil: Callable[[str], str]) -> None:
    token = make_token(SECRET, "confirm", "1.1739437200000000.0")
    body, sig = token.split(".")
    spelled = f"{body}.{spoil(sig)}"
    if spelled != token:
        assert read_token(SECRET, "confirm", spelled) is None
