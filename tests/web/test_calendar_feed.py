"""The calendar feed /calendar.ics and the private feeds over real HTTP (issue 17): parsed by
icalendar and by the independent `ics` package, across both DST changes, with the UIDs and
SEQUENCEs of the mailed invitations — also after a session moved and another was cancelled."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import ics as ics_package
import pytest
from icalendar import Calendar

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.app.subscriber_tokens import unsubscribe_token
from session_bot.core.plan import Plan, load_plan
from session_bot.core.tokens import make_token
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from session_bot.web.public import private_feed_url
from tests.support.plans import automatic_updates
from tests.support.settings import EXAMPLE_PLAN, PUBLIC_URL, SECRET_KEY, make_settings
from tests.support.waiting import wait_for
from tests.support.web_server import ServerThread
from tests.support.web_subscribe import confirm_link

BERLIN = ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2025, 2, 12, 9, 0, tzinfo=BERLIN)
FIRST, SECOND = "willkommen-2025-02-26@", "willkommen-2025-03-26@"


@dataclass
class World:
    tmp_path: Path
    settings: Settings
    store: Store
    clock: ManualClock
    sandbox: ZoomSandbox
    plan_file: Path
    subscriber: int
    plans: list[Plan] = field(default_factory=list)

    def write_plan(self, old: str = "", new: str = "") -> None:
        text = self.plan_file.read_text(encoding="utf-8") if self.plans else None
        # Changes are mailed by the next run here (no review): the feed follows the mails.
        text = text or automatic_updates(EXAMPLE_PLAN.read_text(encoding="utf-8"))
        # Invitations 45 days ahead: at NOW both February's and March's session are invited.
        text = text.replace("invitation_days: 14", "invitation_days: 45")
        assert old in text
        self.plan_file.write_text(text.replace(old, new, 1), encoding="utf-8")
        self.plans.append(load_plan(self.plan_file))

    def run(self) -> None:
        zoom = wiring.sandbox_zoom(self.settings, self.store, self.clock, self.sandbox)
        transport = MaildirTransport(self.settings.resolved_outbox)
        runner = wiring.build_runner(
            self.settings, self.plans[-1], self.store, zoom, self.clock, transport=transport
        )
        report = runner.run("test")
        assert report.outcome == "ok", report

    def server(self, **settings: Any) -> ServerThread:
        s = self.settings.model_copy(update=settings)
        transport = MaildirTransport(s.resolved_outbox)
        ctx = WebContext(
            settings=s,
            store=self.store,
            clock=self.clock,
            plan=lambda: self.plans[-1],
            transport=lambda: transport,
            secret_key=SECRET_KEY,
        )
        return ServerThread(create_app(ctx))

    def mailed(self) -> list[tuple[str, int, bytes]]:
        """(UID, SEQUENCE, .ics) of every mailed calendar file, in the order they were sent."""
        out = []
        files = sorted((self.settings.resolved_outbox / "new").iterdir(), key=_sent_order)
        for path in files:
            msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            for part in msg.walk():
                if part.get_content_type() == "text/calendar":
                    data = part.get_payload(decode=True)
                    assert isinstance(data, bytes)
                    event = Calendar.from_ical(data).walk("VEVENT")[0]
                    out.append((str(event["UID"]), int(event["SEQUENCE"]), data))
        return out


def _sent_order(path: Path) -> tuple[int, int, int]:
    """mailbox.Maildir's name, ``<seconds>.M<microseconds>P<pid>Q<count>.<host>``, as numbers:
    as text, M999 sorts after M1000 (two mails in one second came out of order)."""
    seconds, rest = path.name.split(".M", 1)
    micros, rest = rest.split("P", 1)
    count = rest.split("Q", 1)[1].split(".", 1)[0]
    return int(seconds), int(micros), int(count)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    clock = ManualClock(NOW)
    settings = make_settings(tmp_path, plan=tmp_path / "plan.yaml")
    store = wiring.open_store(settings)
    subscriber = store.subscribers.add(
        "anna@example.org", name="Anna", language="de", status="confirmed", now=NOW,
        confirmed_at=NOW,
    )  # fmt: skip
    with ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox:
        w = World(tmp_path, settings, store, clock, sandbox, tmp_path / "plan.yaml", subscriber)
        w.write_plan()
        yield w
    store.close()


def events_by_uid(data: bytes) -> dict[str, Any]:
    return {str(e["UID"]).split("@")[0] + "@": e for e in Calendar.from_ical(data).walk("VEVENT")}


def test_the_feed_parses_in_two_parsers_and_keeps_1230_berlin_across_dst(world: World) -> None:
    with world.server() as server:
        answer = httpx.get(f"{server.url}/calendar.ics")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/calendar; charset=utf-8"
    assert answer.headers["cache-control"] == "public, max-age=300"
    events = events_by_uid(answer.content)
    # Every held session from 90 days back to 400 ahead; the August break and New Year's Eve
    # are no sessions.
    assert "willkommen-2025-08-27@" not in events and "willkommen-2025-12-31@" not in events
    assert len(events) == 11
    utc_hours = {}
    for uid, event in events.items():
        start = event.decoded("DTSTART")
        assert start.tzinfo is not None and event["DTSTART"].params["TZID"] == "Europe/Berlin"
        assert start.astimezone(BERLIN).time() == dt.time(12, 30), uid
        utc_hours[uid] = start.astimezone(dt.UTC).time()
    assert utc_hours["willkommen-2025-03-26@"] == dt.time(11, 30)  # before the spring change
    assert utc_hours["willkommen-2025-04-30@"] == dt.time(10, 30)  # after it
    assert utc_hours["willkommen-2025-09-24@"] == dt.time(10, 30)  # before the autumn change
    assert utc_hours["willkommen-2025-10-29@"] == dt.time(11, 30)  # after it
    assert "Akteursübergreifende Zusammenarbeit" in str(events[FIRST]["SUMMARY"])
    assert "Anna Lena Hemmer" in str(events[FIRST]["DESCRIPTION"])

    other = ics_package.Calendar(answer.text)
    starts = {e.uid.split("@")[0] + "@": e.begin for e in other.events}
    assert set(starts) == set(events)
    for uid, begin in starts.items():
        local = begin.to("Europe/Berlin")
        assert (local.hour, local.minute) == (12, 30), uid
    assert starts["willkommen-2025-03-26@"].to("UTC").hour == 11
    assert starts["willkommen-2025-10-29@"].to("UTC").hour == 11
    assert starts["willkommen-2025-04-30@"].to("UTC").hour == 10


def test_mailed_uids_and_sequences_follow_a_move_and_a_cancellation(world: World) -> None:
    world.run()
    mailed = world.mailed()
    assert sorted(uid.split("@")[0] + "@" for uid, _, _ in mailed) == [FIRST, SECOND]
    with world.server() as server:
        feed = events_by_uid(httpx.get(f"{server.url}/calendar.ics").content)
    for uid, sequence, _ in mailed:
        event = feed[uid.split("@")[0] + "@"]
        assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == sequence == 0

    # The organiser moves February's session to 13:00 and cancels March's.
    world.write_plan(
        "      2025-02-26:\n        topic: |\n",
        '      2025-02-26:\n        start: "13:00"\n        topic: |\n',
    )
    world.write_plan(
        "      2025-03-26:\n",
        "      2025-03-26:\n        cancelled: true\n        reason: Die Referentin ist erkrankt.\n",
    )
    world.clock.advance(minutes=5)
    world.run()
    later = world.mailed()[len(mailed) :]
    assert len(later) == 2  # an update and a cancellation
    with world.server() as server:
        data = httpx.get(f"{server.url}/calendar.ics").content
    feed = events_by_uid(data)
    for uid, sequence, _ in later:
        event = feed[uid.split("@")[0] + "@"]
        assert str(event["UID"]) == uid and int(event["SEQUENCE"]) == sequence == 1
    moved, cancelled = feed[FIRST], feed[SECOND]
    assert moved.decoded("DTSTART") == dt.datetime(2025, 2, 26, 13, 0, tzinfo=BERLIN)
    assert str(moved["STATUS"]) == "CONFIRMED"
    assert str(cancelled["STATUS"]) == "CANCELLED"
    assert "Die Referentin ist erkrankt." in str(cancelled["DESCRIPTION"])
    assert {str(e.status) for e in ics_package.Calendar(data.decode()).events} == {
        "CONFIRMED",
        "CANCELLED",
    }


def test_an_unchanged_feed_answers_304_although_served_later(world: World) -> None:
    with world.server() as server:
        first = httpx.get(f"{server.url}/calendar.ics")
        world.clock.advance(minutes=3)  # another DTSTAMP, the same sessions
        tag = first.headers["etag"]
        again = httpx.get(f"{server.url}/calendar.ics", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.headers["etag"] == tag


def join_url(world: World) -> str:
    row = world.store.sessions.get("willkommen/2025-02-26")
    assert row is not None and row.meeting_json is not None
    url = row.meeting_json["join_url"]
    assert isinstance(url, str) and url.startswith("https://")
    return url


def test_join_links_only_where_allowed(world: World) -> None:
    world.run()
    link = join_url(world)
    with world.server() as server:
        public = httpx.get(f"{server.url}/calendar.ics").text
    assert link not in public and "\nURL:" not in public and "\nLOCATION:" not in public
    with world.server(feed_join_links=True) as server:
        allowed = httpx.get(f"{server.url}/calendar.ics").content
    assert str(events_by_uid(allowed)[FIRST]["URL"]) == link


def altered(token: str) -> str:
    return token[:-1] + ("B" if token.endswith("A") else "A")


def test_the_private_feed_carries_the_join_link_and_refuses_others(world: World) -> None:
    world.run()
    link = join_url(world)
    pending = world.store.subscribers.add(
        "bert@example.org", name=None, language="de", status="pending", now=NOW
    )
    url = private_feed_url("", SECRET_KEY, world.subscriber)
    with world.server() as server:
        mine = httpx.get(f"{server.url}{url}")
        assert mine.status_code == 200
        assert mine.headers["content-type"] == "text/calendar; charset=utf-8"
        assert mine.headers["cache-control"] == "private, max-age=300"
        assert str(events_by_uid(mine.content)[FIRST]["URL"]) == link
        refused = [
            make_token("not-the-secret-key-0123456789", "feed", str(world.subscriber)),
            make_token(SECRET_KEY, "unsubscribe", str(world.subscriber)),  # another purpose
            make_token(SECRET_KEY, "feed", str(pending)),  # not confirmed
            make_token(SECRET_KEY, "feed", "999"),  # nobody
            altered(url.split("/")[-1].removesuffix(".ics")),
        ]
        for token in refused:
            answer = httpx.get(f"{server.url}/calendar/{token}.ics")
            assert answer.status_code == 404, token
            assert link not in answer.text


def _mail_to(world: World, address: str) -> EmailMessage | None:
    for path in (world.settings.resolved_outbox / "new").iterdir():
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        if address in str(msg["To"]):
            return msg
    return None


def _own_feed(page: str) -> tuple[str, str]:
    """The private feed's https and webcal address as the page offers them."""
    assert "Alle Termine im eigenen Kalender (mit Zoom-Link)" in page
    https = re.findall(r'href="(https://[^"]+/calendar/[^"]+\.ics)"', page)
    webcal = re.findall(r'href="(webcal://[^"]+/calendar/[^"]+\.ics)"', page)
    assert len(https) == 1 and len(webcal) == 1, page
    return html.unescape(https[0]), html.unescape(webcal[0])


def test_the_confirmation_page_offers_the_private_feed_with_the_join_link(world: World) -> None:
    world.run()
    link = join_url(world)
    with world.server() as server:
        sent = httpx.post(f"{server.url}/subscribe", data={"email": "carla@example.org"})
        assert sent.status_code == 200
        mail = wait_for(lambda: _mail_to(world, "carla@example.org"), "the confirmation mail")
        token_path = "/confirm/" + confirm_link(mail).rsplit("/confirm/", 1)[1]
        page = httpx.post(f"{server.url}{token_path}").text
        assert "Anmeldung bestätigt" in page
        https, webcal = _own_feed(page)
        assert https.startswith(f"{PUBLIC_URL}/calendar/")
        assert webcal == "webcal://" + https.removeprefix("https://")
        # Opening the confirm link again, or the unsubscribe page, shows the same address.
        assert _own_feed(httpx.get(f"{server.url}{token_path}").text)[0] == https
        carla = world.store.subscribers.get("carla@example.org")
        assert carla is not None and carla["status"] == "confirmed"
        leave = f"{server.url}/unsubscribe/{unsubscribe_token(SECRET_KEY, carla['id'])}"
        assert _own_feed(httpx.get(leave).text)[0] == https

        feed = httpx.get(server.url + https.removeprefix(PUBLIC_URL))
        assert feed.status_code == 200
        assert str(events_by_uid(feed.content)[FIRST]["URL"]) == link
        public = httpx.get(f"{server.url}/calendar.ics").text
        assert link not in public  # the setting does not allow it in the public feed

        # After leaving, neither the page nor the feed gives anything away.
        assert httpx.post(leave).status_code == 200
        assert "eigenen Kalender" not in httpx.get(leave).text
        assert httpx.get(server.url + https.removeprefix(PUBLIC_URL)).status_code == 404
