"""Subscribers: double opt-in with consent proof, unsubscribe, CSV import/export, forgetting.

The consent proof German courts ask for (BGH I ZR 164/09) is kept per subscriber: for the web
request and its confirmation the time, IP address, user agent, form URL and consent-text version;
for an import the file and who imported it. Nothing here reads the clock or the environment.

Rules this module keeps:
- A request never downgrades anybody: re-submitting a confirmed address changes nothing and at
  most tells the address's owner once a day (listmonk#2987).
- Confirm links carry the request's moment, so a newer request retires older links.
- An unsubscribed or forgotten address is never re-added by an import without an explicit flag.
"""

from __future__ import annotations

import csv
import datetime as dt
import hashlib
import hmac
import io
import ipaddress
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TextIO

from email_validator import EmailNotValidError, validate_email

from session_bot.core.errors import SessionBotError, SubscriberImportError
from session_bot.core.records import ImportedRow
from session_bot.core.tokens import make_token, read_token

if TYPE_CHECKING:
    from session_bot.adapters.db.store import Store
    from session_bot.adapters.mail import SendResult, Transport
    from session_bot.adapters.render.invitations import Renderer

LANGUAGES = ("de", "en")
STATUSES = ("pending", "confirmed", "unsubscribed", "bounced")
CONFIRM_VALID = dt.timedelta(days=30)
OWNER_NOTICE_EVERY = dt.timedelta(days=1)
_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_US = dt.timedelta(microseconds=1)
_NAME_MAX = 200
# Spreadsheets run cells starting with these as formulas (CSV injection).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


class InvalidAddress(ValueError):
    """An address that is not syntactically valid; ``str()`` says why (English)."""


# --- addresses, hashes, tokens ---------------------------------------------------------------


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


def email_key(address: str) -> str:
    return address.lower()


def keyed_hash(secret: str, purpose: str, value: str) -> str:
    """HMAC-SHA256 of ``value``: recognisable with the secret key, useless without it."""
    return hmac.new(secret.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()


def forget_hash(secret: str, address: str) -> str:
    return keyed_hash(secret, "forget", email_key(address))


def _micros(moment: dt.datetime) -> int:
    return (moment - _EPOCH) // _US


def confirm_token(secret: str, subscriber_id: int, requested_at: dt.datetime) -> str:
    return make_token(secret, "confirm", f"{subscriber_id}.{_micros(requested_at)}")


def unsubscribe_token(secret: str, subscriber_id: int) -> str:
    """The same token ``wiring.unsubscribe_links`` puts into every bulk mail."""
    return make_token(secret, "unsubscribe", str(subscriber_id))


def read_unsubscribe_token(secret: str, token: str) -> int | None:
    subject = read_token(secret, "unsubscribe", token)
    return int(subject) if subject is not None and subject.isdigit() else None


def _read_confirm_token(secret: str, token: str) -> tuple[int, int] | None:
    subject = read_token(secret, "confirm", token)
    if subject is None:
        return None
    sid, _, micros = subject.partition(".")
    if not sid.isdigit() or not micros.isdigit():
        return None
    return int(sid), int(micros)


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


# --- the web consent workflow ----------------------------------------------------------------


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
    """Record a web request for ``address``; raises ``InvalidAddress`` for a malformed one."""
    email = normalise_address(address)
    key = email_key(email)
    name = _clean_name(name)
    language = language if language in LANGUAGES else "de"
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
    ip, agent, url = proof.clipped()
    consent = {
        "requested_at": now,
        "request_ip": ip,
        "request_user_agent": agent,
        "request_url": url,
        "consent_version": consent_version[:64],
    }
    if row is None:
        sid = store.subscribers.try_add(
            email, name=name, language=language, status="pending", now=now, **consent
        )
        if sid is None:  # a concurrent request inserted it first
            row = store.subscribers.get(key)
            if row is None or row["status"] == "confirmed":
                return SubscribeOutcome("nothing", email)
        else:
            return SubscribeOutcome(
                "send-confirmation", email, sid, name, language, confirm_token(secret, sid, now)
            )
    changed = store.subscribers.update(
        row["id"],
        now,
        only_if={"status": ("pending", "unsubscribed", "bounced")},
        name=name,
        language=language,
        **consent,
    )
    if not changed:
        return SubscribeOutcome("nothing", email)
    return SubscribeOutcome(
        "send-confirmation",
        row["email"],
        row["id"],
        name,
        language,
        confirm_token(secret, row["id"], now),
    )


def _confirmed_again(store: Store, row: dict[str, Any], now: dt.datetime) -> SubscribeOutcome:
    if store.subscribers.claim_owner_notice(row["id"], now, OWNER_NOTICE_EVERY):
        return SubscribeOutcome(
            "notify-owner", row["email"], row["id"], row["name"], row["language"]
        )
    return SubscribeOutcome("nothing", row["email"], row["id"])


TokenState = Literal["valid", "confirmed", "invalid", "expired"]


@dataclass(frozen=True)
class ConfirmState:
    state: TokenState
    subscriber_id: int | None = None
    email: str | None = None
    language: str | None = None
    late_deliveries: int = 0
    just_now: bool = False  # confirmed by this call (not before)


def inspect_confirm_token(store: Store, secret: str, token: str, now: dt.datetime) -> ConfirmState:
    """What a confirm link stands for, without changing anything (GET)."""
    parsed = _read_confirm_token(secret, token)
    if parsed is None:
        return ConfirmState("invalid")
    sid, micros = parsed
    row = store.subscribers.get_by_id(sid)
    if row is None or row["requested_at"] is None or _micros(row["requested_at"]) != micros:
        # Unknown, erased, or retired by a newer request for the same address.
        return ConfirmState("invalid")
    base = {"subscriber_id": sid, "email": row["email"], "language": row["language"]}
    if row["status"] == "confirmed":
        return ConfirmState("confirmed", **base)
    if now - row["requested_at"] > CONFIRM_VALID:
        return ConfirmState("expired", **base)
    return ConfirmState("valid", **base)


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
    state = inspect_confirm_token(store, secret, token, now)
    if state.state != "valid" or state.subscriber_id is None:
        return state
    row = store.subscribers.get_by_id(state.subscriber_id)
    assert row is not None
    ip, agent, _ = proof.clipped()
    changed = store.subscribers.update(
        state.subscriber_id,
        now,
        only_if={
            "status": ("pending", "unsubscribed", "bounced"),
            "requested_at": row["requested_at"],
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
        return inspect_confirm_token(store, secret, token, now)
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


# --- consent mails ---------------------------------------------------------------------------


def send_confirmation(
    *,
    renderer: Renderer,
    transport: Transport,
    sender: str,
    to: str,
    name: str | None,
    language: str,
    confirm_url: str,
    series_title: str,
    message_id: str,
    now: dt.datetime,
) -> SendResult:
    """The double-opt-in mail (no advertising, no unsubscribe header: nobody is subscribed yet)."""
    from session_bot.adapters.render.invitations import Recipient

    mailing = renderer.render_confirmation(
        language=language, confirm_url=confirm_url, series_title=series_title, now=now
    )
    message = mailing.personalise(
        Recipient(email=to, name=name, language=language), message_id=message_id, date=now
    )
    return transport.send(sender, to, message)


_NOTICE = {
    "de": (
        "Sie sind bereits angemeldet: {title}",
        "Guten Tag,\n\n"
        "für Ihre Adresse {email} wurde die Anmeldung zu „{title}“ erneut abgeschickt. "
        "Sie sind bereits angemeldet; es hat sich nichts geändert.\n\n"
        "Falls Sie keine Einladungen mehr erhalten möchten, melden Sie sich hier ab:\n"
        "{unsubscribe_url}\n\n"
        "Wenn Sie das Formular nicht selbst abgeschickt haben, können Sie diese E-Mail "
        "ignorieren. Diese Nachricht erhalten Sie höchstens einmal am Tag.\n",
    ),
    "en": (
        "You are already subscribed: {title}",
        "Hello,\n\n"
        "the subscription form for “{title}” was submitted again for your address {email}. "
        "You are already subscribed; nothing has changed.\n\n"
        "If you no longer wish to receive invitations, unsubscribe here:\n"
        "{unsubscribe_url}\n\n"
        "If you did not submit the form yourself, you can ignore this e-mail. You receive this "
        "message at most once a day.\n",
    ),
}


def owner_notice_message(
    *,
    from_name: str,
    from_email: str,
    to: str,
    language: str,
    series_title: str,
    unsubscribe_url: str,
    message_id: str,
    now: dt.datetime,
) -> bytes:
    """ "Already subscribed" for the address's owner: tells them, changes nothing."""
    subject, body = _NOTICE[language if language in _NOTICE else "de"]
    msg = EmailMessage()
    msg["From"] = formataddr((from_name, from_email))
    msg["To"] = to
    msg["Subject"] = subject.format(title=series_title)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = language
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(
        body.format(title=series_title, email=to, unsubscribe_url=unsubscribe_url),
        cte="quoted-printable",
    )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))


# --- command-line operations -----------------------------------------------------------------


def _clean_name(name: str | None) -> str | None:
    if name is None:
        return None
    # Control characters (NUL is refused by PostgreSQL) never belong in a salutation.
    text = " ".join("".join(ch for ch in name if ch.isprintable() or ch.isspace()).split())
    text = text[:_NAME_MAX]
    if len(text) > 1 and text[0] == "'" and text[1] in _FORMULA_START:
        text = text[1:]  # our own export's guard against spreadsheet formulas
    return text or None


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
        name=_clean_name(name),
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
    row = store.subscribers.get(_normalise_or_raw(address))
    if row is None:
        return "unknown"
    return unsubscribe(store, row["id"], now)


def forget_subscriber(store: Store, secret: str, address: str, now: dt.datetime) -> bool:
    """Erase the address's personal data; keep only a keyed hash. False if it was unknown."""
    wanted = _normalise_or_raw(address)
    row = store.subscribers.get(wanted)
    # Hash the stored form so the block matches what a later import normalises to.
    stored = row["email"] if row else wanted
    return store.subscribers.forget(email_key(stored), forget_hash(secret, stored), now)


def _normalise_or_raw(address: str) -> str:
    try:
        return normalise_address(address)
    except InvalidAddress:
        return address.strip()


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
    wanted = _normalise_or_raw(address)
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


# --- CSV import ------------------------------------------------------------------------------

_HEADER_ALIASES = {
    "email": "email",
    "mail": "email",
    "emailadresse": "email",
    "mailadresse": "email",
    "emailaddress": "email",
    "adresse": "email",
    "address": "email",
    "name": "name",
    "fullname": "name",
    "vollständigername": "name",
    "anzeigename": "name",
    "vorname": "first",
    "firstname": "first",
    "givenname": "first",
    "nachname": "last",
    "lastname": "last",
    "surname": "last",
    "familienname": "last",
    "language": "language",
    "lang": "language",
    "sprache": "language",
    "status": "status",
}
_LANGUAGE_ALIASES = {
    "": None,
    "de": "de",
    "deu": "de",
    "ger": "de",
    "deutsch": "de",
    "german": "de",
    "en": "en",
    "eng": "en",
    "englisch": "en",
    "english": "en",
}
_IMPORTABLE_STATUS = {"", "confirmed", "bestätigt", "aktiv", "active", "subscribed", "angemeldet"}


@dataclass(frozen=True)
class Rejected:
    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class Parsed:
    line: int
    email: str
    name: str | None
    language: str


@dataclass
class ImportReport:
    file: str
    delimiter: str
    dry_run: bool
    added: list[Parsed] = field(default_factory=list)
    unchanged: list[Rejected] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)

    def summary(self) -> str:
        verb = "would add" if self.dry_run else "added"
        return (
            f"{self.file}: {verb} {len(self.added)}, unchanged {len(self.unchanged)}, "
            f"rejected {len(self.rejected)}"
        )


def _header_key(cell: str) -> str:
    return re.sub(r"[\s\-_.:]", "", cell.strip().lower())


def _decode(data: bytes, source: str) -> str:
    if data.startswith(b"PK\x03\x04"):
        raise SubscriberImportError(
            f"{source} is a spreadsheet workbook (.xlsx/.ods), not a CSV file. Save it as "
            "“CSV UTF-8 (durch Trennzeichen getrennt)” (Excel) or “Text CSV” with character set "
            "UTF-8 (LibreOffice) and import that file."
        )
    if b"\x00" in data[:8192]:
        raise SubscriberImportError(
            f"{source} is not a text file (it contains NUL bytes); export the list as CSV "
            "(UTF-8) with a header line such as `email;name;language`."
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise SubscriberImportError(
            f"{source}, line {line}: not UTF-8 text. Save the file as “CSV UTF-8” (Excel) or "
            "choose character set Unicode (UTF-8) when exporting (LibreOffice), then import again."
        ) from None


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: 0 for d in ";,\t"}
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _looks_like_address(cell: str) -> bool:
    try:
        normalise_address(cell)
    except InvalidAddress:
        return False
    return True


def parse_csv(data: bytes, source: str) -> tuple[str, list[Parsed], list[Rejected], list[Rejected]]:
    """(delimiter, valid rows, rows skipped on purpose, rejected rows); raises
    ``SubscriberImportError`` for a file that is not a readable CSV list at all."""
    text = _decode(data, source)
    lines = text.splitlines()
    offset = 0
    delimiter: str | None = None
    if lines and lines[0].strip().lower().startswith("sep=") and len(lines[0].strip()) == 5:
        delimiter = lines[0].strip()[4]  # Excel's "sep=;" hint line
        offset = 1
    body = "\n".join(lines[offset:])
    first = next((ln for ln in lines[offset:] if ln.strip()), "")
    if not first:
        raise SubscriberImportError(
            f"{source} is empty; expected a header line `email;name;language`."
        )
    delimiter = delimiter or _sniff_delimiter(first)
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    try:
        records = _records(reader, offset)
        start, header = next(records, (0, []))
        columns = _columns(header)
        if columns is None:
            if not any(_looks_like_address(c) for c in header):
                shown = first if len(first) <= 80 else first[:77] + "…"
                raise SubscriberImportError(
                    f"{source}, line {start}: no column of e-mail addresses found (the first line "
                    f"is {shown!r}). Is this a CSV export of the list? Add a header line such as "
                    "`email;name;language` (or `E-Mail;Vorname;Nachname`) and import again."
                )
            # No header: the address, then (optionally) name and language.
            at = next(i for i, c in enumerate(header) if _looks_like_address(c))
            columns = {"email": at, "name": at + 1, "language": at + 2}
            rows: Iterable[tuple[int, list[str]]] = [(start, header), *records]
        else:
            rows = records
        valid, skipped, rejected = _rows(rows, columns)
    except csv.Error as exc:
        raise SubscriberImportError(
            f"{source}, line {reader.line_num + offset}: not readable as CSV ({exc}); check quotes "
            "in that line or export the list again as CSV UTF-8."
        ) from None
    return delimiter, valid, skipped, rejected


def _records(reader: Any, offset: int) -> Iterator[tuple[int, list[str]]]:
    """Non-empty records with the file line each starts on (quoted cells may span lines)."""
    prev = 0
    for rec in reader:
        start = prev + 1 + offset
        prev = reader.line_num
        if any(cell.strip() for cell in rec):
            yield start, rec


def _columns(header: list[str]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for i, cell in enumerate(header):
        role = _HEADER_ALIASES.get(_header_key(cell))
        if role and role not in found:
            found[role] = i
    return found if "email" in found else None


def _rows(
    rows: Iterable[tuple[int, list[str]]], cols: dict[str, int]
) -> tuple[list[Parsed], list[Rejected], list[Rejected]]:
    valid: list[Parsed] = []
    skipped: list[Rejected] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}

    def cell(rec: list[str], role: str) -> str:
        i = cols.get(role)
        return rec[i].strip() if i is not None and i < len(rec) else ""

    for line, rec in rows:
        raw = cell(rec, "email")
        shown = raw or ";".join(rec)[:80]
        try:
            email = normalise_address(raw)
        except InvalidAddress as exc:
            rejected.append(Rejected(line, shown, f"invalid address: {exc}"))
            continue
        key = email_key(email)
        if key in seen:
            rejected.append(Rejected(line, raw, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = line
        status = cell(rec, "status").lower()
        if status not in _IMPORTABLE_STATUS:
            skipped.append(Rejected(line, email, f"status {status!r} in the file: not imported"))
            continue
        lang_raw = cell(rec, "language")
        if lang_raw.lower() not in _LANGUAGE_ALIASES:
            rejected.append(
                Rejected(line, raw, f"language {lang_raw!r} unknown: use de or en (or leave empty)")
            )
            continue
        name = cell(rec, "name") or " ".join(
            p for p in (cell(rec, "first"), cell(rec, "last")) if p
        )
        if len(name) > _NAME_MAX:
            rejected.append(Rejected(line, raw, f"name longer than {_NAME_MAX} characters"))
            continue
        valid.append(
            Parsed(line, email, _clean_name(name), _LANGUAGE_ALIASES[lang_raw.lower()] or "de")
        )
    return valid, skipped, rejected


def import_csv(
    store: Store,
    secret: str,
    path: Path,
    *,
    imported_by: str,
    now: dt.datetime,
    dry_run: bool = False,
    readd_forgotten: bool = False,
) -> ImportReport:
    """Validate every row and import the good ones as confirmed, in one transaction."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscriberImportError(
            f"cannot read {path} ({exc.strerror}); check the path."
        ) from None
    delimiter, valid, skipped, rejected = parse_csv(data, str(path))
    report = ImportReport(str(path), delimiter, dry_run, unchanged=skipped, rejected=rejected)
    existing = store.subscribers.statuses_of([email_key(p.email) for p in valid])
    hashes = {p.email: forget_hash(secret, p.email) for p in valid}
    erased = store.subscribers.forgotten_among(list(hashes.values()))
    new: list[Parsed] = []
    for p in valid:
        status = existing.get(email_key(p.email))
        if status == "confirmed":
            report.unchanged.append(Rejected(p.line, p.email, "already subscribed"))
        elif status == "pending":
            report.unchanged.append(
                Rejected(p.line, p.email, "awaiting confirmation of a web request; not changed")
            )
        elif status is not None:
            report.rejected.append(
                Rejected(
                    p.line, p.email, f"{status} on the list: only they can subscribe again (form)"
                )
            )
        elif hashes[p.email] in erased and not readd_forgotten:
            report.rejected.append(
                Rejected(
                    p.line,
                    p.email,
                    "erased on request (GDPR Art. 17); re-add only with new consent "
                    "(--readd-forgotten)",
                )
            )
        else:
            new.append(p)
    report.unchanged.sort(key=lambda r: r.line)
    report.rejected.sort(key=lambda r: r.line)
    report.added = new
    if not dry_run and new:
        store.subscribers.import_rows(
            [ImportedRow(p.email, p.name, p.language) for p in new],
            now=now,
            import_file=str(path.resolve()),
            imported_by=imported_by,
        )
        for p in new:
            if hashes[p.email] in erased:
                store.subscribers.unforget(hashes[p.email])
    return report


# --- CSV export ------------------------------------------------------------------------------

EXPORT_COLUMNS = ("email", "name", "language", "status", "subscribed_at")


def _safe_cell(value: str) -> str:
    return "'" + value if value.startswith(_FORMULA_START) else value


def export_csv(
    store: Store,
    out: TextIO,
    *,
    statuses: Sequence[str] = ("confirmed",),
    delimiter: str = ";",
    bom: bool = True,
) -> int:
    """Write the list as CSV that spreadsheets open directly (and ``import_csv`` reads back)."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(EXPORT_COLUMNS)
    n = 0
    for row in store.subscribers.iter(statuses or None):
        since = row["confirmed_at"] or row["created_at"]
        writer.writerow(
            [
                row["email"],
                _safe_cell(row["name"] or ""),
                row["language"],
                row["status"],
                since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if since else "",
            ]
        )
        n += 1
    return n
