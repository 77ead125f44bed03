"""The web consent workflow: a request, its confirmation through the mailed link, unsubscribing.

The consent proof German courts ask for (BGH I ZR 164/09) is recorded on the way: for the web
request and its confirmation the time, IP address, user agent, form URL and consent-text version.

Rules kept here:
- A request never downgrades anybody: re-submitting a confirmed address changes nothing and at
  most tells the address's owner once a day (listmonk#2987).
- Confirm links carry the request's moment, so a newer request retires older links, and the
  subscriber's standing at that moment, so unsubscribing, removal or a bounce retires them too:
  a link confirms only the request it was mailed for, never one its owner has since left.
- Rate limits per address and per client keep the form from being used to mail-bomb anybody.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from session_bot.app.addresses import (
    clean_name,
    email_key,
    forget_hash,
    keyed_hash,
    normalise_address,
)
from session_bot.app.ports.store import Store
from session_bot.app.subscriber_tokens import (
    ConfirmClaim,
    confirm_token,
    micros,
    read_confirm_token,
)
from session_bot.core.languages import LANGUAGES

STATUSES = ("pending", "confirmed", "unsubscribed", "bounced")
CONFIRM_VALID = dt.timedelta(days=30)
OWNER_NOTICE_EVERY = dt.timedelta(days=1)
# Statuses a new web request (or its confirmation) may turn into "pending" (or "confirmed").
_RENEWABLE = ("pending", "unsubscribed", "bounced")
# Every change of standing stamps one of these; a confirm link is bound to the latest.
_STANDING = ("confirmed_at", "unsubscribed_at", "bounced_at")


def _standing(row: dict[str, Any]) -> dt.datetime | None:
    """When the subscriber last confirmed, unsubscribed or bounced (None: never)."""
    return max((row[c] for c in _STANDING if row[c] is not None), default=None)


def _same_standing(row: dict[str, Any]) -> dict[str, Any]:
    """``only_if`` conditions that hold while nothing changed the row's standing."""
    return {c: row[c] for c in _STANDING}


def client_bucket(ip: str) -> str:
    """What the per-client limit counts: the address, or its /64 for IPv6 (one household)."""
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return ip
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network(f"{addr}/64", strict=False))
    return str(addr)


@dataclass(frozen=True)
class RequestProof:
    """Where a web request came from; stored as consent proof."""

    ip: str | None
    user_agent: str | None
    url: str | None

    def clipped(self) -> tuple[str | None, str | None, str | None]:
        return (
            self.ip[:64] if self.ip else None,
            self.user_agent[:500] if self.user_agent else None,
            self.url[:500] if self.url else None,
        )


@dataclass(frozen=True)
class RateLimits:
    """Subscribe requests allowed per address and per client, so the form cannot mail-bomb."""

    per_address: int = 3
    address_window: dt.timedelta = dt.timedelta(days=1)
    per_client: int = 10
    client_window: dt.timedelta = dt.timedelta(hours=1)


SubscribeAction = Literal[
    "send-confirmation", "notify-owner", "nothing", "address-limited", "client-limited"
]


@dataclass(frozen=True)
class SubscribeOutcome:
    """What a subscribe request led to; the web page looks the same for all but client-limited."""

    action: SubscribeAction
    email: str
    subscriber_id: int | None = None
    name: str | None = None
    language: str = "de"
    confirm_token: str | None = None


@dataclass(frozen=True)
class SubscribeRequest:
    """A web request, checked and ready to be recorded (``prepare_request``)."""

    email: str
    key: str
    name: str | None
    language: str
    consent: dict[str, Any]
    proof: RequestProof
    now: dt.datetime


def prepare_request(
    *,
    address: str,
    name: str | None,
    language: str,
    consent_version: str,
    proof: RequestProof,
    now: dt.datetime,
) -> SubscribeRequest:
    """What a web request for ``address`` records; raises ``InvalidAddress`` for a malformed
    one. Touches nothing: done before the transaction."""
    email = normalise_address(address)
    return SubscribeRequest(
        email=email,
        key=email_key(email),
        name=clean_name(name),
        language=language if language in LANGUAGES else "de",
        consent=_consent(proof, consent_version, now),
        proof=proof,
        now=now,
    )


def record_requests(
    store: Store,
    secret: str,
    requests: Sequence[SubscribeRequest],
    limits: RateLimits = RateLimits(),
) -> list[SubscribeOutcome]:
    """Record web requests in order, each seeing the ones before it, as if one came after the
    other; one outcome each.

    Their writes (the rate-limit counts, the subscriber rows) are one short transaction: all or
    none of them, and no wait behind the deliveries' writes in the database's busy handler.
    Several requests that arrived together share it, and its commit."""
    with store.transaction():
        return [
            _record_request(
                store, secret, r.email, r.key, r.name, r.language, r.consent, r.proof, r.now,
                limits,
            )
            for r in requests
        ]  # fmt: skip


def request_subscription(
    store: Store,
    secret: str,
    *,
    address: str,
    name: str | None,
    language: str,
    consent_version: str,
    proof: RequestProof,
    now: dt.datetime,
    limits: RateLimits = RateLimits(),
) -> SubscribeOutcome:
    """Record a web request for ``address`` (``prepare_request``, then ``record_requests``)."""
    request = prepare_request(
        address=address,
        name=name,
        language=language,
        consent_version=consent_version,
        proof=proof,
        now=now,
    )
    return record_requests(store, secret, [request], limits)[0]


def _record_request(
    store: Store,
    secret: str,
    email: str,
    key: str,
    name: str | None,
    language: str,
    consent: dict[str, Any],
    proof: RequestProof,
    now: dt.datetime,
    limits: RateLimits,
) -> SubscribeOutcome:
    if proof.ip and not store.counters.hit_rate_limit(
        "c:" + keyed_hash(secret, "rate-client", client_bucket(proof.ip))[:40],
        now,
        limits.client_window,
        limits.per_client,
    ):
        return SubscribeOutcome("client-limited", email)
    row = store.subscribers.get(key)
    if row is not None and row["status"] == "confirmed":
        return _confirmed_again(store, row, now)
    if not store.counters.hit_rate_limit(
        "a:" + keyed_hash(secret, "rate-address", key)[:40],
        now,
        limits.address_window,
        limits.per_address,
    ):
        return SubscribeOutcome("address-limited", email)
    if row is None:
        sid = store.subscribers.try_add(
            email, name=name, language=language, status="pending", now=now, **consent
        )
        if sid is not None:
            return SubscribeOutcome(
                "send-confirmation", email, sid, name, language, confirm_token(secret, sid, now)
            )
        row = store.subscribers.get(key)  # a concurrent request inserted it first
        if row is None or row["status"] == "confirmed":
            return SubscribeOutcome("nothing", email)
    changed = store.subscribers.update(
        row["id"],
        now,
        only_if={"status": _RENEWABLE, **_same_standing(row)},
        name=name,
        language=language,
        **consent,
    )
    if not changed:
        return SubscribeOutcome("nothing", email)
    token = confirm_token(secret, row["id"], now, _standing(row))
    return SubscribeOutcome("send-confirmation", row["email"], row["id"], name, language, token)


def _consent(proof: RequestProof, consent_version: str, now: dt.datetime) -> dict[str, Any]:
    ip, agent, url = proof.clipped()
    return {
        "requested_at": now,
        "request_ip": ip,
        "request_user_agent": agent,
        "request_url": url,
        "consent_version": consent_version[:64],
    }


def _confirmed_again(store: Store, row: dict[str, Any], now: dt.datetime) -> SubscribeOutcome:
    if store.subscribers.claim_owner_notice(row["id"], now, OWNER_NOTICE_EVERY):
        return SubscribeOutcome(
            "notify-owner", row["email"], row["id"], row["name"], row["language"]
        )
    return SubscribeOutcome("nothing", row["email"], row["id"])


TokenState = Literal["valid", "confirmed", "invalid", "expired"]


@dataclass(frozen=True)
class ConfirmState:
    """What a confirm link stands for. ``expired``: too old, or its request was closed by a later
    unsubscribe, removal or bounce; either way the person may subscribe again through the form."""

    state: TokenState
    subscriber_id: int | None = None
    email: str | None = None
    language: str | None = None
    late_deliveries: int = 0
    just_now: bool = False  # confirmed by this call (not before)


def inspect_confirm_token(store: Store, secret: str, token: str, now: dt.datetime) -> ConfirmState:
    """What a confirm link stands for, without changing anything (GET)."""
    return _judge(store, read_confirm_token(secret, token), now)[0]


def _judge(
    store: Store, claim: ConfirmClaim | None, now: dt.datetime
) -> tuple[ConfirmState, dict[str, Any] | None]:
    """The link's state and the row it was judged on."""
    if claim is None:
        return ConfirmState("invalid"), None
    row = store.subscribers.get_by_id(claim.subscriber_id)
    if row is None or row["requested_at"] is None or micros(row["requested_at"]) != claim.requested:
        # Unknown, erased, or retired by a newer request for the same address.
        return ConfirmState("invalid"), None
    base = {"subscriber_id": row["id"], "email": row["email"], "language": row["language"]}
    if row["status"] == "confirmed":
        return ConfirmState("confirmed", **base), row
    if micros(_standing(row)) != claim.standing:
        # Left (unsubscribed, removed, bounced) after the link was mailed: its request is closed.
        return ConfirmState("expired", **base), row
    if now - row["requested_at"] > CONFIRM_VALID:
        return ConfirmState("expired", **base), row
    return ConfirmState("valid", **base), row


def confirm(
    store: Store,
    secret: str,
    token: str,
    *,
    proof: RequestProof,
    now: dt.datetime,
    late_invitation: bool = True,
) -> ConfirmState:
    """Confirm the request a link stands for (POST). With ``late_invitation`` the new subscriber
    is added to the invitation mailings of upcoming sessions that already went out; the next
    run delivers them."""
    claim = read_confirm_token(secret, token)
    state, row = _judge(store, claim, now)
    if state.state != "valid" or state.subscriber_id is None or row is None:
        return state
    ip, agent, _ = proof.clipped()
    # Only the row as judged: an unsubscribe or a newer request meanwhile wins.
    changed = store.subscribers.update(
        state.subscriber_id,
        now,
        only_if={
            "status": _RENEWABLE,
            "requested_at": row["requested_at"],
            **_same_standing(row),
        },
        status="confirmed",
        confirmed_at=now,
        confirm_ip=ip,
        confirm_user_agent=agent,
        unsubscribed_at=None,
        import_file=None,
        imported_by=None,
        hard_bounces=0,
        bounced_at=None,
        owner_notice_at=None,
    )
    if not changed:  # a concurrent confirmation (double click) got there first
        return _judge(store, claim, now)[0]
    store.subscribers.unforget(forget_hash(secret, row["email"]))
    late = 0
    if late_invitation:
        for mailing_id in store.mailings.upcoming_invitations(now):
            late += int(store.mailings.add_delivery(mailing_id, state.subscriber_id))
    return ConfirmState(
        "confirmed",
        state.subscriber_id,
        row["email"],
        row["language"],
        late_deliveries=late,
        just_now=True,
    )


UnsubscribeResult = Literal["unsubscribed", "already", "unknown"]


def unsubscribe(store: Store, subscriber_id: int, now: dt.datetime) -> UnsubscribeResult:
    """Take the subscriber out: nothing more is delivered, even from mailings frozen before."""
    row = store.subscribers.get_by_id(subscriber_id)
    if row is None or row["status"] == "forgotten":
        return "unknown"
    if row["status"] == "unsubscribed":
        return "already"
    changed = store.subscribers.update(
        subscriber_id,
        now,
        only_if={"status": ("pending", "confirmed", "bounced")},
        status="unsubscribed",
        unsubscribed_at=now,
    )
    return "unsubscribed" if changed else "already"
