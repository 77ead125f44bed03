"""Faults a test injects into the Zoom sandbox, and the answers the 429/5xx kinds give."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from session_bot.sandbox.zoom_wire import Reply, rate_category

# Kinds answered in place of the operation; the others change how the operation is answered.
ANSWERING_KINDS = ("429", "500", "502", "503")
DROPPING_KINDS = ("drop_answer", "drop_create_answer")


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
class _Armed:
    fault: Fault
    remaining: int


class FaultQueue:
    """Injected faults in the order given; each request takes the first that matches."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._armed: list[_Armed] = []

    def inject(self, fault: Fault) -> None:
        with self._lock:
            self._armed.append(_Armed(fault, fault.times))

    def clear(self) -> None:
        with self._lock:
            self._armed.clear()

    def take(self, method: str, path: str) -> Fault | None:
        with self._lock:
            for entry in self._armed:
                if entry.remaining > 0 and entry.fault.matches(method, path):
                    entry.remaining -= 1
                    return entry.fault
            return None


def fault_reply(fault: Fault, method: str, path: str) -> Reply:
    """The answer an injected 429/5xx fault gives."""
    category = rate_category(method, path)
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
                "You have reached the maximum per-second rate limit for this API. Try again later."
            )
        if fault.retry_after is not None:
            headers["Retry-After"] = fault.retry_after
        return Reply(429, {"code": 429 if fault.daily else 4001, "message": message}, headers)
    if fault.kind == "502":
        return Reply(502, "<html><body><h1>502 Bad Gateway</h1></body></html>")
    status = int(fault.kind)
    return Reply(status, {"code": status, "message": "Internal Error."})  # body unverified
