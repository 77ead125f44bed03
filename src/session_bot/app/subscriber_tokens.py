"""The tokens in confirm and unsubscribe links: signed with the secret key, bound to a purpose.

A confirm token carries the request's moment (in microseconds since the epoch), so a newer
request for the same address retires the links of older ones.
"""

from __future__ import annotations

import datetime as dt

from session_bot.core.tokens import make_token, read_token

_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)


def micros(moment: dt.datetime) -> int:
    """``moment`` as whole microseconds since the epoch: exact, unlike a float timestamp."""
    return (moment - _EPOCH) // _US


def confirm_token(secret: str, subscriber_id: int, requested_at: dt.datetime) -> str:
    return make_token(secret, "confirm", f"{subscriber_id}.{micros(requested_at)}")


def read_confirm_token(secret: str, token: str) -> tuple[int, int] | None:
    """(subscriber id, request moment in microseconds), or None for a token not ours."""
    subject = read_token(secret, "confirm", token)
    if subject is None:
        return None
    sid, _, moment = subject.partition(".")
    if not sid.isdigit() or not moment.isdigit():
        return None
    return int(sid), int(moment)


def unsubscribe_token(secret: str, subscriber_id: int) -> str:
    """The same token ``wiring.unsubscribe_links`` puts into every bulk mail."""
    return make_token(secret, "unsubscribe", str(subscriber_id))


def read_unsubscribe_token(secret: str, token: str) -> int | None:
    subject = read_token(secret, "unsubscribe", token)
    return int(subject) if subject is not None and subject.isdigit() else None
