"""``ZoomClient``: the few Zoom operations session-bot needs, each with the answer it expects.

What each call expects (passed as ``expected=``; anything else, after retries, is an error):

    token          POST {oauth_url}/oauth/token                 200 (form body, Basic auth)
    create         POST {api_url}/users/{user}/meetings         201  never retried blindly
    get            GET  {api_url}/meetings/{id}                 200  404/3001 -> ZoomNotFound
    update         PATCH {api_url}/meetings/{id}                204  (no body: read it back)
    delete         DELETE {api_url}/meetings/{id}               204  404/3001 -> ZoomNotFound
    list           GET  {api_url}/users/{user}/meetings         200  paged by next_page_token
    user           GET  {api_url}/users/{user}                  200  404/1001 -> ZoomUnknownUser
    invitation     GET  {api_url}/meetings/{id}/invitation      200
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import requests

from session_bot.adapters.zoom.answers import api_error, json_object
from session_bot.adapters.zoom.oauth import AccessTokens, MemoryTokenCache, TokenCache
from session_bot.adapters.zoom.transport import Bearer, RetryPolicy, Transport
from session_bot.core.errors import ConfigError
from session_bot.core.meeting import (
    MARKER_PREFIX,
    Meeting,
    MeetingRequest,
    group_meeting_id,
    parse_utc,
)

# Admins filter the log by component, and every Zoom line has always come under this name.
log = logging.getLogger("session_bot.zoom")

TOPIC_MAX = 200
AGENDA_MAX = 2000


@dataclass(frozen=True)
class MeetingSummary:
    """One entry of the meeting list; ``agenda`` is cut to 250 characters by Zoom."""

    id: int
    topic: str
    agenda: str
    start_time: dt.datetime
    join_url: str


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
        _check_settings(account_id, client_id, client_secret, user)
        self.api_url = api_url.rstrip("/")
        self.oauth_url = oauth_url.rstrip("/")
        self.user = user.strip()
        self.dial_in_countries = tuple(c.upper() for c in dial_in_countries)
        self._transport = Transport(
            clock=clock,
            timeout=timeout,
            retry=retry or RetryPolicy(),
            call_counter=call_counter,
        )
        self._tokens = AccessTokens(
            oauth_url=self.oauth_url,
            account_id=account_id.strip(),
            client_id=client_id.strip(),
            client_secret=client_secret,
            clock=clock,
            cache=token_cache if token_cache is not None else MemoryTokenCache(),
            transport=self._transport,
        )

    def __repr__(self) -> str:
        return f"ZoomClient(api_url={self.api_url!r}, user={self.user!r})"

    def __enter__(self) -> ZoomClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._transport.close()

    @property
    def timeout(self) -> float:
        return self._transport.timeout

    @property
    def retry(self) -> RetryPolicy:
        return self._transport.retry

    @property
    def _cache(self) -> TokenCache:
        # Tests look into the cache to prove what is (and is not) stored there.
        return self._tokens.cache

    # --- operations ----------------------------------------------------------------------------

    def create_meeting(self, req: MeetingRequest) -> Meeting:
        """POST a scheduled meeting. A lost answer raises ``LostCreateAnswer``, never a retry."""
        if not req.agenda.startswith(MARKER_PREFIX):
            # Without the marker a lost answer could not be adopted: two meetings for one session.
            raise ValueError("MeetingRequest.agenda must start with marker(series_id, date)")
        body = self._meeting_body(req)
        body["type"] = 2
        path = f"/users/{self._user_path}/meetings"
        resp = self._api("create", "POST", path, expected=201, json=body, idempotent=False)
        return Meeting.from_zoom(json_object(resp, "create"), self.dial_in_countries)

    def get_meeting(self, meeting_id: int) -> Meeting:
        resp = self._api("get", "GET", f"/meetings/{int(meeting_id)}", expected=200)
        return Meeting.from_zoom(json_object(resp, "get"), self.dial_in_countries)

    def update_meeting(self, meeting_id: int, req: MeetingRequest) -> Meeting:
        """PATCH (Zoom answers 204 without a body), then read the meeting back."""
        body = self._meeting_body(req)
        self._api("update", "PATCH", f"/meetings/{int(meeting_id)}", expected=204, json=body)
        return self.get_meeting(meeting_id)

    def delete_meeting(self, meeting_id: int) -> None:
        """Delete; a meeting that is already gone raises ``ZoomNotFound``."""
        self._api("delete", "DELETE", f"/meetings/{int(meeting_id)}", expected=204)

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
        resp = self._api("user", "GET", f"/users/{self._user_path}", expected=200)
        return json_object(resp, "user")

    def get_invitation(self, meeting_id: int) -> str:
        """Zoom's own invitation text for a meeting."""
        path = f"/meetings/{int(meeting_id)}/invitation"
        data = json_object(self._api("invitation", "GET", path, expected=200), "invitation")
        return str(data.get("invitation", ""))

    def check(self) -> dict[str, Any]:
        """Token + user lookup; raises the precise error when something is wrong."""
        self._tokens.token(force_new=True)
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
            path = f"/users/{self._user_path}/meetings"
            data = json_object(self._api("list", "GET", path, expected=200, params=params), "list")
            for m in data.get("meetings") or ():
                if not m.get("start_time"):
                    continue  # recurring meetings without fixed time never carry our marker
                yield MeetingSummary(
                    id=int(m["id"]),
                    topic=str(m.get("topic", "")),
                    agenda=str(m.get("agenda", "")),
                    start_time=parse_utc(str(m["start_time"])),
                    join_url=str(m.get("join_url", "")),
                )
            token = str(data.get("next_page_token") or "")
            if not token:
                return

    def _api(
        self,
        op: str,
        method: str,
        path: str,
        *,
        expected: int,
        params: Mapping[str, str | int] | None = None,
        json: Mapping[str, Any] | None = None,
        idempotent: bool = True,
    ) -> requests.Response:
        """One API call with auth; exactly one re-authentication on 401."""
        url = self.api_url + path
        kw: dict[str, Any] = {"params": params, "json": json, "idempotent": idempotent}
        token = self._tokens.token()
        resp = self._transport.exchange(op, method, url, auth=Bearer(token), **kw)
        if resp.status_code == 401:
            # Expired, or replaced by a token another process asked for (moodle-mod_zoom#473).
            log.info("Zoom refused the access token (401); authenticating once more")
            token = self._tokens.token(rejected=token)
            resp = self._transport.exchange(op, method, url, auth=Bearer(token), **kw)
        if resp.status_code == expected:
            return resp
        raise api_error(op, path, resp, user=self.user)


def _check_settings(account_id: str, client_id: str, client_secret: str, user: str) -> None:
    """Refuse settings Zoom would refuse, before any request, with the fix in the message."""
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
