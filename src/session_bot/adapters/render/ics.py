"""iCalendar (.ics) for one session, built with the ``icalendar`` library.

The calendar is serialised once per mailing. For ``METHOD:REQUEST`` the recipient must appear as
ATTENDEE; that one line is left as a slot (:data:`ATTENDEE_SLOT`) and filled per recipient by
:func:`attendee_line`, so personalising costs one short line, not a whole calendar.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

from icalendar import Calendar, Event, Timezone, vCalAddress, vText
from icalendar.parser import Contentline, Parameters

Method = Literal["PUBLISH", "REQUEST", "CANCEL"]

#: Stands in for the recipient's ATTENDEE line until :func:`attendee_line` replaces it.
ATTENDEE_SLOT = b"X-SESSION-BOT-ATTENDEE:slot\r\n"
_SLOT_NAME = "X-SESSION-BOT-ATTENDEE"

# A VTIMEZONE covering a year either side is complete for the event and stays a few lines long.
_TZ_WINDOW = dt.timedelta(days=366)


@dataclass(frozen=True)
class CalendarEvent:
    """Everything the VEVENT says about one session."""

    uid: str
    summary: str
    description: str
    start: dt.datetime  # aware, in the series' zone (gives TZID + VTIMEZONE)
    end: dt.datetime
    organiser_name: str
    organiser_email: str
    sequence: int
    url: str | None = None


def build_calendar(
    event: CalendarEvent,
    *,
    method: Method,
    now: dt.datetime,
    attendee: tuple[str | None, str] | Literal["slot"] | None = None,
) -> bytes:
    """Serialise ``event`` as a calendar with ``method``.

    ``attendee`` is ``(name, email)`` for one known recipient, ``"slot"`` to leave
    :data:`ATTENDEE_SLOT` in its place, or ``None`` for a mass PUBLISH without attendees.
    """
    if event.start.tzinfo is None or now.tzinfo is None:
        raise ValueError("calendar times must be timezone-aware")
    cal = Calendar()
    cal.add("prodid", "-//session-bot//session-bot//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", method)
    tzid = getattr(event.start.tzinfo, "key", None)
    if tzid:
        cal.add_component(
            Timezone.from_tzid(
                tzid,
                first_date=event.start.date() - _TZ_WINDOW,
                last_date=event.start.date() + _TZ_WINDOW,
            )
        )
    ev = Event()
    ev.add("uid", event.uid)
    ev.add("sequence", event.sequence)
    ev.add("dtstamp", now.astimezone(dt.UTC))
    ev.add("dtstart", event.start)
    ev.add("dtend", event.end)
    ev.add("summary", event.summary)
    ev.add("description", event.description)
    if event.url:
        ev.add("location", event.url)
        ev.add("url", event.url)
    organiser = vCalAddress(f"mailto:{event.organiser_email}")
    organiser.params["CN"] = vText(event.organiser_name)
    ev.add("organizer", organiser)
    if method == "CANCEL":
        ev.add("status", "CANCELLED")
    else:
        ev.add("status", "CONFIRMED")
        ev.add("transp", "OPAQUE")
    if attendee == "slot":
        ev.add(_SLOT_NAME, "slot")
    elif attendee is not None:
        ev.add("attendee", _attendee_address(*attendee))
    cal.add_component(ev)
    data = bytes(cal.to_ical())
    if attendee == "slot" and data.count(ATTENDEE_SLOT) != 1:
        raise AssertionError("attendee slot not serialised as one line")
    return data


def _attendee_address(name: str | None, email: str) -> vCalAddress:
    addr = vCalAddress(f"mailto:{email}")
    if name:
        addr.params["CN"] = vText(name)
    addr.params["CUTYPE"] = "INDIVIDUAL"
    addr.params["ROLE"] = "REQ-PARTICIPANT"
    addr.params["PARTSTAT"] = "NEEDS-ACTION"
    addr.params["RSVP"] = "FALSE"
    return addr


def attendee_line(name: str | None, email: str) -> bytes:
    """The folded ``ATTENDEE`` content line (with CRLF) that replaces :data:`ATTENDEE_SLOT`."""
    addr = _attendee_address(name, email)
    line = Contentline.from_parts("ATTENDEE", Parameters(addr.params), addr.to_ical().decode())
    return bytes(line.to_ical()) + b"\r\n"
