"""The series' calendar feed: every session as one VEVENT, built with the ``icalendar`` library.

An event keeps the UID and SEQUENCE of the mailed ``.ics`` files (``parts.render_calendar``), so
a person who subscribes to the feed and gets the mails sees one event that moves with the plan
and is cancelled with it. The caller decides what each event carries (its sequence, whether the
join link is shown); this module only serialises.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from icalendar import Calendar, Event, Timezone

from session_bot.core.plan import Occurrence

# The VTIMEZONE covers the feed's sessions with a year's margin either side.
_TZ_MARGIN = dt.timedelta(days=366)
_DTSTAMP = re.compile(rb"^DTSTAMP[:;].*\r\n", re.MULTILINE)


@dataclass(frozen=True)
class FeedEvent:
    """One session as the feed shows it."""

    occurrence: Occurrence
    uid_domain: str  # the domain of the series' mailed UIDs
    sequence: int  # the session's SEQUENCE as last mailed (0 if never)
    cancelled: bool
    join_url: str | None = None  # only where the feed may carry it

    @property
    def uid(self) -> str:
        occ = self.occurrence
        return f"{occ.series.id}-{occ.date.isoformat()}@{self.uid_domain}"


def summary(occ: Occurrence) -> str:
    """The series' title and the session's topic, as the mailed calendar entry names it."""
    title = " ".join(occ.series.title.split())
    topic = occ.content.topic_one_line if occ.content else ""
    return f"{title} – {topic}" if topic else title


def description(occ: Occurrence, join_url: str | None, cancelled: bool) -> str:
    """The speakers, one a line (and the reason of a cancellation, the join link if given)."""
    lines: list[str] = []
    content = occ.content
    if cancelled and content is not None and content.reason:
        lines += [f"ABGESAGT / CANCELLED: {content.reason.strip()}", ""]
    for speaker in content.speakers if content else ():
        lines.append(", ".join(p for p in (speaker.name, speaker.role, speaker.organisation) if p))
    if join_url and not cancelled:
        lines += ["", join_url]
    return "\n".join(lines).strip()


def build_feed(events: Sequence[FeedEvent], *, name: str, now: dt.datetime) -> bytes:
    """The feed as one VCALENDAR (``METHOD:PUBLISH``) with a VTIMEZONE per zone used."""
    if now.tzinfo is None:
        raise ValueError("calendar times must be timezone-aware")
    cal = Calendar()
    cal.add("prodid", "-//session-bot//session-bot//EN")
    cal.add("version", "2.0")
    cal.add("calscale", "GREGORIAN")
    cal.add("method", "PUBLISH")
    cal.add("x-wr-calname", name)
    cal.add("x-published-ttl", "PT1H")
    zones: dict[str, list[dt.date]] = {}
    for e in events:
        key = getattr(e.occurrence.start.tzinfo, "key", None)
        if key:
            zones.setdefault(key, []).append(e.occurrence.date)
    if len(zones) == 1:
        cal.add("x-wr-timezone", next(iter(zones)))
    for tzid, dates in zones.items():
        cal.add_component(
            Timezone.from_tzid(
                tzid, first_date=min(dates) - _TZ_MARGIN, last_date=max(dates) + _TZ_MARGIN
            )
        )
    stamp = now.astimezone(dt.UTC)
    for e in events:
        cal.add_component(_event(e, stamp))
    return bytes(cal.to_ical())


def _event(e: FeedEvent, stamp: dt.datetime) -> Event:
    occ = e.occurrence
    ev = Event()
    ev.add("uid", e.uid)
    ev.add("sequence", e.sequence)
    ev.add("dtstamp", stamp)
    ev.add("dtstart", occ.start)
    ev.add("dtend", occ.end)
    ev.add("summary", summary(occ))
    text = description(occ, e.join_url, e.cancelled)
    if text:
        ev.add("description", text)
    if e.join_url and not e.cancelled:
        ev.add("location", e.join_url)
        ev.add("url", e.join_url)
    ev.add("status", "CANCELLED" if e.cancelled else "CONFIRMED")
    ev.add("transp", "TRANSPARENT" if e.cancelled else "OPAQUE")
    return ev


def content_tag(data: bytes) -> str:
    """An ETag for a calendar: a hash of its content, leaving out the DTSTAMP lines (the moment
    of serving), so an unchanged feed keeps its tag."""
    return '"' + hashlib.sha256(_DTSTAMP.sub(b"", data)).hexdigest()[:32] + '"'
