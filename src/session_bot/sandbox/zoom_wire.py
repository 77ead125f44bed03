"""What crosses the Zoom sandbox's wire: answers, Zoom's error bodies and time format, records.

Shared by every part of the sandbox; imports nothing of the sandbox itself.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from dataclasses import dataclass, field
from typing import Any

UTC = dt.UTC
JSON_TYPE = "application/json;charset=UTF-8"


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


class Reply(Exception):
    """The answer to a request; raised so that checks deep inside an operation can end it."""

    def __init__(
        self, status: int, body: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


def zoom_error(status: int, code: int, message: str, **extra: Any) -> Reply:
    return Reply(status, {"code": code, "message": message, **extra})


def invalid(*fields: str) -> Reply:
    return zoom_error(
        400,
        300,
        "Validation Failed.",
        errors=[{"field": f, "message": "Invalid field."} for f in fields],
    )


def zulu(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_zulu(s: str) -> dt.datetime:
    return dt.datetime.fromisoformat(s).astimezone(UTC)


def rate_category(method: str, path: str) -> str:
    """Zoom's label: listing meetings is Medium, every other operation we serve Light."""
    return "Medium" if method == "GET" and path.endswith("/meetings") else "Light"


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
