"""A local Zoom: S2S OAuth and the Meetings API on 127.0.0.1, for the demo and for tests.

Laid out like Zoom, so the real client is pointed at it by URL alone:

    POST /oauth/token                      as on zoom.us (form body or query, Basic auth)
    GET  /v2/users/{userId}                as on api.zoom.us/v2
    GET  /v2/users/{userId}/meetings       type, page_size, next_page_token (15 min)
    POST /v2/users/{userId}/meetings       201 + meeting
    GET|PATCH|DELETE /v2/meetings/{id}     200 | 204 (no body) | 204; 404/3001 when unknown
    GET  /v2/meetings/{id}/invitation      200

Field names, status codes and error bodies (``{"code", "message"[, "errors"]}``) follow Zoom's
OpenAPI documents and the facts in shared/zoom/README.md. Where Zoom's behaviour is unverified
(the body for a wrong ``account_id``, an unknown ``next_page_token``, unknown routes) the choice
is marked "unverified" below. Tests can queue the next meeting's id/passcode/dial-in number and
inject faults (429, 5xx, slow answers, dropped answers, expired tokens).

The sandbox stands in for an external server, so without a ``clock`` it uses the system clock.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import copy
import datetime as dt
import hashlib
import json
import logging
import os
import random
import re
import secrets
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

log = logging.getLogger(__name__)

UTC = dt.UTC
LIST_AGENDA_MAX = 250
PAGE_TOKEN_TTL = dt.timedelta(minutes=15)
JSON_TYPE = "application/json;charset=UTF-8"

# Granted scopes of a sandbox token unless told otherwise; each route accepts any of its own.
ROUTE_SCOPES: dict[str, tuple[str, ...]] = {
    "create": (
        "meeting:write:admin",
        "meeting:write",
        "meeting:write:meeting",
        "meeting:write:meeting:admin",
    ),
    "get": (
        "meeting:read:admin",
        "meeting:read",
        "meeting:read:meeting",
        "meeting:read:meeting:admin",
    ),
    "update": (
        "meeting:write:admin",
        "meeting:write",
        "meeting:update:meeting",
        "meeting:update:meeting:admin",
    ),
    "delete": (
        "meeting:write:admin",
        "meeting:write",
        "meeting:delete:meeting",
        "meeting:delete:meeting:admin",
    ),
    "list": (
        "meeting:read:admin",
        "meeting:read",
        "meeting:read:list_meetings",
        "meeting:read:list_meetings:admin",
    ),
    "invitation": (
        "meeting:read:admin",
        "meeting:read",
        "meeting:read:invitation",
        "meeting:read:invitation:admin",
    ),
    "user": ("user:read:admin", "user:read", "user:read:user", "user:read:user:admin"),
}
ALL_SCOPES: tuple[str, ...] = tuple(sorted({s for v in ROUTE_SCOPES.values() for s in v}))

# Zoom's published German numbers (the first is the seed invitation's).
DIAL_IN_TABLE: dict[str, tuple[str, tuple[tuple[str, str, str], ...]]] = {
    "DE": (
        "Germany",
        (
            ("Frankfurt am Main", "+49 69 5050 0952", "toll"),
            ("Frankfurt am Main", "+49 69 5050 0951", "toll"),
            ("Berlin", "+49 30 5679 5800", "toll"),
            ("Frankfurt am Main", "+49 69 3807 9883", "toll"),
            ("", "+49 800 724 3138", "tollfree"),
        ),
    ),
    "AT": ("Austria", (("Wien", "+43 12 535 501", "toll"), ("Wien", "+43 12 535 502", "toll"))),
    "CH": (
        "Switzerland",
        (("Bern", "+41 31 528 0988", "toll"), ("Zürich", "+41 43 210 7042", "toll")),
    ),
    "US": (
        "US",
        (("New York", "+1 646 558 8656", "toll"), ("San Jose", "+1 669 900 6833", "toll")),
    ),
}
_PREFIX_COUNTRY = {"+49": "DE", "+43": "AT", "+41": "CH", "+1": "US"}

_START_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,3})?(Z)?$")
_LIST_TYPES = ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings")


@dataclass(frozen=True)
class Fault:
    """A fault served to the next ``times`` matching requests.

    kind: ``429`` (per-second limit; ``daily=True`` for Zoom's daily-limit body and header),
    ``500``/``502``/``503`` (``502`` answers with an HTML page, as gateways do), ``slow``
    (process, wait ``delay`` s, then answer), ``drop_answer`` (process, then close the connection
    without answering), ``drop_create_answer`` (``drop_answer`` for creates only),
    ``expire_token`` (the presented token expires before the request is handled).
    ``path_prefix`` is matched against the request path (default: the API, not /oauth).
    """

    kind: str
    times: int = 1
    path_prefix: str = "/v2/"
    method: str = ""
    retry_after: str | None = None
    delay: float = 2.0
    daily: bool = False

    def matches(self, method: str, path: str) -> bool:
        if self.kind == "drop_create_answer":
            return method == "POST" and re.fullmatch(r"/v2/users/[^/]+/meetings", path) is not None
        return path.startswith(self.path_prefix) and self.method.upper() in ("", method)


@dataclass
class RecordedRequest:
    """One request as the sandbox saw it, with its answer (``status`` None if dropped)."""

    method: str
    path: str
    raw_query: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes
    status: int | None = None
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: bytes = b""
    fault: str = ""

    @property
    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def response_json(self) -> Any:
        return json.loads(self.response_body) if self.response_body else None

    @property
    def is_token(self) -> bool:
        return self.path == "/oauth/token"


@dataclass
class _Queued:
    id: int
    password: str
    dial_in: str
    pstn_password: str


class _Reply(Exception):
    """Internal: finish the request with this answer."""

    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def _zoom_error(status: int, code: int, message: str, **extra: Any) -> _Reply:
    return _Reply(status, {"code": code, "message": message, **extra})


def _invalid(*fields: str) -> _Reply:
    return _zoom_error(
        400,
        300,
        "Validation Failed.",
        errors=[{"field": f, "message": "Invalid field."} for f in fields],
    )


def _zulu(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _parse_zulu(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).astimezone(UTC)


class ZoomSandbox:
    """A faithful local Zoom on 127.0.0.1. Use as a context manager or ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        state_file: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        join_host: str = "zoom.us",
        require: tuple[str, str, str] | None = None,
        token_ttl: int = 3600,
        clock: Callable[[], dt.datetime] | None = None,
        embed_passcode: bool = False,
        users: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        daily_limit: int = 100,
        single_token: bool = False,
        default_timezone: str = "Europe/Berlin",
        default_dial_in_countries: Sequence[str] = ("DE",),
        seed: int | None = None,
        max_page_size: int = 300,
    ) -> None:
        self.state_file = state_file
        self.host = host
        self.port = port
        self.join_host = join_host
        self.require = require
        self.token_ttl = token_ttl
        self.clock: Callable[[], dt.datetime] = clock or (lambda: dt.datetime.now(UTC))
        self.embed_passcode = embed_passcode
        self.users = tuple(u.lower() for u in users) if users is not None else None
        self.scopes = tuple(scopes) if scopes is not None else ALL_SCOPES
        self.daily_limit = daily_limit
        self.single_token = single_token
        self.default_timezone = default_timezone
        self.default_dial_in_countries = tuple(default_dial_in_countries)
        self.max_page_size = max_page_size
        self._rng = random.Random(seed)
        self._lock = threading.RLock()
        self._meetings: dict[int, dict[str, Any]] = {}
        self._tokens: dict[str, dict[str, Any]] = {}  # sha256(token) -> expires_at, client
        self._daily: dict[str, int] = {}  # "user|YYYY-MM-DD" -> create/update count
        self._pages: dict[str, dict[str, Any]] = {}
        self._queue: list[_Queued] = []
        self._faults: list[list[Any]] = []  # [fault, remaining]
        self._requests: list[RecordedRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._load()

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> ZoomSandbox:
        if self._server is not None:
            return self
        self._stopping.clear()
        self._server = _Server((self.host, self.port), _Handler, self)
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.5},  # idle wake-ups cost CPU; stop() still answers quickly
            name="zoom-sandbox",
            daemon=True,
        )
        self._thread.start()
        log.info("Zoom sandbox listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        self._stopping.set()
        server.shutdown()
        server.server_close()
        server.close_open_connections()  # keep-alive handlers would serve on after a stop
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> ZoomSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Zoom sandbox is not running; call start() first")
        return f"http://{self.host}:{self._server.server_port}"

    @property
    def oauth_url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    # --- test controls -------------------------------------------------------------------------

    def queue_meeting(
        self, *, id: int, password: str, dial_in: str, pstn_password: str | None = None
    ) -> None:
        """Hand out this id, passcode and first dial-in number on the next create."""
        if pstn_password is None:
            pstn_password = password if password.isdigit() else self._digits(6)
        with self._lock:
            self._queue.append(_Queued(int(id), password, dial_in, pstn_password))

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._faults.append([fault, fault.times])

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def meetings(self) -> dict[int, dict[str, Any]]:
        """Current meetings as Zoom's GET returns them (a copy)."""
        with self._lock:
            return copy.deepcopy(self._meetings)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    def count(self, method: str, path_pattern: str) -> int:
        """Recorded requests whose method matches and whose path fully matches the regex."""
        return sum(
            1
            for r in self.requests
            if r.method == method.upper() and re.fullmatch(path_pattern, r.path)
        )

    @property
    def token_calls(self) -> int:
        return self.count("POST", "/oauth/token")

    @property
    def create_calls(self) -> int:
        return self.count("POST", r"/v2/users/[^/]+/meetings")

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on."""
        with self._lock:
            for t in self._tokens.values():
                t["expired"] = True
            self._save()

    # --- persistence ---------------------------------------------------------------------------

    def _load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        self._meetings = {int(k): v for k, v in data.get("meetings", {}).items()}
        self._tokens = dict(data.get("tokens", {}))
        self._daily = {str(k): int(v) for k, v in data.get("daily", {}).items()}

    def _save(self) -> None:
        if self.state_file is None:
            return
        data = {
            "version": 1,
            "meetings": {str(k): v for k, v in self._meetings.items()},
            "tokens": self._tokens,
            "daily": self._daily,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.state_file)

    # --- request handling (called from handler threads) ----------------------------------------

    def _record(self, rec: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(rec)

    def _take_fault(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for entry in self._faults:
                fault, remaining = entry
                if remaining > 0 and fault.matches(method, path):
                    entry[1] = remaining - 1
                    return fault  # type: ignore[no-any-return]
            return None

    def _dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
    ) -> _Reply:
        if path == "/oauth/token":
            if method != "POST":
                raise _zoom_error(405, 405, "Method Not Allowed")
            return self._token(query, headers, body)
        if not path.startswith("/v2/"):
            raise _zoom_error(404, 404, "Not Found")  # body unverified
        parts = [unquote(p) for p in path[len("/v2/") :].split("/")]
        route = self._route(method, parts)
        if route is None:
            raise _zoom_error(404, 404, "Not Found")  # body unverified
        name, args = route
        with self._lock:
            if fault is not None and fault.kind == "expire_token":
                self._expire_presented(headers)
            self._check_token(headers, name)
            handler: Callable[..., _Reply] = getattr(self, f"_op_{name}")
            return handler(*args, query=query, body=body, headers=headers)

    @staticmethod
    def _route(method: str, parts: list[str]) -> tuple[str, tuple[Any, ...]] | None:
        if len(parts) == 2 and parts[0] == "users" and method == "GET":
            return "user", (parts[1],)
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "meetings":
            return {"GET": ("list", (parts[1],)), "POST": ("create", (parts[1],))}.get(method)
        if len(parts) >= 2 and parts[0] == "meetings":
            mid = parts[1]  # checked after authentication, in _meeting()
            if len(parts) == 2:
                ops = {"GET": "get", "PATCH": "update", "DELETE": "delete"}
                return (ops[method], (mid,)) if method in ops else None
            if len(parts) == 3 and parts[2] == "invitation" and method == "GET":
                return "invitation", (mid,)
        return None

    # --- OAuth ---------------------------------------------------------------------------------

    def _token(self, query: dict[str, list[str]], headers: dict[str, str], body: bytes) -> _Reply:
        params = {k: v[-1] for k, v in query.items()}
        ctype = headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in ctype:
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        client_id, secret = _basic_auth(headers.get("authorization", ""))
        bad_client = {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}
        if not client_id or not secret:
            raise _Reply(400, bad_client)
        if params.get("grant_type") != "account_credentials":
            raise _Reply(
                400, {"reason": "unsupported grant type", "error": "unsupported_grant_type"}
            )
        account_id = params.get("account_id", "")
        if not account_id:
            # Body unverified.
            raise _Reply(
                400,
                {"reason": "Invalid request : account_id is required.", "error": "invalid_request"},
            )
        if self.require is not None:
            want_account, want_client, want_secret = self.require
            if (client_id, secret) != (want_client, want_secret):
                raise _Reply(400, bad_client)
            if account_id != want_account:
                # Body unverified.
                raise _Reply(400, {"reason": "Invalid account_id", "error": "invalid_request"})
        token = _fake_jwt(account_id, client_id)
        now = self.clock()
        with self._lock:
            if self.single_token:
                # Zoom in 2023: a new token invalidated the previous one (moodle-mod_zoom#473).
                for t in self._tokens.values():
                    if t.get("client") == client_id:
                        t["expired"] = True
            self._tokens[_digest(token)] = {
                "expires_at": _zulu(now + dt.timedelta(seconds=self.token_ttl)),
                "client": client_id,
                "scopes": list(self.scopes),
            }
            self._save()
        return _Reply(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.token_ttl,
                "scope": " ".join(self.scopes),
                "api_url": self.base_url,
            },
        )

    def _expire_presented(self, headers: dict[str, str]) -> None:
        token = _bearer(headers.get("authorization", ""))
        entry = self._tokens.get(_digest(token)) if token else None
        if entry is not None:
            entry["expired"] = True

    def _check_token(self, headers: dict[str, str], op: str) -> None:
        token = _bearer(headers.get("authorization", ""))
        entry = self._tokens.get(_digest(token)) if token else None
        if entry is None:
            raise _zoom_error(401, 124, "Invalid access token.")
        if entry.get("expired") or _parse_zulu(entry["expires_at"]) <= self.clock():
            raise _zoom_error(401, 124, "Access token has expired.")
        granted = set(entry.get("scopes", ALL_SCOPES))
        if not granted & set(ROUTE_SCOPES[op]):
            # Real answers show 400/4711 for the code the errors page lists as 4700.
            raise _zoom_error(
                400,
                4711,
                f"Invalid access token, does not contain scopes:[{', '.join(ROUTE_SCOPES[op])}].",
            )

    # --- users ---------------------------------------------------------------------------------

    def _user(self, user_id: str) -> dict[str, Any]:
        key = user_id.strip().lower()
        if key == "me":
            key = self.users[0] if self.users else "host@example.org"
        if self.users is not None:
            by_id = {_user_id(u): u for u in self.users}
            email = key if key in self.users else by_id.get(user_id.strip())
        else:
            email = key if "@" in key else self._email_for_id(user_id.strip())
        if not email:
            raise _zoom_error(404, 1001, f"User does not exist: {user_id}.")
        return _user_json(email, self.default_timezone, self.clock())

    def _email_for_id(self, uid: str) -> str | None:
        for m in self._meetings.values():
            if m.get("host_id") == uid:
                return str(m.get("host_email"))
        return None

    def _op_user(self, user_id: str, **_: Any) -> _Reply:
        return _Reply(200, self._user(user_id))

    # --- meetings ------------------------------------------------------------------------------

    def _op_create(self, user_id: str, *, body: bytes, headers: dict[str, str], **_: Any) -> _Reply:
        user = self._user(user_id)
        data = _json_body(body, headers)
        _validate(data, creating=True)
        self._count_daily(user["email"])
        now = self.clock()
        tz = data.get("timezone") or user["timezone"]
        mtype = int(data.get("type", 2))
        start = now
        if mtype != 1 and data.get("start_time"):
            start = max(_parse_start(str(data["start_time"]), tz), now)  # past -> now
        queued = self._queue.pop(0) if self._queue else None
        mid = queued.id if queued else self._new_id()
        if mid in self._meetings:
            raise _zoom_error(400, 3000, f"Meeting {mid} already exists.")  # sandbox-only guard
        password = queued.password if queued else str(data.get("password") or self._digits(6))
        pstn = (
            queued.pstn_password
            if queued
            else (password if password.isdigit() else self._digits(6))
        )
        encrypted = _token_text(self._rng, 32)
        join_url = f"https://{self.join_host}/j/{mid}"
        if self.embed_passcode:
            join_url += f"?pwd={encrypted}.1"
        settings_in = dict(data.get("settings") or {})
        countries = [c.upper() for c in settings_in.get("global_dial_in_countries") or ()] or list(
            self.default_dial_in_countries
        )
        settings = _default_settings()
        settings.update({k: v for k, v in settings_in.items() if k in settings})
        settings["global_dial_in_countries"] = countries
        settings["global_dial_in_numbers"] = _dial_in_numbers(
            countries, queued.dial_in if queued else None
        )
        meeting = {
            "uuid": base64.b64encode(self._rng.randbytes(16)).decode(),
            "id": mid,
            "host_id": user["id"],
            "host_email": user["email"],
            "topic": str(data.get("topic", "Zoom Meeting")),
            "type": mtype,
            "status": "waiting",
            "start_time": _zulu(start),
            "duration": int(data.get("duration", 60)),
            "timezone": tz,
            "agenda": str(data.get("agenda", "")),
            "created_at": _zulu(now),
            "start_url": f"https://{self.join_host}/s/{mid}?zak={_token_text(self._rng, 40)}",
            "join_url": join_url,
            "password": password,
            "h323_password": pstn,
            "pstn_password": pstn,
            "encrypted_password": encrypted,
            "settings": settings,
            "pre_schedule": False,
            "creation_source": "open_api",
        }
        self._meetings[mid] = meeting
        self._save()
        return _Reply(201, copy.deepcopy(meeting))

    def _meeting(self, raw_id: str) -> dict[str, Any]:
        meeting = self._meetings.get(int(raw_id)) if raw_id.isdigit() else None
        if meeting is None:
            mid = raw_id
            raise _zoom_error(404, 3001, f"Meeting does not exist: {mid}.")
        return meeting

    def _op_get(self, mid: str, **_: Any) -> _Reply:
        return _Reply(200, copy.deepcopy(self._meeting(mid)))

    def _op_update(self, mid: str, *, body: bytes, headers: dict[str, str], **_: Any) -> _Reply:
        meeting = self._meeting(mid)
        data = _json_body(body, headers)
        _validate(data, creating=False)
        self._count_daily(str(meeting["host_email"]))
        now = self.clock()
        tz = str(data.get("timezone") or meeting["timezone"])
        for key in ("topic", "agenda", "duration", "type", "password"):
            if key in data:
                meeting[key] = data[key]
        meeting["timezone"] = tz
        if data.get("start_time"):
            start = _parse_start(str(data["start_time"]), tz)
            if start > now:  # a past start_time is ignored ([M])
                meeting["start_time"] = _zulu(start)
        if "password" in data:
            pw = str(data["password"])
            meeting["pstn_password"] = meeting["h323_password"] = (
                pw if pw.isdigit() else self._digits(6)
            )
        settings_in = data.get("settings") or {}
        settings = meeting["settings"]
        settings.update({k: v for k, v in settings_in.items() if k in settings})
        if "global_dial_in_countries" in settings_in:
            countries = [c.upper() for c in settings_in["global_dial_in_countries"]]
            first = settings["global_dial_in_numbers"][:1]
            keep = first[0]["number"] if first else None
            settings["global_dial_in_countries"] = countries
            settings["global_dial_in_numbers"] = _dial_in_numbers(countries, keep)
        self._save()
        return _Reply(204)

    def _op_delete(self, mid: str, **_: Any) -> _Reply:
        del self._meetings[self._meeting(mid)["id"]]
        self._save()
        return _Reply(204)

    def _op_invitation(self, mid: str, **_: Any) -> _Reply:
        m = self._meeting(mid)
        return _Reply(200, {"invitation": _invitation(m), "sip_links": []})

    def _op_list(self, user_id: str, *, query: dict[str, list[str]], **_: Any) -> _Reply:
        user = self._user(user_id)
        q = {k: v[-1] for k, v in query.items()}
        now = self.clock()
        token = q.get("next_page_token", "")
        if token:
            page = self._pages.get(token)
            if page is None or _parse_zulu(page["expires_at"]) <= now:
                # Unverified: Zoom's exact answer to an unknown or expired page token.
                raise _zoom_error(400, 300, "The next page token is invalid or expired.")
            kind, size, offset = page["type"], page["page_size"], page["offset"]
        else:
            kind = q.get("type", "scheduled")
            if kind not in _LIST_TYPES:
                raise _zoom_error(400, 300, f"Invalid parameter: type ({kind}).")
            try:
                size = int(q.get("page_size", "30"))
            except ValueError:
                raise _invalid("page_size") from None
            size = min(max(size, 1), 300, self.max_page_size)
            offset = 0
        chosen = sorted(
            (
                m
                for m in self._meetings.values()
                if m["host_id"] == user["id"] and m["type"] != 1 and _listed(m, kind, now)
            ),
            key=lambda m: (m["start_time"], m["id"]),
        )
        page_items = chosen[offset : offset + size]
        next_token = ""
        if offset + size < len(chosen):
            next_token = _token_text(self._rng, 32)
            self._pages[next_token] = {
                "type": kind,
                "page_size": size,
                "offset": offset + size,
                "expires_at": _zulu(now + PAGE_TOKEN_TTL),
            }
        return _Reply(
            200,
            {
                "page_size": size,
                "total_records": len(chosen),
                "next_page_token": next_token,
                "meetings": [_list_item(m) for m in page_items],
            },
        )

    def _count_daily(self, email: str) -> None:
        key = f"{email.lower()}|{self.clock().astimezone(UTC).date().isoformat()}"
        used = self._daily.get(key, 0)
        if used >= self.daily_limit:
            # As captured (devforum.zoom.us/t/18928): no Retry-After, no X-RateLimit-Type.
            raise _zoom_error(
                429,
                429,
                f"You have exceeded the daily rate limit ({self.daily_limit}) of Meeting "
                "Create/Update API requests permitted for this particular user. You may resume "
                "these requests at GMT 00:00:00.",
            )
        self._daily[key] = used + 1

    def _new_id(self) -> int:
        while True:
            mid = self._rng.randint(71_000_000_000, 99_999_999_999)
            if mid not in self._meetings:
                return mid

    def _digits(self, n: int) -> str:
        return "".join(self._rng.choice("0123456789") for _ in range(n))

    def fault_reply(self, fault: Fault, method: str, path: str) -> _Reply:
        """The answer an injected 429/5xx fault gives."""
        category = _rate_category(method, path)
        if fault.kind == "429":
            headers = {"X-RateLimit-Category": category}
            if fault.daily:
                headers["X-RateLimit-Type"] = "Daily-limit"
                message = (
                    "You have reached the maximum daily rate limit for this API. Refer to the "
                    "response header for details on when you can make another request."
                )
            else:
                headers["X-RateLimit-Type"] = "QPS"
                message = (
                    "You have reached the maximum per-second rate limit for this API. Try again "
                    "later."
                )
            if fault.retry_after is not None:
                headers["Retry-After"] = fault.retry_after
            return _Reply(429, {"code": 429 if fault.daily else 4001, "message": message}, headers)
        if fault.kind == "502":
            return _Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
        status = int(fault.kind)
        return _Reply(status, {"code": status, "message": "Internal Error."})  # body unverified


# --- HTTP plumbing -------------------------------------------------------------------------------


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self, addr: tuple[str, int], handler: type[BaseHTTPRequestHandler], sandbox: ZoomSandbox
    ) -> None:
        self.sandbox = sandbox
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(addr, handler)

    def track(self, conn: socket.socket, *, open: bool) -> None:
        with self._open_lock:
            (self._open.add if open else self._open.discard)(conn)

    def close_open_connections(self) -> None:
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts in tests) reset connections; that is expected here.
        log.debug("Zoom sandbox: connection from %s ended abruptly", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: _Server
    server_version = "ZoomSandbox/1.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open=True)

    def finish(self) -> None:
        self.server.track(self.connection, open=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("Zoom sandbox: " + format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        sandbox = self.server.sandbox
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        shown = dict(headers)
        if "authorization" in shown:
            scheme = shown["authorization"].split(" ", 1)[0]
            shown["authorization"] = f"{scheme} [redacted]"
        rec = RecordedRequest(self.command, path, split.query, query, shown, body)
        sandbox._record(rec)
        fault = sandbox._take_fault(self.command, path)
        if fault is not None:
            rec.fault = fault.kind
        if fault is not None and fault.kind in ("429", "500", "502", "503"):
            reply = sandbox.fault_reply(fault, self.command, path)
        else:
            try:
                reply = sandbox._dispatch(self.command, path, query, headers, body, fault)
            except _Reply as r:
                reply = r
        if fault is not None and fault.kind in ("drop_answer", "drop_create_answer"):
            self.close_connection = True  # processed, but the answer never leaves
            return
        if fault is not None and fault.kind == "slow" and sandbox._stopping.wait(fault.delay):
            self.close_connection = True  # shutting down: do not answer late
            return
        self._write(rec, reply, path)

    def _write(self, rec: RecordedRequest, reply: _Reply, path: str) -> None:
        headers = dict(reply.headers)
        data = b""
        if isinstance(reply.body, str):
            data = reply.body.encode()
            headers["Content-Type"] = "text/html;charset=utf-8"
        elif reply.body is not None:
            data = json.dumps(reply.body, ensure_ascii=False).encode()
            headers["Content-Type"] = JSON_TYPE
        if path.startswith("/v2/"):
            headers.setdefault("X-RateLimit-Category", _rate_category(self.command, path))
        headers["x-zm-trackingid"] = "sandbox_" + secrets.token_hex(8)
        headers["Content-Length"] = str(len(data))
        rec.status = reply.status
        rec.response_headers = headers
        rec.response_body = data
        try:
            self.send_response(reply.status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if data:
                self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client has gone (e.g. it timed out)


# --- pure helpers --------------------------------------------------------------------------------


def _rate_category(method: str, path: str) -> str:
    """Zoom's label: listing meetings is Medium, every other operation we serve Light."""
    return "Medium" if method == "GET" and path.endswith("/meetings") else "Light"


def _basic_auth(value: str) -> tuple[str, str]:
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return "", ""
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return "", ""
    client_id, _, secret = decoded.partition(":")
    return client_id, secret


def _bearer(value: str) -> str:
    scheme, _, token = value.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _fake_jwt(account_id: str, client_id: str) -> str:
    """Shaped like Zoom's JWT access tokens; signed with nothing."""
    head = _b64url(json.dumps({"alg": "HS512", "v": "2.0", "kid": "sandbox"}).encode())
    claims = {
        "aud": "https://oauth.zoom.us",
        "uid": account_id,
        "sub": client_id,
        "jti": secrets.token_hex(8),
    }
    return f"{head}.{_b64url(json.dumps(claims).encode())}.{_b64url(secrets.token_bytes(32))}"


def _token_text(rng: random.Random, n: int) -> str:
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(rng.choice(alphabet) for _ in range(n))


def _user_id(email: str) -> str:
    return _b64url(hashlib.sha256(email.lower().encode()).digest())[:22]


def _user_json(email: str, timezone: str, now: dt.datetime) -> dict[str, Any]:
    local = email.split("@", 1)[0]
    first, _, last = local.replace("_", ".").partition(".")
    uid = _user_id(email)
    pmi = int(hashlib.sha256(email.encode()).hexdigest(), 16) % 9_000_000_000 + 1_000_000_000
    return {
        "id": uid,
        "first_name": first.capitalize(),
        "last_name": last.capitalize(),
        "display_name": f"{first.capitalize()} {last.capitalize()}".strip(),
        "email": email,
        "type": 2,
        "role_name": "Admin",
        "pmi": pmi,
        "use_pmi": False,
        "personal_meeting_url": f"https://zoom.us/j/{pmi}",
        "timezone": timezone,
        "verified": 1,
        "dept": "",
        "created_at": "2020-01-06T09:00:00Z",
        "user_created_at": "2020-01-06T09:00:00Z",
        "last_login_time": _zulu(now - dt.timedelta(days=1)),
        "last_client_version": "6.3.0.44805(mac)",
        "pic_url": "",
        "language": "de-DE",
        "phone_number": "",
        "status": "active",
        "role_id": "1",
        "account_id": "sandbox-account",
        "account_number": 10009239,
        "cluster": "eu01",
        "jid": f"{uid.lower()}@xmpp.zoom.us",
        "group_ids": [],
        "im_group_ids": [],
        "login_types": [100],
    }


def _json_body(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    if "json" not in headers.get("content-type", "") or not body:
        raise _zoom_error(400, 300, "Request Body should be a valid JSON object.")
    try:
        data = json.loads(body)
    except ValueError:
        raise _zoom_error(400, 300, "Request Body should be a valid JSON object.") from None
    if not isinstance(data, dict):
        raise _zoom_error(400, 300, "Request Body should be a valid JSON object.")
    return data


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _validate(data: dict[str, Any], *, creating: bool) -> None:
    """Reject what Zoom's request schema rejects, for the fields we model."""
    bad: list[str] = []
    checks: dict[str, Callable[[Any], bool]] = {
        "topic": lambda v: isinstance(v, str) and len(v) <= 200,
        "agenda": lambda v: isinstance(v, str) and len(v) <= 2000,
        "duration": lambda v: _is_int(v) and 1 <= v <= 1440,
        "type": lambda v: _is_int(v) and v in (1, 2, 3, 8, 10),
        "password": lambda v: (
            isinstance(v, str) and len(v) <= 10 and re.fullmatch(r"[A-Za-z0-9@_*-]*", v) is not None
        ),
        "timezone": lambda v: isinstance(v, str) and _known_zone(v),
        "start_time": lambda v: isinstance(v, str) and _valid_start(v),
        "settings": lambda v: isinstance(v, dict),
    }
    for key, ok in checks.items():
        if key in data and not ok(data[key]):
            bad.append(key)
    settings = data.get("settings")
    if isinstance(settings, dict):
        s_checks: dict[str, Callable[[Any], bool]] = {
            "global_dial_in_countries": lambda v: (
                isinstance(v, list)
                and all(isinstance(c, str) and re.fullmatch(r"[A-Za-z]{2}", c) for c in v)
            ),
            "alternative_hosts": lambda v: isinstance(v, str),
            "approval_type": lambda v: _is_int(v) and v in (0, 1, 2),
            "jbh_time": lambda v: _is_int(v) and v in (0, 5, 10, 15),
            "waiting_room": lambda v: isinstance(v, bool),
            "join_before_host": lambda v: isinstance(v, bool),
            "mute_upon_entry": lambda v: isinstance(v, bool),
        }
        bad += [
            f"settings.{k}" for k, ok in s_checks.items() if k in settings and not ok(settings[k])
        ]
    if bad:
        raise _invalid(*bad)


def _known_zone(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _valid_start(value: str) -> bool:
    m = _START_RE.match(value)
    if not m:
        return False
    try:
        dt.datetime.fromisoformat(m.group(1))
    except ValueError:
        return False
    return True


def _parse_start(value: str, timezone: str) -> dt.datetime:
    """``…Z`` is GMT and ignores ``timezone``; without offset it is local time there."""
    m = _START_RE.match(value)
    assert m is not None  # validated before
    naive = dt.datetime.fromisoformat(m.group(1))
    if m.group(3):
        return naive.replace(tzinfo=UTC)
    return naive.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)


def _default_settings() -> dict[str, Any]:
    return {
        "host_video": False,
        "participant_video": False,
        "cn_meeting": False,
        "in_meeting": False,
        "join_before_host": False,
        "jbh_time": 0,
        "mute_upon_entry": False,
        "watermark": False,
        "use_pmi": False,
        "approval_type": 2,
        "audio": "both",
        "auto_recording": "none",
        "enforce_login": False,
        "enforce_login_domains": "",
        "alternative_hosts": "",
        "alternative_hosts_email_notification": True,
        "close_registration": False,
        "show_share_button": False,
        "allow_multiple_devices": False,
        "registrants_confirmation_email": True,
        "waiting_room": False,
        "request_permission_to_unmute_participants": False,
        "global_dial_in_countries": [],
        "global_dial_in_numbers": [],
        "registrants_email_notification": True,
        "meeting_authentication": False,
        "encryption_type": "enhanced_encryption",
        "approved_or_denied_countries_or_regions": {"enable": False},
        "breakout_room": {"enable": False},
        "internal_meeting": False,
        "participant_focused_meeting": False,
        "push_change_to_calendar": False,
        "email_notification": True,
        "host_save_video_order": False,
        "device_testing": False,
        "focus_mode": False,
        "private_meeting": False,
        "show_join_info": False,
    }


def _dial_in_numbers(countries: Sequence[str], first: str | None) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    seen: set[str] = set()
    if first:
        country = next((c for p, c in _PREFIX_COUNTRY.items() if first.startswith(p)), "")
        name, table = DIAL_IN_TABLE.get(country, ("", ()))
        city = next((city for city, num, _ in table if _digits(num) == _digits(first)), "")
        out.append(
            {
                "country": country,
                "country_name": name,
                "city": city,
                "number": first,
                "type": "toll",
            }
        )
        seen.add(_digits(first))
    for c in countries:
        name, table = DIAL_IN_TABLE.get(c.upper(), ("", ()))
        for city, number, kind in table:
            if _digits(number) in seen:
                continue
            seen.add(_digits(number))
            out.append(
                {
                    "country": c.upper(),
                    "country_name": name,
                    "city": city,
                    "number": number,
                    "type": kind,
                }
            )
    return out


def _digits(number: str) -> str:
    return re.sub(r"[^\d+]", "", number)


def _listed(m: dict[str, Any], kind: str, now: dt.datetime) -> bool:
    start = _parse_zulu(m["start_time"])
    end = start + dt.timedelta(minutes=int(m["duration"]))
    if kind in ("upcoming", "upcoming_meetings"):
        return end >= now
    if kind == "previous_meetings":
        return end < now
    if kind == "live":
        return m.get("status") == "started"
    # scheduled: everything not yet expired (one-off ids expire 30 days after their date).
    return now <= end + dt.timedelta(days=30)


def _list_item(m: dict[str, Any]) -> dict[str, Any]:
    return {
        "uuid": m["uuid"],
        "id": m["id"],
        "host_id": m["host_id"],
        "topic": m["topic"],
        "type": m["type"],
        "start_time": m["start_time"],
        "duration": m["duration"],
        "timezone": m["timezone"],
        "agenda": str(m.get("agenda", ""))[:LIST_AGENDA_MAX],
        "created_at": m["created_at"],
        "join_url": m["join_url"],
    }


def _group(mid: int) -> str:
    s = str(mid)
    if len(s) == 11:
        return f"{s[:3]} {s[3:7]} {s[7:]}"
    if len(s) in (9, 10):
        return f"{s[:3]} {s[3:6]} {s[6:]}"
    return s


def _invitation(m: dict[str, Any]) -> str:
    """Zoom's English invitation template ([M] example), lines ending in CRLF."""
    start = _parse_zulu(m["start_time"]).astimezone(ZoneInfo(m["timezone"]))
    numbers = m["settings"].get("global_dial_in_numbers", [])
    lines = [
        f"{m['host_email']} is inviting you to a scheduled Zoom meeting.",
        "",
        f"Topic: {m['topic']}",
        f"Time: {start:%b %d, %Y %I:%M %p} {m['timezone']}",
        "",
        "Join Zoom Meeting",
        m["join_url"],
        "",
        f"Meeting ID: {_group(m['id'])}",
        f"Passcode: {m['password']}",
        "",
        "---",
        "",
        "One tap mobile",
    ]
    for n in numbers[:2]:
        label = f"{n['country_name']} ({n['city']})" if n["city"] else n["country_name"]
        lines.append(f"{_digits(n['number'])},,{m['id']}#,,,,*{m['pstn_password']}# {label}")
    lines += ["", "---", "", "Dial by your location"]
    for n in numbers:
        lines.append(f"• {n['number']} {n['country_name']}".rstrip())
    lines += [
        "",
        f"Meeting ID: {_group(m['id'])}",
        f"Passcode: {m['pstn_password']}",
        "",
        f"Find your local number: https://{m['join_url'].split('/')[2]}/u/sandbox",
        "",
    ]
    return "\r\n".join(lines)


# --- command line --------------------------------------------------------------------------------


def run_sandbox(
    port: int,
    state_file: Path,
    join_host: str,
    *,
    host: str = "127.0.0.1",
    stop: threading.Event | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve until Ctrl-C (or until ``stop`` is set); meetings persist in ``state_file``."""
    sandbox = ZoomSandbox(state_file=state_file, host=host, port=port, join_host=join_host)
    with sandbox:
        echo(f"Zoom sandbox on {sandbox.base_url} (meetings kept in {state_file}).")
        echo("Point session-bot at it with:")
        echo(f"  SESSION_BOT_ZOOM_OAUTH_URL={sandbox.oauth_url}")
        echo(f"  SESSION_BOT_ZOOM_API_URL={sandbox.api_url}")
        echo("Any non-empty account id, client id and secret are accepted. Ctrl-C stops it.")
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            echo("Zoom sandbox stopped.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m session_bot.sandbox.zoom", description="Serve a local Zoom API."
    )
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", type=Path, default=Path("var/zoom-sandbox.json"))
    parser.add_argument("--join-host", default="zoom.us")
    args = parser.parse_args(argv)
    run_sandbox(args.port, args.state_file, args.join_host, host=args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
