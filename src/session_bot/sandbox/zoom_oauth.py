"""Server-to-Server OAuth of the Zoom sandbox: issuing tokens and checking them and their scopes."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import secrets
from typing import Any
from urllib.parse import parse_qs

from session_bot.sandbox.zoom_model import SandboxConfig, SandboxState
from session_bot.sandbox.zoom_wire import Reply, b64url, parse_zulu, zoom_error, zulu

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

_BAD_CLIENT = {"reason": "Invalid client_id or client_secret", "error": "invalid_client"}


class OAuth:
    """``POST /oauth/token`` and the bearer-token check in front of every API route."""

    def __init__(self, config: SandboxConfig, state: SandboxState) -> None:
        self.config = config
        self.state = state

    def token(
        self, query: dict[str, list[str]], headers: dict[str, str], body: bytes, api_url: str
    ) -> Reply:
        account_id, client_id = self._grant(query, headers, body)
        token = _fake_jwt(account_id, client_id)
        now = self.config.clock()
        with self.state.lock:
            if self.config.single_token:
                # Zoom in 2023: a new token invalidated the previous one (moodle-mod_zoom#473).
                for t in self.state.tokens.values():
                    if t.get("client") == client_id:
                        t["expired"] = True
            self.state.tokens[_digest(token)] = {
                "expires_at": zulu(now + dt.timedelta(seconds=self.config.token_ttl)),
                "client": client_id,
                "scopes": list(self.config.scopes),
            }
            self.state.save()
        return Reply(
            200,
            {
                "access_token": token,
                "token_type": "bearer",
                "expires_in": self.config.token_ttl,
                "scope": " ".join(self.config.scopes),
                "api_url": api_url,
            },
        )

    def _grant(
        self, query: dict[str, list[str]], headers: dict[str, str], body: bytes
    ) -> tuple[str, str]:
        """The account and client a token request may have a token for, or the refusal."""
        params = {k: v[-1] for k, v in query.items()}
        ctype = headers.get("content-type", "")
        if body and "application/x-www-form-urlencoded" in ctype:
            params.update({k: v[-1] for k, v in parse_qs(body.decode("utf-8", "replace")).items()})
        client_id, secret = _basic_auth(headers.get("authorization", ""))
        if not client_id or not secret:
            raise Reply(400, dict(_BAD_CLIENT))
        if params.get("grant_type") != "account_credentials":
            raise Reply(
                400, {"reason": "unsupported grant type", "error": "unsupported_grant_type"}
            )
        account_id = params.get("account_id", "")
        if not account_id:
            # Body unverified.
            raise Reply(
                400,
                {"reason": "Invalid request : account_id is required.", "error": "invalid_request"},
            )
        if self.config.require is not None:
            want_account, want_client, want_secret = self.config.require
            if (client_id, secret) != (want_client, want_secret):
                raise Reply(400, dict(_BAD_CLIENT))
            if account_id != want_account:
                # Body unverified.
                raise Reply(400, {"reason": "Invalid account_id", "error": "invalid_request"})
        return account_id, client_id

    def expire_presented(self, headers: dict[str, str]) -> None:
        """Caller holds the state lock."""
        token = _bearer(headers.get("authorization", ""))
        entry = self.state.tokens.get(_digest(token)) if token else None
        if entry is not None:
            entry["expired"] = True

    def expire_all(self) -> None:
        with self.state.lock:
            for t in self.state.tokens.values():
                t["expired"] = True
            self.state.save()

    def check(self, headers: dict[str, str], op: str) -> None:
        """Caller holds the state lock."""
        token = _bearer(headers.get("authorization", ""))
        entry = self.state.tokens.get(_digest(token)) if token else None
        if entry is None:
            raise zoom_error(401, 124, "Invalid access token.")
        if entry.get("expired") or parse_zulu(entry["expires_at"]) <= self.config.clock():
            raise zoom_error(401, 124, "Access token has expired.")
        granted = set(entry.get("scopes", ALL_SCOPES))
        if not granted & set(ROUTE_SCOPES[op]):
            # Real answers show 400/4711 for the code the errors page lists as 4700.
            raise zoom_error(
                400,
                4711,
                f"Invalid access token, does not contain scopes:[{', '.join(ROUTE_SCOPES[op])}].",
            )


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


def _fake_jwt(account_id: str, client_id: str) -> str:
    """Shaped like Zoom's JWT access tokens; signed with nothing."""
    head = b64url(json.dumps({"alg": "HS512", "v": "2.0", "kid": "sandbox"}).encode())
    claims: dict[str, Any] = {
        "aud": "https://oauth.zoom.us",
        "uid": account_id,
        "sub": client_id,
        "jti": secrets.token_hex(8),
    }
    return f"{head}.{b64url(json.dumps(claims).encode())}.{b64url(secrets.token_bytes(32))}"
