"""Subscriber addresses and names as people type them: checked, normalised, keyed and hashed.

The stored form of an address has its domain in lower-case ASCII (IDNA), so SMTP can carry it;
``email_key`` is what the list is unique on. An erased address survives only as ``forget_hash``,
a keyed hash that recognises it again without revealing it.
"""

from __future__ import annotations

import hashlib
import hmac

from email_validator import EmailNotValidError, validate_email

from session_bot.core.errors import InvalidAddress

NAME_MAX = 200
# Spreadsheets run cells starting with these as formulas (CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def normalise_address(raw: str) -> str:
    """The address as stored and mailed: syntax-checked, domain lower-case and in ASCII."""
    text = raw.strip()
    if not text:
        raise InvalidAddress("no e-mail address given")
    try:
        v = validate_email(text, check_deliverability=False, allow_smtputf8=False)
    except EmailNotValidError as exc:
        raise InvalidAddress(str(exc)) from None
    return str(v.ascii_email or v.normalized)


def normalise_or_raw(address: str) -> str:
    """The stored form if ``address`` is valid, else the text as given (to look up odd rows)."""
    try:
        return normalise_address(address)
    except InvalidAddress:
        return address.strip()


def looks_like_address(cell: str) -> bool:
    try:
        normalise_address(cell)
    except InvalidAddress:
        return False
    return True


def email_key(address: str) -> str:
    return address.lower()


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value``: recognisable with the secret key, useless without it."""
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def forget_hash(secret: str, address: str) -> str:
    return keyed_hash(secret, "forget", email_key(address))


def clean_name(name: str | None) -> str | None:
    """A name fit for a salutation: printable, single-spaced, at most ``NAME_MAX`` characters."""
    if name is None:
        return None
    # Control characters (NUL is refused by PostgreSQL) never belong in a salutation.
    text = " ".join("".join(ch for ch in name if ch.isprintable() or ch.isspace()).split())
    text = text[:NAME_MAX]
    if len(text) > 1 and text[0] == "'" and text[1] in FORMULA_START:
        text = text[1:]  # our own export's guard against spreadsheet formulas
    return text or None
