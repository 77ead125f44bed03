"""Signed, purpose-bound tokens for confirm/unsubscribe links (HMAC-SHA256 with the secret key)."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    """Strict: only the spelling ``_b64`` writes decodes. The lenient decoder ignores the unused
    low bits of the last character and skips stray characters, so one token would have many
    spellings that all verify."""
    data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    if _b64(data) != text:
        raise ValueError("not the canonical base64url spelling")
    return data


def make_token(secret: str, purpose: str, subject: str) -> str:
    """``subject`` (e.g. a subscriber id) signed for one ``purpose``; URL-safe, no padding."""
    body = _b64(subject.encode())
    sig = hmac.new(secret.encode(), f"{purpose}:{body}".encode(), hashlib.sha256).digest()[:16]
    return f"{body}.{_b64(sig)}"


def read_token(secret: str, purpose: str, token: str) -> str | None:
    """The subject of a valid token, or None for anything forged, altered or malformed."""
    body, _, sig = token.partition(".")
    if not body or not sig:
        return None
    want = hmac.new(secret.encode(), f"{purpose}:{body}".encode(), hashlib.sha256).digest()[:16]
    try:
        if not hmac.compare_digest(want, _unb64(sig)):
            return None
        return _unb64(body).decode()
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
