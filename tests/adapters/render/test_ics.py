"""The .ics attachment, read back by icalendar, by the independent ``ics`` package and by
dateutil's VTIMEZONE reader (what Outlook relies on), across the 2025 DST changes."""

from __future__ import annotations

import datetime as dt
import io

import ics as ics_pkg
import pytest
from dateutil.tz import tzical
from icalendar import Calendar

from session_bot.adapters.render.invitations import Recipient
from tests.support.invitations import (
    DST_SESSIONS,
    NOW,
    SEED_JOIN_URL,
    calendar_part,
    meeting,
    occurrence,
    parse,
    recipient,
    renderer,
)


def calendar_of(
    kind: str, day: dt.date, sequence: int = 0, to: Recipient | None = None, **series: str
) -> tuple[str, bytes]:
    occ = occurrence(day, **series)
    m = None if kind == "cancellation" else meeting(occ)
    mailing = renderer().render(kind, occ, m, sequence=sequence, now=NOW, reason="Krankheit")
    msg = parse(mailing.personalise(to or recipient("Anna Müller"), message_id="<c@x>", date=NOW))
    part, data = calendar_part(msg)
    return str(part.get_param("method")), data


def only_event(data: bytes) -> Calendar:
    cal = Calendar.from_ical(data)
    events = cal.walk("VEVENT")
    assert len(events) == 1
    return events[0]


@pytest.mark.parametrize(("day", "utc_start"), sorted(DST_SESSIONS.items()))
def test_utc_instants_around_dst_in_three_readers(day: dt.date, utc_start: dt.datetime) -> None:
    _, data = calendar_of("invitation", day)
    utc_end = utc_start + dt.timedelta(minutes=60)
    # 1. icalendar
    event = only_event(data)
    assert event.decoded("dtstart").astimezone(dt.UTC) == utc_start
    assert event.decoded("dtend").astimezone(dt.UTC) == utc_end
    assert event["dtstart"].params["TZID"] == "Europe/Berlin"
    # 2. the independent `ics` package (its own parser; resolves TZID via dateutil)
    parsed = ics_pkg.Calendar(data.decode("utf-8"))
    (ev,) = parsed.events
    assert ev.begin.to("utc").datetime == utc_start
    assert ev.end.to("utc").datetime == utc_end
    # 3. only the VTIMEZONE we ship, as a client without a zone database reads it
    (vtz,) = Calendar.from_ical(data).walk("VTIMEZONE")
    zone = tzical(io.StringIO(vtz.to_ical().decode())).get("Europe/Berlin")
    local = dt.datetime.combine(day, dt.time(12, 30))
    assert local.replace(tzinfo=zone).astimezone(dt.UTC) == utc_start


def test_publish_invitation_properties() -> None:
    method, data = calendar_of("invitation", dt.date(2025, 2, 26))
    assert method == "PUBLISH"
    cal = Calendar.from_ical(data)
    assert cal["method"] == "PUBLISH"
    assert [tz["tzid"] for tz in cal.walk("VTIMEZONE")] == ["Europe/Berlin"]
    event = only_event(data)
    assert str(event["uid"]) == "willkommen-2025-02-26@sb.example.org"
    assert event["sequence"] == 0
    assert event.decoded("dtstamp") == NOW
    assert str(event["organizer"]) == "mailto:kristina.neumann@bertelsmann-stiftung.de"
    assert event["organizer"].params["CN"] == "Kristina Neumann"
    assert str(event["url"]) == SEED_JOIN_URL and str(event["location"]) == SEED_JOIN_URL
    assert "attendee" not in event
    description = str(event["description"])
    assert "Meeting-ID: 665 4767 7759, Kenncode: 717531" in description
    assert "+496950500952,,66547677759#,,,,*717531#" in description
    assert str(event["summary"]).startswith("Willkommen: Online Austausch – Akteursübergreifende")
    (ev,) = ics_pkg.Calendar(data.decode()).events
    assert ev.uid == "willkommen-2025-02-26@sb.example.org"
    assert ev.url == SEED_JOIN_URL


def test_update_keeps_uid_and_raises_sequence_cancel_uses_same_uid() -> None:
    day = dt.date(2025, 3, 26)
    _, first = calendar_of("invitation", day, sequence=0)
    _, second = calendar_of("update", day, sequence=1)
    method, cancel = calendar_of("cancellation", day, sequence=2)
    uids = {str(only_event(d)["uid"]) for d in (first, second, cancel)}
    assert uids == {"willkommen-2025-03-26@sb.example.org"}
    assert [only_event(d)["sequence"] for d in (first, second, cancel)] == [0, 1, 2]
    assert method == "CANCEL"
    cal = Calendar.from_ical(cancel)
    assert cal["method"] == "CANCEL"
    assert only_event(cancel)["status"] == "CANCELLED"
    assert "url" not in only_event(cancel)
    (ev,) = ics_pkg.Calendar(cancel.decode()).events
    assert ev.status == "CANCELLED"


def test_request_method_names_the_recipient_as_attendee() -> None:
    to = recipient('Zoë "Z" Ünal, Dr.', "zoe@example.org")
    method, data = calendar_of("invitation", dt.date(2025, 4, 30), to=to, calendar_method="request")
    assert method == "REQUEST"
    assert Calendar.from_ical(data)["method"] == "REQUEST"
    event = only_event(data)
    attendee = event["attendee"]
    assert str(attendee) == "mailto:zoe@example.org"
    assert attendee.params["RSVP"] == "FALSE"
    assert attendee.params["CN"] == 'Zoë "Z" Ünal, Dr.'
    (ev,) = ics_pkg.Calendar(data.decode()).events
    assert [a.email for a in ev.attendees] == ["zoe@example.org"]
    _, other = calendar_of(
        "invitation",
        dt.date(2025, 4, 30),
        to=recipient(None, "bo@example.org"),
        calendar_method="request",
    )
    assert str(only_event(other)["attendee"]) == "mailto:bo@example.org"
    assert "CN" not in only_event(other)["attendee"].params


def test_request_series_cancellation_also_addresses_the_attendee() -> None:
    method, data = calendar_of("cancellation", dt.date(2025, 4, 30), calendar_method="request")
    assert method == "CANCEL"
    assert str(only_event(data)["attendee"]) == "mailto:anna@example.org"
