"""Server-to-Server OAuth: one access token per installation, shared through a cache.

A token another process asks for may replace ours (moodle-mod_zoom#473), so all processes of one
installation share one cached token and ask for a new one only when it is about to expire or
Zoom has just refused it.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from typing import Protocol

from session_bot.adapters.zoom.answers import token_grant
from session_bot.adapters.zoom.transport import Transport

# Admins filter the log by component, and every Zoom line has always come under this name.
log = logging.getLogger("session_bot.zoom")

UTC = dt.UTC
#: Renew a cached token this long before Zoom says it expires.
TOKEN_MARGIN = dt.timedelta(minutes=5)


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


class AccessTokens:
    """Access tokens of one Server-to-Server OAuth app, cached in ``cache``."""

    def __init__(
        self,
        *,
        oauth_url: str,
        account_id: str,
        client_id: str,
        client_secret: str,
        clock: Callable[[], dt.datetime],
        cache: TokenCache,
        transport: Transport,
    ) -> None:
        self.oauth_url = oauth_url
        self.cache = cache
        self._account_id = account_id
        self._client_id = client_id
        self._client_secret = client_secret
        self._clock = clock
        self._transport = transport
        self._lock = threading.Lock()

    def __repr__(self) -> str:  # never show the credentials
        return f"AccessTokens(oauth_url={self.oauth_url!r})"

    def token(self, *, force_new: bool = False, rejected: str | None = None) -> str:
        """A token valid for at least ``TOKEN_MARGIN``; ``rejected`` was just refused by Zoom."""
        with self._lock:
            now = self._clock()
            cached = None if force_new else self.cache.load()
            if cached is not None:
                token, expires_at = cached
                if expires_at.tzinfo is None:  # some stores (SQLite) drop the zone; we save UTC
                    expires_at = expires_at.replace(tzinfo=UTC)
                if token != rejected and expires_at - TOKEN_MARGIN > now:
                    return token
            token, expires_in = self._fetch()
            self.cache.save(token, now + dt.timedelta(seconds=expires_in))
            return token

    def _fetch(self) -> tuple[str, int]:
        resp = self._transport.exchange(
            "token",
            "POST",
            f"{self.oauth_url}/oauth/token",
            data={"grant_type": "account_credentials", "account_id": self._account_id},
            auth=(self._client_id, self._client_secret),
            idempotent=True,
        )
        token, expires_in = token_grant(resp)
        log.info("obtained a Zoom access token valid for %d s", expires_in)
        return token, expires_in
