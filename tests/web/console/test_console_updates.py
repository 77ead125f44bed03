"""The console's "review before mail" page (/admin/updates) against a real server: the plan in
the database, the Zoom sandbox, aiosmtpd. A change to an invited session mails nobody until the
organiser sends it; she sees before → after and the mail, tests it, sends or dismisses it."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import icalendar
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.app.plan_book import PlanBook, Who, plan_of
from session_bot.core.plan import Plan
from session_bot.daemon.runs import report_dict
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT, SEED_MEETING
from tests.support.console import ORGANISER, Console, add_organiser, csrf_of
from tests.support.settings import make_settings
from tests.support.smtp_server import Received, SmtpServer
from tests.support.web_server import ServerThread

SESSION = "      2025-02-26:\n"
KEY = "willkommen/2025-02-26"
BASE = "/admin/updates/2025-02-26"
SUBSCRIBERS = ["anna@example.org", "ben@example.org", "chris@example.org"]


def berlin(*a: int) -> dt.datetime:
    return dt.datetime(*a, tzinfo=ZoneInfo("Europe/Berlin"))


@dataclass
class Desk:
    """The console over a plan kept in the database, with the daemon's run behind "send"."""

    console: Console
    book: PlanBook
    smtp: SmtpServer
    text: str
    seen: int = 0
    invitation_uid: str = ""

    @property
    def store(self) -> Store:
        return self.console.store

    @property
    def clock(self) -> ManualClock:
        return self.console.clock

    def edit(self, lines_for_the_session: str) -> None:
        """A new plan revision with lines added to the 2025-02-26 session (as `plan import`)."""
        self.text = self.text.replace(SESSION, SESSION + lines_for_the_session, 1)
        self.book.import_text(self.text, Who("test"))

    def run(self) -> dict[str, Any]:
        """A scheduled run of the daemon, at the clock's time."""
        return run_with(self.console.settings, self.store, self.clock, self.console.sandbox,
                        self.smtp)  # fmt: skip

    def new_mail(self) -> list[Received]:
        new = self.smtp.handler.messages[self.seen :]
        self.seen = len(self.smtp.handler.messages)
        return new


def current_plan(store: Store, clock: ManualClock) -> Plan:
    return plan_of(PlanBook(store, clock).require_current())


def run_with(
    settings: Settings, store: Store, clock: ManualClock, sandbox: ZoomSandbox, smtp: SmtpServer
) -> dict[str, Any]:
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    transport = SmtpTransport(smtp.host, smtp.port, tls="none")
    try:
        plan = current_plan(store, clock)
        runner = wiring.build_runner(settings, plan, store, zoom, clock, transport=transport)
        return report_dict(runner.run("test"))
    finally:
        transport.close()


@pytest.fixture
def desk(tmp_path: Path) -> Iterator[Desk]:
    settings = make_settings(tmp_path, public_url="http://127.0.0.1:8080")
    store = wiring.open_store(settings)
    clock = ManualClock(SEED_INVITATION_AT)
    for n, email in enumerate(SUBSCRIBERS):
        store.subscribers.add(
            email, name=None, language="en" if n == 2 else "de", status="confirmed",
            now=clock(), confirmed_at=clock(),
        )  # fmt: skip
    text = EXAMPLE_PLAN.read_text(encoding="utf-8")
    book = PlanBook(store, clock)
    book.import_text(text, Who("test"))
    with (
        ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox,
        SmtpServer() as smtp,
    ):
        sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
        ctx = WebContext(
            settings=settings,
            store=store,
            clock=clock,
            plan=lambda: current_plan(store, clock),
            transport=lambda: SmtpTransport(smtp.host, smtp.port, tls="none"),
            secret_key=wiring.secret_key(settings),
            trigger_run=lambda trigger: run_with(settings, store, clock, sandbox, smtp),
        )
        add_organiser(store, clock)
        with ServerThread(create_app(ctx)) as server:
            console = Console(server.url, store, clock, sandbox, settings, settings.resolved_outbox)
            d = Desk(console, book, smtp, text)
            assert d.run()["outcome"] == "ok"  # the invitation, at its moment
            invitations = d.new_mail()
            assert len(invitations) == 3
            d.invitation_uid = str(mail_event(invitations[0])[1]["UID"])
            yield d
    store.close()


def calendar_event(raw: bytes) -> icalendar.Event:
    return next(iter(icalendar.Calendar.from_ical(raw).walk("VEVENT")))


def mail_event(msg: Received) -> tuple[str, icalendar.Event]:
    for part in msg.message().iter_attachments():
        if part.get_content_type() == "text/calendar":
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            return str(cal["METHOD"]), next(iter(cal.walk("VEVENT")))
    raise AssertionError("no .ics attached")


def digest_of(page: str) -> str:
    m = re.search(r'name="change" value="([0-9a-f]+)"', page)
    assert m is not None, "no change named on the page"
    return m.group(1)


def test_a_time_change_waits_shows_before_and_after_and_goes_out_when_sent(desk: Desk) -> None:
    invitation_uid = desk.invitation_uid
    desk.edit('        start: "14:00"\n')
    desk.clock.set(berlin(2025, 2, 13, 10))
    assert desk.run()["outcome"] == "ok"
    assert desk.new_mail() == []  # nothing is mailed by itself
    with desk.console.signed_in() as client:
        overview = client.get("/admin/")
        assert "Änderung am 26.02. wartet auf Versand." in overview.text
        assert 'href="/admin/updates"' in overview.text and "Änderungen <span" in overview.text

        page = client.get("/admin/updates")
        assert page.status_code == 200, page.text
        text = page.text
        assert "Änderung: Mittwoch, 26. Februar 2025, 14:00 Uhr" in text
        assert "Datum und Uhrzeit" in text
        assert "Mittwoch, 26. Februar 2025, 12:30–13:30 Uhr" in text  # before
        assert "Mittwoch, 26. Februar 2025, 14:00–15:00 Uhr" in text  # after
        # The mail in each language subscribers read, with what the runner's update says.
        assert f'src="{BASE}/preview/de.html"' in text and f'src="{BASE}/preview/en.html"' in text
        assert "Neuer Termin: Mittwoch, 26. Februar 2025, 14:00–15:00 Uhr" in text
        assert "New date and time: Wednesday, February 26, 2025, 14:00–15:00" in text
        html = client.get(f"{BASE}/preview/de.html")
        assert "14:00" in html.text and "sandbox" in html.headers["content-security-policy"]
        ics = calendar_event(client.get(f"{BASE}/preview/de.ics").content)
        assert str(ics["UID"]) == invitation_uid and int(ics["SEQUENCE"]) == 1
        assert ics.decoded("DTSTART").astimezone(dt.UTC).hour == 13
        assert "Keine Mail nötig" in text
        # The session's own preview of its update is the same mail, naming the change.
        session_preview = client.get("/admin/sessions/2025-02-26/preview/update/de.html")
        assert session_preview.status_code == 200
        assert "Neuer Termin: Mittwoch, 26. Februar 2025, 14:00–15:00 Uhr" in session_preview.text

        # A test to herself first: [TEST], to her only.
        answer = client.post(f"{BASE}/test", data={"csrf": csrf_of(text), "mail_lang": "de"})
        assert answer.status_code == 303
        assert "Eine Testmail wurde an" in client.get(answer.headers["location"]).text
        (test,) = desk.new_mail()
        assert test.rcpt_tos == [ORGANISER]
        assert str(test.message()["Subject"]).startswith("[TEST]")

        confirm = client.get(f"{BASE}/send")
        assert "Änderung an 3 Abonnent:innen senden?" in confirm.text
        sent = client.post(
            f"{BASE}/send", data={"csrf": csrf_of(confirm.text), "change": digest_of(confirm.text)}
        )
        assert sent.status_code == 200, sent.text
        assert "Änderung verschickt: 3 Nachrichten." in sent.text
        assert "Keine Änderung wartet auf Versand" in sent.text

    updates = desk.new_mail()
    assert sorted(r for m in updates for r in m.rcpt_tos) == SUBSCRIBERS
    for msg in updates:
        _, event = mail_event(msg)
        assert str(event["UID"]) == invitation_uid and int(event["SEQUENCE"]) == 1
        assert event.decoded("DTSTART").astimezone(dt.UTC) == dt.datetime(
            2025, 2, 26, 13, tzinfo=dt.UTC
        )
    assert desk.console.sandbox.meetings[SEED_MEETING["id"]]["start_time"] == (
        "2025-02-26T13:00:00Z"
    )
    assert desk.run()["outcome"] == "ok" and desk.new_mail() == []  # exactly once
    actions = [e.action for e in desk.store.audit.latest()]
    assert "update-send" in actions and "test-mail" in actions


def test_a_speaker_typo_dismissed_sends_nothing(desk: Desk) -> None:
    desk.text = desk.text.replace(
        "Koordinatorin Burgenlandkreis", "Koordinatorin im Burgenlandkreis"
    )
    desk.book.import_text(desk.text, Who("test"))
    desk.clock.set(berlin(2025, 2, 14, 10))
    with desk.console.signed_in() as client:
        page = client.get("/admin/updates", params={"lang": "en"})
        assert "Before (as announced)" in page.text and "Speakers" in page.text
        assert "Anna Lena Hemmer – Koordinatorin Burgenlandkreis, Migrationsagentur" in page.text
        assert "Anna Lena Hemmer – Koordinatorin im Burgenlandkreis, Migrationsagentur" in (
            page.text
        )
        done = client.post(
            f"{BASE}/dismiss", data={"csrf": csrf_of(page.text), "change": digest_of(page.text)}
        )
        assert done.status_code == 303
        after = client.get(done.headers["location"])
        assert "no mail went out" in after.text and "No change is waiting" in after.text
        assert "Changes <span" not in after.text  # no count in the navigation
    assert desk.run()["outcome"] == "ok"
    assert desk.new_mail() == []
    entry = desk.store.audit.latest()[0]
    assert (entry.actor, entry.action) == (ORGANISER, "update-dismiss")
    assert KEY in entry.detail and "speakers" in entry.detail


def test_a_cancellation_cannot_be_dismissed_and_goes_out_when_sent(desk: Desk) -> None:
    desk.edit('        cancelled: true\n        reason: "Die Referentin ist erkrankt."\n')
    desk.clock.set(berlin(2025, 2, 20, 10))
    assert desk.run()["outcome"] == "ok" and desk.new_mail() == []
    assert len(desk.console.sandbox.meetings) == 1  # the meeting stays until she sends
    with desk.console.signed_in() as client:
        page = client.get("/admin/updates")
        assert "Absage: Mittwoch, 26. Februar 2025, 12:30 Uhr" in page.text
        assert "Die Referentin ist erkrankt." in page.text
        assert "gibt es für eine Absage nicht" in page.text
        assert f'action="{BASE}/dismiss' not in page.text
        assert "Absage am 26.02. wartet auf Versand." in client.get("/admin/").text

        confirm = client.get(f"{BASE}/send")
        assert "Absage an 3 Abonnent:innen senden?" in confirm.text
        digest = digest_of(confirm.text)
        refused = client.post(
            f"{BASE}/dismiss", data={"csrf": csrf_of(page.text), "change": digest}
        )
        assert refused.status_code == 409
        assert "lässt sich nicht ohne Mail erledigen" in refused.text
        assert desk.new_mail() == []

        sent = client.post(f"{BASE}/send", data={"csrf": csrf_of(confirm.text), "change": digest})
        assert "Absage verschickt: 3 Nachrichten." in sent.text
    cancellations = desk.new_mail()
    assert sorted(r for m in cancellations for r in m.rcpt_tos) == SUBSCRIBERS
    for msg in cancellations:
        method, event = mail_event(msg)
        assert method == "CANCEL" and int(event["SEQUENCE"]) == 1
    assert desk.console.sandbox.meetings == {}
    assert "cancellation-send" in [e.action for e in desk.store.audit.latest()]


def test_a_change_edited_again_is_not_sent_unseen(desk: Desk) -> None:
    desk.edit('        start: "14:00"\n')
    desk.clock.set(berlin(2025, 2, 13, 10))
    with desk.console.signed_in() as client:
        confirm = client.get(f"{BASE}/send")
        desk.text = desk.text.replace('start: "14:00"', 'start: "15:00"')
        desk.book.import_text(desk.text, Who("someone else"))
        answer = client.post(
            f"{BASE}/send", data={"csrf": csrf_of(confirm.text), "change": digest_of(confirm.text)}
        )
        assert answer.status_code == 409 and "inzwischen noch einmal geändert" in answer.text
        assert "15:00–16:00 Uhr" in answer.text
    assert desk.new_mail() == []
    assert desk.store.sessions.get(KEY).approved is None  # type: ignore[union-attr]


def test_forms_refuse_without_the_token_and_nothing_waiting_is_said(desk: Desk) -> None:
    with desk.console.signed_in() as client:
        empty = client.get("/admin/updates")
        assert "Keine Änderung wartet auf Versand" in empty.text and "<iframe" not in empty.text
        assert client.get(f"{BASE}/send").status_code == 404

        desk.edit('        start: "14:00"\n')
        page = client.get("/admin/updates")
        digest = digest_of(page.text)
        for action in ("send", "dismiss", "test"):
            answer = client.post(f"{BASE}/{action}", data={"csrf": "forged", "change": digest})
            assert answer.status_code == 400, action
            assert "Formular war abgelaufen" in answer.text
        assert "Änderung: Mittwoch" in client.get("/admin/updates").text  # still waiting
    assert desk.new_mail() == []
    assert desk.store.sessions.get(KEY).approved is None  # type: ignore[union-attr]
