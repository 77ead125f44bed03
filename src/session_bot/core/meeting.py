"""A session's Zoom meeting as values: what we ask Zoom for, what Zoom scheduled, and the marker.

Pure: no HTTP, no clock. ``session_bot.adapters.zoom`` turns these into Zoom calls; the use
cases, the renderer and the store only ever see these values.

The marker opens every meeting's agenda (``[session-bot willkommen 2025-02-26]``). It is how a
meeting whose create answer was lost is found again instead of being created twice.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

UTC = dt.UTC
MARKER_PREFIX = "[session-bot "
_MARKER_RE = re.compile(r"^\[session-bot ([a-z0-9][a-z0-9-]{0,39}) (\d{4}-\d{2}-\d{2})\]")


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
            start_time=parse_utc(str(d["start_time"])),
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
            start_time=parse_utc(str(data["start_time"])),
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


def marker(series_id: str, date: dt.date) -> str:
    """The tag that opens a meeting's agenda, e.g. ``[session-bot willkommen 2025-02-26]``."""
    return f"{MARKER_PREFIX}{series_id} {date.isoformat()}]"


def parse_marker(agenda: str) -> tuple[str, dt.date] | None:
    """``(series_id, date)`` of an agenda that starts with a marker, else ``None``."""
    m = _MARKER_RE.match(agenda)
    return (m.group(1), dt.date.fromisoformat(m.group(2))) if m else None


def parse_utc(s: str) -> dt.datetime:
    """An ISO 8601 time as aware UTC; one without a zone is UTC, as Zoom and our store write."""
    t = dt.datetime.fromisoformat(s)
    return (t if t.tzinfo else t.replace(tzinfo=UTC)).astimezone(UTC)


def _zulu(t: dt.datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
