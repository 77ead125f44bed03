"""Zoom REST client: Server-to-Server OAuth, typed meetings, retries as policy.

The only module that speaks HTTP to Zoom. What each call expects:

    token          POST {oauth_url}/oauth/token                 200 (form body, Basic auth)
    create         POST {api_url}/users/{user}/meetings         201  never retried blindly
    get            GET  {api_url}/meetings/{id}                 200  404/3001 -> ZoomNotFound
    update         PATCH {api_url}/meetings/{id}                204  (no body: read it back)
    delete         DELETE {api_url}/meetings/{id}               204  404/3001 -> ZoomNotFound
    list           GET  {api_url}/users/{user}/meetings         200  paged by next_page_token
    user           GET  {api_url}/users/{user}                  200  404/1001 -> ZoomUnknownUser
    invitation     GET  {api_url}/meetings/{id}/invitation      200

``requests`` exceptions are translated in exactly one place (``ZoomClient._send``); Zoom's error
answers are translated in one place (``ZoomClient._api_error`` / ``_token_error``).
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol
from urllib.parse import quote
from zoneinfo import ZoneInfo

import requests
import urllib3.exceptions
from requests.auth import AuthBase

from session_bot.core.errors import (
    ConfigError,
    ZoomAuthError,
    ZoomError,
    ZoomNotFound,
    ZoomRateLimited,
    ZoomUnavailable,
)

log = logging.getLogger(__name__)

UTC = dt.UTC
TOPIC_MAX = 200
AGENDA_MAX = 2000
#: Renew a cached token this long before Zoom says it expires.
TOKEN_MARGIN = dt.timedelta(minutes=5)
MARKER_PREFIX = "[session-bot "
_MARKER_RE = re.compile(r"^\[session-bot ([a-z0-9][a-z0-9-]{0,39}) (\d{4}-\d{2}-\d{2})\]")
_USER_AGENT = "session-bot/0.1 (+https://github.com/; requests)"

# Scopes per operation: classic first, then the granular one new apps get ([M], [U]).
SCOPES: Mapping[str, tuple[str, ...]] = {
    "create": ("meeting:write:admin", "meeting:write:meeting:admin"),
    "get": ("meeting:read:admin", "meeting:read:meeting:admin"),
    "update": ("meeting:write:admin", "meeting:update:meeting:admin"),
    "delete": ("meeting:write:admin", "meeting:delete:meeting:admin"),
    "list": ("meeting:read:admin", "meeting:read:list_meetings:admin"),
    "user": ("user:read:admin", "user:read:user:admin"),
    "invitation": ("meeting:read:admin", "meeting:read:invitation:admin"),
}
_WHAT = {
    "create": "create a meeting",
    "get": "read a meeting",
    "update": "update a meeting",
    "delete": "delete a meeting",
    "list": "list the host's meetings",
    "user": "read the host user",
    "invitation": "read a meeting invitation",
    "token": "get an access token",
}


class LostCreateAnswer(ZoomUnavailable):
    """A create whose answer never arrived (timeout, dropped connection, 5xx): it may exist.

    The caller must look for the meeting's marker (``find_by_marker``) before creating again.
    """


class ZoomUnknownUser(ZoomAuthError, ZoomNotFound):
    """``SESSION_BOT_ZOOM_USER`` names no user of the account (Zoom code 1001).

    Both a setting to fix (``ZoomAuthError``) and Zoom's 404/1001 (``ZoomNotFound``).
    """


# --- values ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DialIn:
    """One dial-in number as Zoom lists it in ``settings.global_dial_in_numbers``."""

    country: str
    country_name: str
    city: str
    number: str
    type: str  # "toll" | "tollfree"

    @property
    def digits(self) -> str:
        """The number as dialled: ``+496950500952`` (no spaces)."""
        return re.sub(r"[^\d+]", "", self.number)


def group_meeting_id(meeting_id: int) -> str:
    """Zoom's display grouping: 11 digits 3-4-4, 10 digits 3-3-4, 9 digits 3-3-3."""
    s = str(meeting_id)
    cuts = {11: (3, 7), 10: (3, 6), 9: (3, 6)}.get(len(s))
    if cuts is None:
        return s
    a, b = cuts
    return f"{s[:a]} {s[a:b]} {s[b:]}"


@dataclass(frozen=True)
class Meeting:
    """A scheduled Zoom meeting as far as invitations need it. ``start_time`` is aware UTC."""

    id: int
    topic: str
    agenda: str
    start_time: dt.datetime
    duration: int
    timezone: str
    join_url: str
    password: str
    pstn_password: str
    dial_in: tuple[DialIn, ...]
    host_email: str = ""
    uuid: str = ""

    @property
    def display_id(self) -> str:
        return group_meeting_id(self.id)

    @property
    def primary_dial_in(self) -> DialIn | None:
        """The first toll number (Zoom lists the requested countries first), else the first."""
        for d in self.dial_in:
            if d.type == "toll":
                return d
        return self.dial_in[0] if self.dial_in else None

    @property
    def phone_passcode(self) -> str:
        """What a caller types after ``*``: ``pstn_password``, else a digits-only passcode."""
        if self.pstn_password:
            return self.pstn_password
        return self.password if self.password.isdigit() else ""

    def one_tap(self, dial_in: DialIn | None = None) -> str:
        """``+496950500952,,66547677759#,,,,*717531#``; empty if the meeting has no dial-in."""
        d = dial_in or self.primary_dial_in
        if d is None:
            return ""
        tap = f"{d.digits},,{self.id}#"
        if self.phone_passcode:
            tap += f",,,,*{self.phone_passcode}#"
        return tap

    @property
    def local_start(self) -> dt.datetime:
        return self.start_time.astimezone(ZoneInfo(self.timezone))

    def to_json(self) -> dict[str, Any]:
        """Our own JSON form for the store (not Zoom's)."""
        return {
            "id": self.id,
            "uuid": self.uuid,
            "topic": self.topic,
            "agenda": self.agenda,
            "start_time": _zulu(self.start_time),
            "duration": self.duration,
            "timezone": self.timezone,
            "join_url": self.join_url,
            "password": self.password,
            "pstn_password": self.pstn_password,
            "host_email": self.host_email,
            "dial_in": [
                {
                    "country": d.country,
                    "country_name": d.country_name,
                    "city": d.city,
                    "number": d.number,
                    "type": d.type,
                }
                for d in self.dial_in
            ],
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> Meeting:
        return cls(
            id=int(d["id"]),
            topic=str(d["topic"]),
            agenda=str(d.get("agenda", "")),
            start_time=_parse_utc(str(d["start_time"])),
            duration=int(d["duration"]),
            timezone=str(d["timezone"]),
            join_url=str(d["join_url"]),
            password=str(d.get("password", "")),
            pstn_password=str(d.get("pstn_password", "")),
            dial_in=tuple(DialIn(**x) for x in d.get("dial_in", ())),
            host_email=str(d.get("host_email", "")),
            uuid=str(d.get("uuid", "")),
        )

    @classmethod
    def from_zoom(cls, data: Mapping[str, Any], countries: Sequence[str] = ()) -> Meeting:
        """Build from Zoom's create/get answer; dial-ins of ``countries`` come first, in order."""
        settings = data.get("settings") or {}
        numbers = [
            DialIn(
                country=str(n.get("country", "")),
                country_name=str(n.get("country_name", "")),
                city=str(n.get("city", "")),
                number=str(n.get("number", "")),
                type=str(n.get("type", "toll")),
            )
            for n in settings.get("global_dial_in_numbers") or ()
            if n.get("number")
        ]
        rank = {c.upper(): i for i, c in enumerate(countries)}
        numbers.sort(key=lambda n: rank.get(n.country.upper(), len(rank)))  # stable
        return cls(
            id=int(data["id"]),
            topic=str(data.get("topic", "")),
            agenda=str(data.get("agenda", "")),
            start_time=_parse_utc(str(data["start_time"])),
            duration=int(data.get("duration", 60)),
            timezone=str(data.get("timezone") or "UTC"),
            join_url=str(data["join_url"]),
            password=str(data.get("password", "")),
            pstn_password=str(data.get("pstn_password", "")),
            dial_in=tuple(numbers),
            host_email=str(data.get("host_email", "")),
            uuid=str(data.get("uuid", "")),
        )


@dataclass(frozen=True)
class MeetingRequest:
    """What we ask Zoom for. ``start`` is aware; it is sent as local time of ``timezone``."""

    topic: str
    agenda: str
    start: dt.datetime
    duration: int
    timezone: str
    alternative_hosts: tuple[str, ...] = ()

    def local_start(self) -> str:
        """``YYYY-MM-DDTHH:MM:SS`` in ``timezone``, never with ``Z`` (zoomus#107)."""
        if self.start.tzinfo is None or self.start.utcoffset() is None:
            raise ValueError("MeetingRequest.start must be timezone-aware")
        # Convert first: UTC formatted as local shifts the meeting (AI-Shipping-Labs#996).
        return self.start.astimezone(ZoneInfo(self.timezone)).strftime("%Y-%m-%dT%H:%M:%S")


@dataclass(frozen=True)
class MeetingSummary:
    """One entry of the meeting list; ``agenda`` is cut to 250 characters by Zoom."""

    id: int
    topic: str
    agenda: str
    start_time: dt.datetime
    join_url: str


def marker(series_id: str, date: dt.date) -> str:
    """The tag that opens a meeting's agenda, e.g. ``[session-bot willkommen 2025-02-26]``."""
    return f"{MARKER_PREFIX}{series_id} {date.isoformat()}]"


def parse_marker(agenda: str) -> tuple[str, dt.date] | None:
    """``(series_id, date)`` of an agenda that starts with a marker, else ``None``."""
    m = _MARKER_RE.match(agenda)
    return (m.group(1), dt.date.fromisoformat(m.group(2))) if m else None


# --- token cache -------------------------------------------------------------------------------


class TokenCache(Protocol):
    """Where the access token lives; shared by all processes of one installation."""

    def load(self) -> tuple[str, dt.datetime] | None: ...

    def save(self, token: str, expires_at: dt.datetime) -> None: ...


class MemoryTokenCache:
    """Process-local cache; fine for one process or for tests sharing one instance."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._value: tuple[str, dt.datetime] | None = None

    def load(self) -> tuple[str, dt.datetime] | None:
        with self._lock:
            return self._value

    def save(self, token: str, expires_at: dt.datetime) -> None:
        with self._lock:
            self._value = (token, expires_at)

    def __repr__(self) -> str:  # never show the token
        return "MemoryTokenCache(<hidden>)"


# --- retry policy ------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """Bounded retries for 429 / 5xx / connection errors.

    ``attempts`` counts every try including the first. Waits double from ``backoff``; a wait
    longer than ``max_wait`` (e.g. Zoom's daily limit) is not slept but raised at once.
    Tests pass ``sleep=lambda s: None`` or a recorder (like stamina's test mode).
    """

    attempts: int = 4
    backoff: float = 0.5
    max_wait: float = 30.0
    sleep: Callable[[float], None] = field(default=time.sleep, compare=False)

    def backoff_for(self, retry_number: int) -> float:
        """Wait before retry number ``retry_number`` (1-based)."""
        return float(min(self.max_wait, self.backoff * 2 ** (retry_number - 1)))


# --- client ------------------------------------------------------------------------------------


class _TransportFailure(Exception):
    """Internal: no HTTP answer. ``maybe_sent`` is False only if the request surely never left."""

    def __init__(self, reason: str, *, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


class _Bearer(AuthBase):
    """Bearer auth as an ``AuthBase`` so requests never swaps in ~/.netrc credentials."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r


@dataclass
class _ErrorBody:
    code: int | None
    message: str
    fields: list[str]


class ZoomClient:
    """Typed access to the few Zoom operations session-bot needs."""

    def __init__(
        self,
        *,
        api_url: str,
        oauth_url: str,
        account_id: str,
        client_id: str,
        client_secret: str,
        user: str,
        clock: Callable[[], dt.datetime],
        dial_in_countries: Sequence[str] = ("DE",),
        timeout: float = 20.0,
        token_cache: TokenCache | None = None,
        retry: RetryPolicy | None = None,
        call_counter: Callable[[str], None] | None = None,
    ) -> None:
        missing = [
            name
            for name, value in (
                ("SESSION_BOT_ZOOM_ACCOUNT_ID", account_id),
                ("SESSION_BOT_ZOOM_CLIENT_ID", client_id),
                ("SESSION_BOT_ZOOM_CLIENT_SECRET", client_secret),
                ("SESSION_BOT_ZOOM_USER", user),
            )
            if not value.strip()
        ]
        if missing:
            raise ConfigError(
                f"Zoom is not fully configured: {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} empty. Copy Account ID, Client ID and "
                "Client secret from your Server-to-Server OAuth app in the Zoom App Marketplace "
                "(Manage → your app → App Credentials) and set SESSION_BOT_ZOOM_USER to the host's "
                "e-mail address, in .env or the environment."
            )
        if user.strip().lower() == "me":
            raise ConfigError(
                "SESSION_BOT_ZOOM_USER is `me`, which Zoom tells Server-to-Server apps not to use. "
                "Set it to the e-mail address (or user ID) of the Zoom user who hosts the meetings."
            )
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url.rstrip("/")
        self.user = user.strip()
        self._account_id = account_id.strip()
        self._client_id = client_id.strip()
        self._client_secret = client_secret
        self._clock = clock
        self.dial_in_countries = tuple(c.upper() for c in dial_in_countries)
        self.timeout = timeout
        self._cache: TokenCache = token_cache if token_cache is not None else MemoryTokenCache()
        self.retry = retry or RetryPolicy()
        self._count = call_counter
        self._token_lock = threading.Lock()
        self._http = requests.Session()
        self._http.headers.update({"Accept": "application/json", "User-Agent": _USER_AGENT})

    def __repr__(self) -> str:
        return f"ZoomClient(api_url={self.api_url!r}, user={self.user!r})"

    def __enter__(self) -> ZoomClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- operations ----------------------------------------------------------------------------

    def create_meeting(self, req: MeetingRequest) -> Meeting:
        """POST a scheduled meeting. A lost answer raises ``LostCreateAnswer``, never a retry."""
        if not req.agenda.startswith(MARKER_PREFIX):
            # Without the marker a lost answer could not be adopted: two meetings for one session.
            raise ValueError("MeetingRequest.agenda must start with marker(series_id, date)")
        body = self._meeting_body(req)
        body["type"] = 2
        resp = self._api("create", "POST", f"/users/{self._user_path}/meetings", json=body)
        return Meeting.from_zoom(self._json(resp, "create"), self.dial_in_countries)

    def get_meeting(self, meeting_id: int) -> Meeting:
        resp = self._api("get", "GET", f"/meetings/{int(meeting_id)}")
        return Meeting.from_zoom(self._json(resp, "get"), self.dial_in_countries)

    def update_meeting(self, meeting_id: int, req: MeetingRequest) -> Meeting:
        """PATCH (Zoom answers 204 without a body), then read the meeting back."""
        body = self._meeting_body(req)
        self._api("update", "PATCH", f"/meetings/{int(meeting_id)}", json=body)
        return self.get_meeting(meeting_id)

    def delete_meeting(self, meeting_id: int) -> None:
        """Delete; a meeting that is already gone raises ``ZoomNotFound``."""
        self._api("delete", "DELETE", f"/meetings/{int(meeting_id)}")

    def list_upcoming(self) -> Iterator[MeetingSummary]:
        """Upcoming and live meetings of the host (Zoom: at most six months ahead)."""
        return self._list("upcoming")

    def list_scheduled(self) -> Iterator[MeetingSummary]:
        """All unexpired scheduled meetings of the host, past ones included."""
        return self._list("scheduled")

    def find_all_by_marker(self, tag: str) -> list[MeetingSummary]:
        # `scheduled` rather than `upcoming`: it also covers a session that has just begun
        # and has no six-month horizon.
        return [m for m in self.list_scheduled() if m.agenda.startswith(tag)]

    def find_by_marker(self, tag: str) -> MeetingSummary | None:
        """The meeting whose agenda starts with ``tag`` (to adopt after a lost create answer)."""
        found = self.find_all_by_marker(tag)
        if len(found) > 1:
            log.warning(
                "%d Zoom meetings carry %s (%s); adopting the first",
                len(found),
                tag,
                ", ".join(group_meeting_id(m.id) for m in found),
            )
        return found[0] if found else None

    def get_user(self) -> dict[str, Any]:
        """The host user (``session-bot check`` uses it to prove credentials and scopes)."""
        return self._json(self._api("user", "GET", f"/users/{self._user_path}"), "user")

    def get_invitation(self, meeting_id: int) -> str:
        """Zoom's own invitation text for a meeting."""
        data = self._json(
            self._api("invitation", "GET", f"/meetings/{int(meeting_id)}/invitation"), "invitation"
        )
        return str(data.get("invitation", ""))

    def check(self) -> dict[str, Any]:
        """Token + user lookup; raises the precise error when something is wrong."""
        self._token(force_new=True)
        return self.get_user()

    # --- building blocks -----------------------------------------------------------------------

    @property
    def _user_path(self) -> str:
        return quote(self.user, safe="@")

    def _meeting_body(self, req: MeetingRequest) -> dict[str, Any]:
        return {
            "topic": req.topic[:TOPIC_MAX],
            "agenda": req.agenda[:AGENDA_MAX],
            "start_time": req.local_start(),
            "timezone": req.timezone,
            "duration": req.duration,
            "settings": {
                "waiting_room": True,
                "join_before_host": False,
                "mute_upon_entry": True,
                "approval_type": 2,
                "global_dial_in_countries": list(self.dial_in_countries),
                # Always sent, so that an update can also remove alternative hosts.
                "alternative_hosts": ";".join(req.alternative_hosts),
            },
        }

    def _list(self, kind: str) -> Iterator[MeetingSummary]:
        token = ""
        while True:
            params: dict[str, str | int] = {"type": kind, "page_size": 300}
            if token:
                params["next_page_token"] = token
            data = self._json(
                self._api("list", "GET", f"/users/{self._user_path}/meetings", params=params),
                "list",
            )
            for m in data.get("meetings") or ():
                if not m.get("start_time"):
                    continue  # recurring meetings without fixed time never carry our marker
                yield MeetingSummary(
                    id=int(m["id"]),
                    topic=str(m.get("topic", "")),
                    agenda=str(m.get("agenda", "")),
                    start_time=_parse_utc(str(m["start_time"])),
                    join_url=str(m.get("join_url", "")),
                )
            token = str(data.get("next_page_token") or "")
            if not token:
                return

    def _json(self, resp: requests.Response, op: str) -> dict[str, Any]:
        try:
            data = resp.json()
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise ZoomError(
                f"Zoom answered the request to {_WHAT[op]} with HTTP {resp.status_code} but no "
                f"JSON object (Content-Type {resp.headers.get('Content-Type', '?')!r}). Check that "
                "SESSION_BOT_ZOOM_API_URL points at Zoom's API (https://api.zoom.us/v2).",
                status=resp.status_code,
            )
        return data

    # --- tokens --------------------------------------------------------------------------------

    def _token(self, *, force_new: bool = False, rejected: str | None = None) -> str:
        """A token valid for at least ``TOKEN_MARGIN``; ``rejected`` was just refused by Zoom."""
        with self._token_lock:
            now = self._clock()
            cached = None if force_new else self._cache.load()
            if cached is not None:
                token, expires_at = cached
                if expires_at.tzinfo is None:  # some stores (SQLite) drop the zone; we save UTC
                    expires_at = expires_at.replace(tzinfo=UTC)
                if token != rejected and expires_at - TOKEN_MARGIN > now:
                    return token
            token, expires_in = self._fetch_token()
            self._cache.save(token, now + dt.timedelta(seconds=expires_in))
            return token

    def _fetch_token(self) -> tuple[str, int]:
        resp = self._exchange(
            "token",
            "POST",
            f"{self.oauth_url}/oauth/token",
            data={"grant_type": "account_credentials", "account_id": self._account_id},
            auth=(self._client_id, self._client_secret),
            idempotent=True,
        )
        if resp.status_code != 200:
            raise self._token_error(resp)
        data = self._json(resp, "token")
        token = data.get("access_token")
        if not isinstance(token, str) or not token:
            raise ZoomError(
                "Zoom's token endpoint answered without an access_token. Check that "
                "SESSION_BOT_ZOOM_OAUTH_URL is https://zoom.us.",
                status=resp.status_code,
            )
        try:
            expires_in = int(data.get("expires_in", 3600))
        except (TypeError, ValueError):
            expires_in = 3600
        log.info("obtained a Zoom access token valid for %d s", expires_in)
        return token, expires_in

    def _token_error(self, resp: requests.Response) -> ZoomError:
        try:
            data = resp.json()
        except ValueError:
            data = {}
        data = data if isinstance(data, dict) else {}
        error = str(data.get("error", ""))
        reason = str(data.get("reason", "") or data.get("message", ""))
        status = resp.status_code
        where = (
            "Copy it from the Zoom App Marketplace (Manage → your Server-to-Server OAuth app → App "
            "Credentials) into .env or the environment; the app must be activated."
        )
        if error == "invalid_client" or "client" in reason.lower():
            return ZoomAuthError(
                f"Zoom refused the app credentials ({error or status}: {reason}). Check "
                f"SESSION_BOT_ZOOM_CLIENT_ID and SESSION_BOT_ZOOM_CLIENT_SECRET. {where}",
                status=status,
            )
        if "account" in reason.lower():
            return ZoomAuthError(
                f"Zoom refused the account id ({error or status}: {reason}). Check "
                f"SESSION_BOT_ZOOM_ACCOUNT_ID. {where}",
                status=status,
            )
        if error == "unsupported_grant_type":
            return ZoomAuthError(
                f"Zoom does not allow the account_credentials grant for this app ({reason}). "
                "SESSION_BOT_ZOOM_CLIENT_ID must belong to a Server-to-Server OAuth app (not a "
                "general OAuth app), and the app must be activated.",
                status=status,
            )
        return ZoomAuthError(
            f"Zoom did not issue an access token (HTTP {status}"
            f"{', ' + error if error else ''}{': ' + reason if reason else ''}). Check "
            "SESSION_BOT_ZOOM_ACCOUNT_ID, SESSION_BOT_ZOOM_CLIENT_ID and "
            f"SESSION_BOT_ZOOM_CLIENT_SECRET. {where}",
            status=status,
        )

    # --- HTTP ----------------------------------------------------------------------------------

    def _api(
        self,
        op: str,
        method: str,
        path: str,
        *,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, Any] | None = None,
    ) -> requests.Response:
        """One API call with auth; exactly one re-authentication on 401."""
        expected = {"create": 201, "update": 204, "delete": 204}.get(op, 200)
        url = self.api_url + path
        kw: dict[str, Any] = {"params": params, "json": json, "idempotent": op != "create"}
        token = self._token()
        resp = self._exchange(op, method, url, auth=_Bearer(token), **kw)
        if resp.status_code == 401:
            # Expired, or replaced by a token another process asked for (moodle-mod_zoom#473).
            log.info("Zoom refused the access token (401); authenticating once more")
            token = self._token(rejected=token)
            resp = self._exchange(op, method, url, auth=_Bearer(token), **kw)
        if resp.status_code == expected:
            return resp
        raise self._api_error(op, path, resp)

    def _exchange(
        self,
        op: str,
        method: str,
        url: str,
        *,
        idempotent: bool,
        **kw: Any,
    ) -> requests.Response:
        """Send with bounded retries on 429 / 5xx / transport errors; return any other answer.

        A non-idempotent call (create) is retried only when Zoom surely did not act on it
        (429, or a connection that was never opened); otherwise ``LostCreateAnswer``.
        """
        policy = self.retry
        attempt = 0
        while True:
            attempt += 1
            if op in ("create", "update") and self._count is not None:
                self._count(op)
            try:
                resp = self._send(method, url, **kw)
            except _TransportFailure as fail:
                if not idempotent and fail.maybe_sent:
                    raise LostCreateAnswer(
                        f"The answer to the request to {_WHAT[op]} was lost ({fail.reason}); Zoom "
                        "may have created the meeting. Look for its marker before creating again.",
                    ) from None
                if attempt >= policy.attempts:
                    raise ZoomUnavailable(
                        f"Could not reach Zoom to {_WHAT[op]} ({fail.reason}) after {attempt} "
                        f"attempts. Check the network or proxy and SESSION_BOT_ZOOM_API_URL / "
                        "SESSION_BOT_ZOOM_OAUTH_URL; the next run tries again.",
                    ) from None
                wait = policy.backoff_for(attempt)
                log.warning("Zoom %s: %s; retry %d in %.1f s", op, fail.reason, attempt, wait)
                policy.sleep(wait)
                continue
            status = resp.status_code
            if status == 429:
                wait = self._rate_limit_wait(op, resp, attempt)
                log.warning("Zoom %s: 429 rate limited; retry %d in %.1f s", op, attempt, wait)
                policy.sleep(wait)
                continue
            if status >= 500:
                if not idempotent:
                    raise LostCreateAnswer(
                        f"Zoom answered HTTP {status} to the request to {_WHAT[op]}; the meeting "
                        "may have been created anyway. Look for its marker before creating again.",
                        status=status,
                    )
                if attempt >= policy.attempts:
                    body = _error_body(resp)
                    raise ZoomUnavailable(
                        f"Zoom answered HTTP {status} to the request to {_WHAT[op]} {attempt} "
                        f"times in a row ({body.message or 'no message'}). Zoom may have an "
                        "outage (https://status.zoom.us); nothing to fix here, the next run "
                        "tries again.",
                        status=status,
                        code=body.code,
                    )
                wait = policy.backoff_for(attempt)
                log.warning("Zoom %s: HTTP %d; retry %d in %.1f s", op, status, attempt, wait)
                policy.sleep(wait)
                continue
            return resp

    def _rate_limit_wait(self, op: str, resp: requests.Response, attempt: int) -> float:
        """Seconds to wait before retrying a 429, or raise ``ZoomRateLimited``."""
        body = _error_body(resp)
        now = self._clock()
        retry_at = _retry_after(resp.headers.get("Retry-After"), now)
        daily = resp.headers.get("X-RateLimit-Type", "").lower() == "daily-limit" or (
            "daily" in body.message.lower()
        )
        if daily and retry_at is None:
            # The per-user 100/day limit may come without any header; it resets 00:00 UTC.
            retry_at = dt.datetime.combine(now.date() + dt.timedelta(days=1), dt.time(), UTC)
        if retry_at is not None:
            wait = max(0.0, (retry_at - now).total_seconds())
        else:
            wait = self.retry.backoff_for(attempt)
        if daily or wait > self.retry.max_wait or attempt >= self.retry.attempts:
            until = retry_at or now + dt.timedelta(seconds=wait)
            raise ZoomRateLimited(
                f"Zoom's rate limit stops the request to {_WHAT[op]} until "
                f"{until.astimezone(UTC):%Y-%m-%d %H:%M:%S} UTC ({body.message or 'HTTP 429'}). "
                "Nothing was changed; the next run after that time tries again. Zoom allows about "
                "100 meeting create/update requests per host and day and shares its per-second "
                "limits among all apps of the account; `session-bot status` shows today's count.",
                retry_at=until.timestamp(),
                status=429,
                code=body.code,
            )
        return wait

    def _send(self, method: str, url: str, **kw: Any) -> requests.Response:
        """The one place where ``requests`` exceptions become ours."""
        host = _host(url)
        try:
            resp = self._http.request(method, url, timeout=self.timeout, **kw)
        except requests.ConnectTimeout:
            reason, sent = f"no connection to {host} within {self.timeout:g} s", False
        except requests.Timeout:
            reason, sent = f"no answer from {host} within {self.timeout:g} s", True
        except requests.ConnectionError as exc:
            sent = not _never_connected(exc)
            reason = f"{'connection dropped by' if sent else 'could not connect to'} {host}"
        except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as exc:
            raise ConfigError(
                f"{url!r} is not a usable URL ({type(exc).__name__}). Check "
                "SESSION_BOT_ZOOM_API_URL (https://api.zoom.us/v2) and SESSION_BOT_ZOOM_OAUTH_URL "
                "(https://zoom.us)."
            ) from None
        except requests.RequestException as exc:
            reason, sent = f"{type(exc).__name__} talking to {host}", True
        else:
            log.debug("Zoom %s %s -> %d", method, _path_of(url), resp.status_code)
            return resp
        # Raised outside the except blocks so no requests exception (with its URL) is chained.
        raise _TransportFailure(reason, maybe_sent=sent)

    def _api_error(self, op: str, path: str, resp: requests.Response) -> ZoomError:
        """Zoom's error answer as one of ours, with a message naming the fix."""
        status = resp.status_code
        body = _error_body(resp)
        code = body.code
        zoom_says = f"Zoom: {body.message}" if body.message else f"HTTP {status}"
        if code == 1001 or (status == 404 and "user" in body.message.lower()):
            return ZoomUnknownUser(
                f"Zoom has no user {self.user!r} in this account ({zoom_says}). Set "
                "SESSION_BOT_ZOOM_USER to the e-mail address or user ID of the Zoom user who hosts "
                "the meetings; it must belong to the account of SESSION_BOT_ZOOM_ACCOUNT_ID.",
                status=status,
                code=code,
            )
        if code == 3001 or (status == 404 and path.startswith("/meetings/")):
            mid = path.split("/")[2]
            shown = group_meeting_id(int(mid)) if mid.isdigit() else mid
            return ZoomNotFound(
                f"Zoom meeting {shown} does not exist (any more) ({zoom_says}). It was probably "
                "deleted in Zoom; session-bot creates a new one for the session on its next run "
                "and sends an update with the new link.",
                status=status,
                code=code,
            )
        if code in (4700, 4711) or "scope" in body.message.lower():
            scopes = " or ".join(f"`{s}`" for s in SCOPES.get(op, ()))
            return ZoomAuthError(
                f"The Zoom app may not {_WHAT[op]}: its token lacks a scope ({zoom_says}). In "
                "the Zoom App Marketplace, open your Server-to-Server OAuth app → Scopes, add "
                f"{scopes}, save and activate the app again, then run `session-bot check`.",
                status=status,
                code=code,
            )
        if status == 401:
            return ZoomAuthError(
                f"Zoom refused a freshly issued access token to {_WHAT[op]} ({zoom_says}). Check "
                "that the Server-to-Server OAuth app is activated and that "
                "SESSION_BOT_ZOOM_ACCOUNT_ID, SESSION_BOT_ZOOM_CLIENT_ID and "
                "SESSION_BOT_ZOOM_CLIENT_SECRET belong to the same app.",
                status=status,
                code=code,
            )
        if code == 3161 or status == 403:
            return ZoomAuthError(
                f"Zoom does not let {self.user!r} {_WHAT[op]} ({zoom_says}). In the Zoom admin "
                "portal give this user a licence with meeting hosting, or set "
                "SESSION_BOT_ZOOM_USER to a user who may host meetings.",
                status=status,
                code=code,
            )
        fields = f" (fields: {', '.join(body.fields)})" if body.fields else ""
        return ZoomError(
            f"Zoom rejected the request to {_WHAT[op]} with HTTP {status}"
            f"{f', code {code}' if code is not None else ''}: {body.message or 'no message'}"
            f"{fields}. If the plan's topic, times or alternative hosts are unusual, check them; "
            "check SESSION_BOT_ZOOM_API_URL (https://api.zoom.us/v2); otherwise please report "
            "this as a session-bot bug.",
            status=status,
            code=code,
        )


# --- helpers -----------------------------------------------------------------------------------


def _zulu(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_utc(s: str) -> dt.datetime:
    t = dt.datetime.fromisoformat(s)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _retry_after(value: str | None, now: dt.datetime) -> dt.datetime | None:
    """``Retry-After`` as a moment: seconds, ISO 8601 (Zoom's daily limit) or an HTTP date."""
    if not value or not value.strip():
        return None
    v = value.strip()
    try:
        return now + dt.timedelta(seconds=max(0.0, float(v)))
    except ValueError:
        pass
    try:
        t = dt.datetime.fromisoformat(v)
    except ValueError:
        try:
            t = email.utils.parsedate_to_datetime(v)
        except (TypeError, ValueError):
            return None
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def _error_body(resp: requests.Response) -> _ErrorBody:
    """Zoom's ``{"code", "message", "errors"}``, tolerating XML and HTML bodies."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if isinstance(data, dict):
        raw_code = data.get("code")
        code = raw_code if isinstance(raw_code, int) else None
        if code is None and isinstance(raw_code, str) and raw_code.isdigit():
            code = int(raw_code)
        message = str(data.get("message") or data.get("reason") or "")
        fields = [
            str(e.get("field"))
            for e in data.get("errors") or ()
            if isinstance(e, dict) and e.get("field")
        ]
        return _ErrorBody(code, message, fields)
    text = resp.text or ""
    m_code = re.search(r"<code>\s*(\d+)\s*</code>", text)
    m_msg = re.search(r"<message>(.*?)</message>", text, re.S)
    if m_msg:
        return _ErrorBody(int(m_code.group(1)) if m_code else None, m_msg.group(1).strip(), [])
    flat = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return _ErrorBody(None, flat[:200], [])


def _never_connected(exc: requests.ConnectionError) -> bool:
    """True if the connection was never established (refused, DNS): the request never left."""
    seen: set[int] = set()
    stack: list[BaseException] = [exc]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, urllib3.exceptions.NewConnectionError):
            return True
        reason = getattr(e, "reason", None)
        if isinstance(reason, BaseException):
            stack.append(reason)
        stack.extend(a for a in e.args if isinstance(a, BaseException))
        if e.__cause__ is not None:
            stack.append(e.__cause__)
        if e.__context__ is not None:
            stack.append(e.__context__)
    return False


def _host(url: str) -> str:
    m = re.match(r"^[a-z]+://([^/?#]+)", url, re.I)
    return m.group(1) if m else url


def _path_of(url: str) -> str:
    m = re.match(r"^[a-z]+://[^/?#]+([^?#]*)", url, re.I)
    return m.group(1) if m else url
