"""Subscribers: double opt-in with consent proof, unsubscribe, CSV import/export, forgetting.

The consent proof German courts ask for (BGH I ZR 164/09) is kept per subscriber: for the web
request and its confirmation the time, IP address, user agent, form URL and consent-text version;
for an import the file and who imported it. Nothing here reads the clock or the environment.

Rules the subscriber use cases keep:
- A request never downgrades anybody: re-submitting a confirmed address changes nothing and at
  most tells the address's owner once a day (listmonk#2987).
- Confirm links carry the request's moment, so a newer request retires older links.
- An unsubscribed or forgotten address is never re-added by an import without an explicit flag.

The work is done in the sibling modules; this one re-exports their public names, so importers
(the CLI, the web pages, tests) need not know the layout:

- ``addresses``: address syntax and normal form, keys, keyed hashes, names
- ``subscriber_tokens``: the signed tokens of confirm and unsubscribe links
- ``double_opt_in``: the web request, its confirmation, unsubscribing, rate limits
- ``consent_mails``: the confirmation mail and the "already subscribed" notice
- ``subscriber_admin``: add, remove, forget one subscriber by hand; the consent proof
- ``subscriber_csv`` (with ``subscriber_csv_parse``): CSV import and export
"""

from __future__ import annotations

from session_bot.app.addresses import (
    email_key,
    forget_hash,
    keyed_hash,
    normalise_address,
)
from session_bot.app.consent_mails import (
    ConsentMailSetup,
    mail_confirmation,
    owner_notice,
    owner_notice_message,
    send_confirmation,
)
from session_bot.app.double_opt_in import (
    CONFIRM_VALID,
    OWNER_NOTICE_EVERY,
    STATUSES,
    ConfirmState,
    RateLimits,
    RequestProof,
    SubscribeAction,
    SubscribeOutcome,
    SubscribeRequest,
    TokenState,
    UnsubscribeResult,
    client_bucket,
    confirm,
    inspect_confirm_token,
    prepare_request,
    record_requests,
    request_subscription,
    unsubscribe,
)
from session_bot.app.subscriber_admin import (
    PROOF_FIELDS,
    add_subscriber,
    consent_proof,
    forget_subscriber,
    remove_subscriber,
)
from session_bot.app.subscriber_csv import EXPORT_COLUMNS, ImportReport, export_csv, import_csv
from session_bot.app.subscriber_csv_parse import Parsed, Rejected, parse_csv
from session_bot.app.subscriber_tokens import (
    confirm_token,
    read_unsubscribe_token,
    unsubscribe_token,
)
from session_bot.core.errors import InvalidAddress
from session_bot.core.languages import LANGUAGES

__all__ = [
    "CONFIRM_VALID",
    "EXPORT_COLUMNS",
    "LANGUAGES",
    "OWNER_NOTICE_EVERY",
    "PROOF_FIELDS",
    "STATUSES",
    "ConfirmState",
    "ConsentMailSetup",
    "ImportReport",
    "InvalidAddress",
    "Parsed",
    "RateLimits",
    "Rejected",
    "RequestProof",
    "SubscribeAction",
    "SubscribeOutcome",
    "SubscribeRequest",
    "TokenState",
    "UnsubscribeResult",
    "add_subscriber",
    "client_bucket",
    "confirm",
    "confirm_token",
    "consent_proof",
    "email_key",
    "export_csv",
    "forget_hash",
    "forget_subscriber",
    "import_csv",
    "inspect_confirm_token",
    "keyed_hash",
    "mail_confirmation",
    "normalise_address",
    "owner_notice",
    "owner_notice_message",
    "parse_csv",
    "prepare_request",
    "read_unsubscribe_token",
    "record_requests",
    "remove_subscriber",
    "request_subscription",
    "send_confirmation",
    "unsubscribe",
    "unsubscribe_token",
]
