"""The HTTP session to Zoom: timeouts, bounded retries, and ``requests``' exceptions made ours.

``Transport._send`` is the one place where a ``requests`` exception becomes one of ours; the
retry loop (``Transport.exchange``) is the one place where a failure that outlasts the retries
becomes ``ZoomUnavailable``, ``ZoomRateLimited`` or ``LostCreateAnswer``. Any answer that is not
retried is returned as it is; ``answers`` reads it.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests
import urllib3.exceptions
from requests.auth import AuthBase

from session_bot.adapters.zoom.answers import WHAT, error_body
from session_bot.core.errors import ConfigError, LostCreateAnswer, ZoomRateLimited, ZoomUnavailable

# Admins filter the log by component, and every Zoom line has always come under this name.
log = logging.getLogger("session_bot.zoom")

UTC = dt.UTC
_USER_AGENT = "session-bot/0.1 (+https://github.com/; requests)"
#: Operations counted against Zoom's daily limit of about 100 per host.
_COUNTED = ("create", "update")


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


class Bearer(AuthBase):
    """Bearer auth as an ``AuthBase`` so requests never swaps in ~/.netrc credentials."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __call__(self, r: requests.PreparedRequest) -> requests.PreparedRequest:
        r.headers["Authorization"] = f"Bearer {self._token}"
        return r


class _TransportFailure(Exception):
    """Internal: no HTTP answer. ``maybe_sent`` is False only if the request surely never left."""

    def __init__(self, reason: str, *, maybe_sent: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.maybe_sent = maybe_sent


class Transport:
    """One ``requests`` session to Zoom's API and OAuth hosts, with the retry policy."""

    def __init__(
        self,
        *,
        clock: Callable[[], dt.datetime],
        timeout: float,
        retry: RetryPolicy,
        call_counter: Callable[[str], None] | None,
    ) -> None:
        self.timeout = timeout
        self.retry = retry
        self._clock = clock
        self._count = call_counter
        self._http = requests.Session()
        self._http.headers.update({"Accept": "application/json", "User-Agent": _USER_AGENT})

    def close(self) -> None:
        self._http.close()

    def exchange(
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
            if op in _COUNTED and self._count is not None:
                self._count(op)
            try:
                resp = self._send(method, url, **kw)
            except _TransportFailure as fail:
                wait = self._failure_wait(op, fail, attempt, idempotent=idempotent)
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
                wait = self._server_error_wait(op, resp, attempt, idempotent=idempotent)
                log.warning("Zoom %s: HTTP %d; retry %d in %.1f s", op, status, attempt, wait)
                policy.sleep(wait)
                continue
            return resp

    def _failure_wait(
        self, op: str, fail: _TransportFailure, attempt: int, *, idempotent: bool
    ) -> float:
        """Seconds to wait before retrying after no answer, or raise."""
        if not idempotent and fail.maybe_sent:
            raise LostCreateAnswer(
                f"The answer to the request to {WHAT[op]} was lost ({fail.reason}); Zoom "
                "may have created the meeting. Look for its marker before creating again.",
            ) from None
        if attempt >= self.retry.attempts:
            raise ZoomUnavailable(
                f"Could not reach Zoom to {WHAT[op]} ({fail.reason}) after {attempt} "
                f"attempts. Check the network or proxy and SESSION_BOT_ZOOM_API_URL / "
                "SESSION_BOT_ZOOM_OAUTH_URL; the next run tries again.",
            ) from None
        return self.retry.backoff_for(attempt)

    def _server_error_wait(
        self, op: str, resp: requests.Response, attempt: int, *, idempotent: bool
    ) -> float:
        """Seconds to wait before retrying a 5xx, or raise."""
        status = resp.status_code
        if not idempotent:
            raise LostCreateAnswer(
                f"Zoom answered HTTP {status} to the request to {WHAT[op]}; the meeting "
                "may have been created anyway. Look for its marker before creating again.",
                status=status,
            )
        if attempt >= self.retry.attempts:
            body = error_body(resp)
            raise ZoomUnavailable(
                f"Zoom answered HTTP {status} to the request to {WHAT[op]} {attempt} "
                f"times in a row ({body.message or 'no message'}). Zoom may have an "
                "outage (https://status.zoom.us); nothing to fix here, the next run "
                "tries again.",
                status=status,
                code=body.code,
            )
        return self.retry.backoff_for(attempt)

    def _rate_limit_wait(self, op: str, resp: requests.Response, attempt: int) -> float:
        """Seconds to wait before retrying a 429, or raise ``ZoomRateLimited``."""
        body = error_body(resp)
        now = self._clock()
        retry_at = retry_after(resp.headers.get("Retry-After"), now)
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
                f"Zoom's rate limit stops the request to {WHAT[op]} until "
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


def retry_after(value: str | None, now: dt.datetime) -> dt.datetime | None:
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
