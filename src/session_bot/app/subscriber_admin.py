"""What the organiser does to single subscribers by hand (`session-bot subscribers …`): add one
whose consent they hold, remove, erase on request (GDPR Art. 17), show the consent proof.

An erased address survives only as a keyed hash, so it is never re-added without an explicit
flag; adding it with new consent lifts the block.
"""

from __future__ import annotations

import datetime as dt

from session_bot.app.addresses import (
    clean_name,
    email_key,
    forget_hash,
    normalise_address,
    normalise_or_raw,
)
from session_bot.app.double_opt_in import UnsubscribeResult, unsubscribe
from session_bot.app.ports.store import Store
from session_bot.core.errors import InvalidAddress, SessionBotError
from session_bot.core.languages import LANGUAGES


def add_subscriber(
    store: Store,
    secret: str,
    *,
    address: str,
    name: str | None,
    language: str,
    source: str,
    added_by: str,
    now: dt.datetime,
    readd_forgotten: bool = False,
) -> int:
    """Add one confirmed subscriber whose consent the owner holds (``source`` says where)."""
    try:
        email = normalise_address(address)
    except InvalidAddress as exc:
        raise SessionBotError(f"{address!r} is not a valid e-mail address: {exc}") from None
    if language not in LANGUAGES:
        raise SessionBotError(f"--language {language!r}: use one of {', '.join(LANGUAGES)}")
    existing = store.subscribers.get(email)
    if existing is not None:
        raise SessionBotError(
            f"{email} is already on the list ({existing['status']}); a subscriber who left must "
            "subscribe again through the form"
        )
    h = forget_hash(secret, email)
    when = store.subscribers.forgotten_at(h)
    if when is not None and not readd_forgotten:
        raise SessionBotError(
            f"{email} was erased on request (GDPR Art. 17) on {when:%Y-%m-%d}; add it again only "
            "with new consent, using --readd-forgotten"
        )
    sid = store.subscribers.add(
        email,
        name=clean_name(name),
        language=language,
        status="confirmed",
        now=now,
        confirmed_at=now,
        import_file=source[:500],
        imported_by=added_by[:200],
    )
    if when is not None:
        store.subscribers.unforget(h)
    return sid


def remove_subscriber(store: Store, address: str, now: dt.datetime) -> UnsubscribeResult:
    row = store.subscribers.get(normalise_or_raw(address))
    if row is None:
        return "unknown"
    return unsubscribe(store, row["id"], now)


def forget_subscriber(store: Store, secret: str, address: str, now: dt.datetime) -> bool:
    """Erase the address's personal data; keep only a keyed hash. False if it was unknown."""
    wanted = normalise_or_raw(address)
    row = store.subscribers.get(wanted)
    # Hash the stored form so the block matches what a later import normalises to.
    stored = row["email"] if row else wanted
    return store.subscribers.forget(email_key(stored), forget_hash(secret, stored), now)


PROOF_FIELDS = (
    ("email", "Address"),
    ("name", "Name"),
    ("language", "Language"),
    ("status", "Status"),
    ("created_at", "Added"),
    ("requested_at", "Requested at"),
    ("request_ip", "Request IP"),
    ("request_user_agent", "Request user agent"),
    ("request_url", "Form URL"),
    ("consent_version", "Consent text version"),
    ("confirmed_at", "Confirmed at"),
    ("confirm_ip", "Confirmation IP"),
    ("confirm_user_agent", "Confirmation user agent"),
    ("import_file", "Imported from"),
    ("imported_by", "Imported by"),
    ("unsubscribed_at", "Unsubscribed at"),
    ("owner_notice_at", "Last re-submission notice"),
    ("hard_bounces", "Hard bounces"),
    ("bounced_at", "Bounced at"),
)


def consent_proof(store: Store, secret: str, address: str) -> list[tuple[str, str]]:
    """Label/value lines of the stored consent proof; empty values left out."""
    wanted = normalise_or_raw(address)
    row = store.subscribers.get(wanted)
    if row is None:
        when = store.subscribers.forgotten_at(forget_hash(secret, wanted))
        if when is not None:
            return [("Address", "erased on request (GDPR Art. 17)"), ("Erased at", _fmt(when))]
        return []
    out = []
    for col, label in PROOF_FIELDS:
        value = row[col]
        if value is None or value == "" or (col == "hard_bounces" and not value):
            continue
        out.append((label, _fmt(value)))
    return out


def _fmt(value: object) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(value)
