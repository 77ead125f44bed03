"""Reading Zoom's answers: the one place where what Zoom says becomes our error family.

An answer that is not what the call expected becomes a ``session_bot.core.errors`` Zoom error
whose message names the setting or Zoom page to fix. ``transport`` translates the failures that
bring no answer at all (``requests`` exceptions) and the retries that run out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from session_bot.core.errors import ZoomAuthError, ZoomError, ZoomNotFound, ZoomUnknownUser
from session_bot.core.meeting import group_meeting_id

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
#: Each operation in words, for messages: "Could not reach Zoom to {WHAT[op]}".
WHAT = {
    "create": "create a meeting",
    "get": "read a meeting",
    "update": "update a meeting",
    "delete": "delete a meeting",
    "list": "list the host's meetings",
    "user": "read the host user",
    "invitation": "read a meeting invitation",
    "token": "get an access token",
}


@dataclass
class ErrorBody:
    code: int | None
    message: str
    fields: list[str]


def error_body(resp: requests.Response) -> ErrorBody:
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
        return ErrorBody(code, message, fields)
    text = resp.text or ""
    m_code = re.search(r"<code>\s*(\d+)\s*</code>", text)
    m_msg = re.search(r"<message>(.*?)</message>", text, re.S)
    if m_msg:
        return ErrorBody(int(m_code.group(1)) if m_code else None, m_msg.group(1).strip(), [])
    flat = " ".join(re.sub(r"<[^>]+>", " ", text).split())
    return ErrorBody(None, flat[:200], [])


def json_object(resp: requests.Response, op: str) -> dict[str, Any]:
    """The JSON object of a successful answer; anything else means a wrong URL."""
    try:
        data = resp.json()
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise ZoomError(
            f"Zoom answered the request to {WHAT[op]} with HTTP {resp.status_code} but no "
            f"JSON object (Content-Type {resp.headers.get('Content-Type', '?')!r}). Check that "
            "SESSION_BOT_ZOOM_API_URL points at Zoom's API (https://api.zoom.us/v2).",
            status=resp.status_code,
        )
    return data


def api_error(op: str, path: str, resp: requests.Response, *, user: str) -> ZoomError:
    """Zoom's error answer as one of ours, with a message naming the fix."""
    status = resp.status_code
    body = error_body(resp)
    code = body.code
    zoom_says = f"Zoom: {body.message}" if body.message else f"HTTP {status}"
    if code == 1001 or (status == 404 and "user" in body.message.lower()):
        return ZoomUnknownUser(
            f"Zoom has no user {user!r} in this account ({zoom_says}). Set "
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
            f"The Zoom app may not {WHAT[op]}: its token lacks a scope ({zoom_says}). In "
            "the Zoom App Marketplace, open your Server-to-Server OAuth app → Scopes, add "
            f"{scopes}, save and activate the app again, then run `session-bot check`.",
            status=status,
            code=code,
        )
    if status == 401:
        return ZoomAuthError(
            f"Zoom refused a freshly issued access token to {WHAT[op]} ({zoom_says}). Check "
            "that the Server-to-Server OAuth app is activated and that "
            "SESSION_BOT_ZOOM_ACCOUNT_ID, SESSION_BOT_ZOOM_CLIENT_ID and "
            "SESSION_BOT_ZOOM_CLIENT_SECRET belong to the same app.",
            status=status,
            code=code,
        )
    if code == 3161 or status == 403:
        return ZoomAuthError(
            f"Zoom does not let {user!r} {WHAT[op]} ({zoom_says}). In the Zoom admin "
            "portal give this user a licence with meeting hosting, or set "
            "SESSION_BOT_ZOOM_USER to a user who may host meetings.",
            status=status,
            code=code,
        )
    fields = f" (fields: {', '.join(body.fields)})" if body.fields else ""
    return ZoomError(
        f"Zoom rejected the request to {WHAT[op]} with HTTP {status}"
        f"{f', code {code}' if code is not None else ''}: {body.message or 'no message'}"
        f"{fields}. If the plan's topic, times or alternative hosts are unusual, check them; "
        "check SESSION_BOT_ZOOM_API_URL (https://api.zoom.us/v2); otherwise please report "
        "this as a session-bot bug.",
        status=status,
        code=code,
    )


def token_grant(resp: requests.Response) -> tuple[str, int]:
    """``(access_token, expires_in)`` from the token endpoint's answer, or the error it means."""
    if resp.status_code != 200:
        raise token_error(resp)
    data = json_object(resp, "token")
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
    return token, expires_in


def token_error(resp: requests.Response) -> ZoomError:
    """The token endpoint's refusal as one of ours; its body is OAuth's, not Zoom's API's."""
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
