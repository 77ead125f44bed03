"""What the Zoom sandbox accepts in a request body: JSON objects that pass Zoom's schema checks."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from session_bot.sandbox.zoom_wire import UTC, invalid, zoom_error

START_RE = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d{1,3})?(Z)?$")


def json_body(body: bytes, headers: dict[str, str]) -> dict[str, Any]:
    if "json" not in headers.get("content-type", "") or not body:
        raise zoom_error(400, 300, "Request Body should be a valid JSON object.")
    try:
        data = json.loads(body)
    except ValueError:
        raise zoom_error(400, 300, "Request Body should be a valid JSON object.") from None
    if not isinstance(data, dict):
        raise zoom_error(400, 300, "Request Body should be a valid JSON object.")
    return data


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def validate(data: dict[str, Any], *, creating: bool) -> None:
    """Reject what Zoom's request schema rejects, for the fields we model."""
    bad: list[str] = []
    checks: dict[str, Callable[[Any], bool]] = {
        "topic": lambda v: isinstance(v, str) and len(v) <= 200,
        "agenda": lambda v: isinstance(v, str) and len(v) <= 2000,
        "duration": lambda v: is_int(v) and 1 <= v <= 1440,
        "type": lambda v: is_int(v) and v in (1, 2, 3, 8, 10),
        "password": lambda v: (
            isinstance(v, str) and len(v) <= 10 and re.fullmatch(r"[A-Za-z0-9@_*-]*", v) is not None
        ),
        "timezone": lambda v: isinstance(v, str) and known_zone(v),
        "start_time": lambda v: isinstance(v, str) and valid_start(v),
        "settings": lambda v: isinstance(v, dict),
    }
    for key, ok in checks.items():
        if key in data and not ok(data[key]):
            bad.append(key)
    settings = data.get("settings")
    if isinstance(settings, dict):
        bad += _bad_settings(settings)
    if bad:
        raise invalid(*bad)


def _bad_settings(settings: dict[str, Any]) -> list[str]:
    checks: dict[str, Callable[[Any], bool]] = {
        "global_dial_in_countries": lambda v: (
            isinstance(v, list)
            and all(isinstance(c, str) and re.fullmatch(r"[A-Za-z]{2}", c) for c in v)
        ),
        "alternative_hosts": lambda v: isinstance(v, str),
        "approval_type": lambda v: is_int(v) and v in (0, 1, 2),
        "jbh_time": lambda v: is_int(v) and v in (0, 5, 10, 15),
        "waiting_room": lambda v: isinstance(v, bool),
        "join_before_host": lambda v: isinstance(v, bool),
        "mute_upon_entry": lambda v: isinstance(v, bool),
    }
    return [f"settings.{k}" for k, ok in checks.items() if k in settings and not ok(settings[k])]


def known_zone(name: str) -> bool:
    if not name or name.startswith("/") or ".." in name:
        return False
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def valid_start(value: str) -> bool:
    m = START_RE.match(value)
    if not m:
        return False
    try:
        dt.datetime.fromisoformat(m.group(1))
    except ValueError:
        return False
    return True


def parse_start(value: str, timezone: str) -> dt.datetime:
    """``…Z`` is GMT and ignores ``timezone``; without offset it is local time there."""
    m = START_RE.match(value)
    assert m is not None  # validated before
    naive = dt.datetime.fromisoformat(m.group(1))
    if m.group(3):
        return naive.replace(tzinfo=UTC)
    return naive.replace(tzinfo=ZoneInfo(timezone)).astimezone(UTC)
