"""The tokens in confirm and unsubscribe links: signed with the secret key, bound to a purpose.

A confirm token names the one request it was issued for: the request's moment and the
subscriber's standing then (when they last confirmed, unsubscribed or bounced), both in
microseconds since the epoch. A newer request retires older links, and so does any change of
standing: a link mailed before somebody unsubscribed, was removed or bounced never subscribes
them again.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from session_bot.core.tokens import make_token, read_token

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def micros(moment: dt.datetime | None) -> int:
    """``moment`` as whole microseconds since the epoch (exact, unlike a float timestamp);
    0 for None."""
    return (moment - _EPOCH) // _US if moment is not None else 0


@dataclass(frozen=True)
class ConfirmClaim:
    """What a valid confirm token stands for."""

    subscriber_id: int
    requested: int  # micros of the request
    standing: int  # micros of the standing the subscriber had when it was issued (0: none)


def confirm_token(
    secret: str,
    subscriber_id: int,
    requested_at: dt.datetime,
    standing: dt.datetime | None = None,
) -> str:
    return make_token(
        secret, "confirm", f"{subscriber_id}.{micros(requested_at)}.{micros(standing)}"
    )


def read_confirm_token(secret: str, token: str) -> ConfirmClaim | None:
    """What the token claims, or None for a token not ours."""
    subject = read_token(secret, "confirm", token)
    if subject is None:
        return None
    # Links mailed before the standing was part of the token name none: they still confirm a
    # request nothing has happened to since, and no other.
    parts = subject.split(".")
    if len(parts) == 2:
        parts.append("0")
    if len(parts) != 3 or not all(p.isdigit() for p in parts):
        return None
    sid, requested, standing = (int(p) for p in parts)
    return ConfirmClaim(sid, requested, standing)


def unsubscribe_token(secret: str, subscriber_id: int) -> str:
    """The same token ``wiring.unsubscribe_links`` puts into every bulk mail."""
    return make_token(secret, "unsubscribe", str(subscriber_id))


def read_unsubscribe_token(secret: str, token: str) -> int | None:
    subject = read_token(secret, "unsubscribe", token)
    return int(subject) if subject is not None and subject.isdigit() else None
