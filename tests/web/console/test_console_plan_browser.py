"""Planning the series in the browser, with a review before anything is mailed (issue 16), in
headless Chromium against a real `session-bot serve --sandbox` whose plan lives in the database:

1. a held session (in the plan, no topic) gets its topic and speakers in the form → it is
   invited at once (its moment has passed), one invitation per subscriber;
2. an invited session's start time changes → nothing is mailed, not even by a run, until she
   sends the pending update → one update per subscriber (same UID, higher SEQUENCE) and the Zoom
   meeting moved (read from the sandbox's Zoom API);
3. a speaker's typo fixed and the change marked as not worth a mail → no mail;
4. a cancellation with a reason, sent → one cancellation per subscriber, the meeting deleted;
5. an earlier revision restored from the plan's history → the session shows it again;
6. a Thursday for an extra session is refused, naming the nearest regular date, until the
   organiser confirms it.

Every page is photographed at 390 and 1200 px (test-artifacts/console/plan-browser-*.png) and
checked with axe-core for serious WCAG 2 AA violations.

The daemon runs on the real clock, so the plan is written around today: a weekly series on
Wednesdays from tomorrow, invitations 21 days ahead, so the first three Wednesdays are due when
the daemon starts (the third has no topic: held) and the fourth is not.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import icalendar
import pytest
from babel.dates import format_date

from session_bot import wiring
from session_bot.adapters.db.store import Store
from session_bot.app.plan_book import PlanBook, Who
from session_bot.settings import load_settings
from tests.support.console import ORGANISER, PASSWORD, add_organiser
from tests.support.daemon_process import serve_process
from tests.support.smtp_server import Received, SmtpServer, free_port
from tests.support.waiting import wait_for
from tests.web.console.test_console_browser import ARGS, ARTIFACTS, Walk
from tests.web.test_subscribe_browser import BERLIN, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]
SECRET = "test-secret-key-0123456789abcdef"
SUBSCRIBERS = [f"person{n}@example.org" for n in range(3)]
RELOADED = "plan reloaded (plan saved in the console)"
ZOOM = re.compile(r"Zoom sandbox at (http://127\.0\.0\.1:\d+)")
QUIET = 3.0  # seconds in which nothing may be mailed


@dataclass(frozen=True)
class Days:
    first: dt.date  # invited at the start; its time changes, then a speaker's name
    second: dt.date  # invited at the start; cancelled

    @property
    def third(self) -> dt.date:  # due at the start, but without a topic: held
        return self.first + dt.timedelta(days=14)

    @property
    def fourth(self) -> dt.date:  # not due yet; its topic is changed and restored
        return self.first + dt.timedelta(days=21)

    @property
    def thursday(self) -> dt.date:  # off the rule: the day after the fourth
        return self.fourth + dt.timedelta(days=1)


def plan_yaml(days: Days) -> str:
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=WEEKLY;BYDAY=WE"
    starts_on: {(days.first - dt.timedelta(days=6)).isoformat()}
    start: "12:30"
    duration: 60
    timezone: Europe/Berlin
    language: de
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 21
      invitation_time: "00:00"
      reminder: false
    sessions:
      {days.first.isoformat()}:
        topic: Ankommen in der Kommune
        speakers:
          - {{name: Anna Lena Hemer, role: Koordinatorin, organisation: Migrationsagentur}}
      {days.second.isoformat()}:
        topic: Arbeitsmarktintegration
        speakers:
          - {{name: Jonas Albrecht, role: Teamleiter, organisation: Jobcenter Görlitz}}
      {days.third.isoformat()}:
        note: Thema und Referent:innen folgen.
      {days.fourth.isoformat()}:
        topic: Sprachkurse vor Ort
"""


@dataclass
class Served:
    url: str
    smtp: SmtpServer
    var: Path
    log: Path
    days: Days
    seen: int = 0  # messages the test has looked at

    def new_mail(self) -> list[Received]:
        new = self.smtp.handler.messages[self.seen :]
        self.seen += len(new)
        return new

    def reloads(self) -> int:
        return self.log.read_text("utf-8", "replace").count(RELOADED)

    def zoom_base(self) -> str:
        m = ZOOM.search(self.log.read_text("utf-8", "replace"))
        assert m is not None, "the daemon did not say where its Zoom sandbox is"
        return m.group(1)

    def store(self) -> Store:
        return wiring.open_store(load_settings(None, var_dir=self.var, secret_key=SECRET))

    def meeting_id(self, day: dt.date) -> int:
        store = self.store()
        try:
            row = store.sessions.get(f"willkommen/{day.isoformat()}")
            assert row is not None and row.meeting_id is not None, f"no meeting for {day}"
            return row.meeting_id
        finally:
            store.close()

    def revision(self) -> int:
        store = self.store()
        try:
            latest = store.plans.latest()
            assert latest is not None
            return latest.id
        finally:
            store.close()


def next_wednesday(today: dt.date) -> dt.date:
    return today + dt.timedelta(days=(2 - today.weekday()) % 7 or 7)


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    first = next_wednesday(dt.datetime.now(BERLIN).date())
    days = Days(first, first + dt.timedelta(days=7))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    var = tmp_path / "var"
    with SmtpServer() as smtp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")},
            "SESSION_BOT_VAR_DIR": str(var),
            "SESSION_BOT_SECRET_KEY": SECRET,
            "SESSION_BOT_PUBLIC_URL": url,
            "SESSION_BOT_SMTP_HOST": smtp.host,
            "SESSION_BOT_SMTP_PORT": str(smtp.port),
            "SESSION_BOT_SMTP_TLS": "none",
        }  # no SESSION_BOT_PLAN: the plan lives in the database, editable in the console
        settings = load_settings(None, var_dir=var, secret_key=SECRET)
        store = wiring.open_store(settings)
        now = dt.datetime.now(dt.UTC)
        for address in SUBSCRIBERS:
            store.subscribers.add(address, name=None, language="de", status="confirmed",
                                  now=now, confirmed_at=now)  # fmt: skip
        add_organiser(store, wiring.system_clock)
        PlanBook(store, wiring.system_clock).import_text(
            plan_yaml(days), Who("test"), name="plan.yaml"
        )
        store.close()
        log = tmp_path / "daemon.log"
        args = ["--sandbox", "--port", str(port), "--env-file", str(tmp_path / "no.env")]
        with serve_process(args, env, log, lambda: _up(url)):
            yield Served(url, smtp, var, log, days)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/admin/sign-in", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


# --- mail ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Sent:
    to: str
    method: str
    uid: str
    sequence: int
    start: dt.datetime
    status: str


def sent(messages: list[Received]) -> list[Sent]:
    """The subscribers' copies with their calendar event (alerts to the organiser left out)."""
    out = []
    for m in messages:
        (to,) = m.rcpt_tos
        if to not in SUBSCRIBERS:
            continue
        for part in m.message().iter_attachments():
            if part.get_content_type() == "text/calendar":
                cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
                ev = next(iter(cal.walk("VEVENT")))
                start = ev.decoded("DTSTART")
                out.append(Sent(to, str(cal["METHOD"]), str(ev["UID"]), int(ev["SEQUENCE"]),
                                start, str(ev.get("STATUS", ""))))  # fmt: skip
                break
        else:
            raise AssertionError(f"a mail to {to} without its .ics: {m.message()['Subject']}")
    return out


def uid_of(day: dt.date) -> str:
    return f"willkommen-{day.isoformat()}@"


def one_each(mails: list[Sent], day: dt.date, method: str) -> list[Sent]:
    """Exactly one message per subscriber, all for ``day``'s event with ``method``."""
    assert sorted(m.to for m in mails) == SUBSCRIBERS, mails
    assert all(m.uid.startswith(uid_of(day)) and m.method == method for m in mails), mails
    return mails


def at(day: dt.date, hh: int, mm: int) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(hh, mm), BERLIN)


# --- Zoom, as the sandbox's API answers ---------------------------------------------------------
def zoom_meeting(base: str, meeting_id: int) -> httpx.Response:
    token = httpx.post(
        f"{base}/oauth/token",
        params={"grant_type": "account_credentials", "account_id": "sandbox-account"},
        auth=("sandbox-client", "sandbox-secret"),
    )
    assert token.status_code == 200, token.text
    bearer = {"Authorization": f"Bearer {token.json()['access_token']}"}
    return httpx.get(f"{base}/v2/meetings/{meeting_id}", headers=bearer)


def zulu(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- the organiser in her browser ---------------------------------------------------------------
class Organiser:
    def __init__(self, page: Any, served: Served, walk: Walk) -> None:
        self.page, self.served, self.walk = page, served, walk
        self.url = served.url

    def sign_in(self) -> None:
        from playwright.sync_api import expect

        self.page.goto(f"{self.url}/admin/")
        self.page.get_by_label("E-Mail-Adresse").fill(ORGANISER)
        self.page.get_by_label("Passwort").fill(PASSWORD)
        self.page.get_by_role("button", name="Anmelden").click()
        expect(self.page.get_by_role("heading", level=1)).to_have_text("Übersicht")

    def session(self, day: dt.date) -> None:
        self.page.goto(f"{self.url}/admin/sessions/{day.isoformat()}")

    def state(self) -> Any:
        return self.page.locator("dd span.state")

    def edit(self, day: dt.date) -> None:
        from playwright.sync_api import expect

        self.session(day)
        self.page.get_by_role("link", name="Bearbeiten").click()
        expect(self.page.get_by_role("heading", level=1)).to_contain_text("bearbeiten")

    def save(self) -> None:
        """Save the form; the page says which revision it became, and the daemon reloads.

        The session page shows the plan the daemon acts on, which it reloads in its worker
        thread right after the save: the page is looked at again once the log says so."""
        from playwright.sync_api import expect

        before = self.served.reloads()
        self.page.get_by_role("button", name="Speichern", exact=True).last.click()
        saved = self.page.get_by_text(re.compile(r"Gespeichert \(Stand \d+\)\."))
        expect(saved).to_be_visible()
        wait_for(lambda: self.served.reloads() > before, "the daemon to reload the saved plan")
        self.page.reload()
        expect(saved).to_be_visible()

    def run_now(self) -> None:
        """A run of the daemon from the console; it sends nothing."""
        from playwright.sync_api import expect

        self.page.get_by_role("link", name="Jetzt ausführen").click()
        # The change waits for her: a run has nothing to do.
        expect(self.page.get_by_text("Jetzt ist nichts fällig.")).to_be_visible()
        self.page.get_by_role("button", name="Jetzt ausführen").click()
        expect(self.page.get_by_text("Der Lauf ist beendet")).to_be_visible()
        sent_row = self.page.locator("dt", has_text="Nachrichten verschickt")
        expect(sent_row.locator("xpath=following-sibling::dd[1]")).to_have_text("0")

    def send_pending(self, day: dt.date, heading: str, confirm: str, done: str) -> None:
        from playwright.sync_api import expect

        page = self.page
        page.get_by_role("link", name="Änderungen").first.click()
        section = page.locator("section.change", has_text=heading)
        expect(section).to_have_count(1)
        self.walk.look(f"plan-browser-updates-{day.isoformat()}")
        section.get_by_role("link", name="Jetzt an alle senden").click()
        expect(page.get_by_text(confirm)).to_be_visible()
        self.walk.look(f"plan-browser-updates-confirm-{day.isoformat()}")
        page.get_by_role("button", name="Jetzt an alle senden").click()
        expect(page.get_by_text(done)).to_be_visible()
        expect(page.get_by_text("Keine Änderung wartet auf Versand")).to_be_visible()


def nothing_mailed(served: Served, organiser: Organiser) -> None:
    """Not by the reload of the plan, not by a run, not within a few seconds."""
    organiser.run_now()
    organiser.page.wait_for_timeout(QUIET * 1000)
    assert sent(served.new_mail()) == []


def long_date(day: dt.date) -> str:
    return format_date(day, "full", locale="de")


def test_planning_in_the_browser_with_a_review_before_mail(served: Served) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    days = served.days
    # The start run invites everyone to the first two sessions; the third is held.
    wait_for(lambda: len(sent(served.smtp.handler.messages)) >= 6, "the start run's invitations")
    start = sent(served.new_mail())
    one_each([m for m in start if m.uid.startswith(uid_of(days.first))], days.first, "PUBLISH")
    one_each([m for m in start if m.uid.startswith(uid_of(days.second))], days.second, "PUBLISH")
    assert len(start) == 6
    invitation = next(m for m in start if m.uid.startswith(uid_of(days.first)))
    zoom = served.zoom_base()
    first_meeting = served.meeting_id(days.first)
    assert zoom_meeting(zoom, first_meeting).json()["start_time"] == zulu(at(days.first, 12, 30))

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            # axe is injected as a script: the pages' CSP forbids scripts, so the test bypasses it.
            context = browser.new_context(locale="de-DE", bypass_csp=True)
            page = context.new_page()
            walk = Walk(page, served.url)
            she = Organiser(page, served, walk)
            she.sign_in()
            expect(page.get_by_text("wartet auf ein Thema").first).to_be_visible()
            walk.look("plan-browser-overview")

            # 1. The held session gets its topic and speakers, and is invited at once.
            she.session(days.third)
            expect(she.state()).to_have_text("angehalten – es fehlt ein Thema")
            walk.look("plan-browser-held")
            she.edit(days.third)
            page.locator("#f-topic").fill("Wohnen statt Unterbringen")
            page.locator("#f-sp-0-name").fill("Dr. Miriam Sommer")
            page.locator("#f-sp-0-role").fill("Leiterin Integrationsmanagement")
            page.locator("#f-sp-0-organisation").fill("Stadt Leipzig")
            page.get_by_role("button", name="Weitere Zeile").first.click()
            page.locator("#f-sp-1-name").fill("Aylin Kaya")
            page.locator("#f-sp-1-role").fill("Beraterin")
            page.locator("#f-sp-1-organisation").fill("IHK Dresden")
            walk.look("plan-browser-edit")
            she.save()
            expect(page.locator("dd strong")).to_have_text("Wohnen statt Unterbringen")
            expect(page.get_by_text("Aylin Kaya – Beraterin, IHK Dresden")).to_be_visible()
            wait_for(lambda: len(sent(served.smtp.handler.messages[served.seen :])) >= 3,
                     "the held session's invitations")  # fmt: skip
            one_each(sent(served.new_mail()), days.third, "PUBLISH")
            she.session(days.third)
            expect(she.state()).to_have_text("eingeladen")
            walk.look("plan-browser-invited")

            # 2. The first session's start time changes: nothing is mailed until she sends it.
            she.edit(days.first)
            page.locator("#f-start").fill("14:00")
            she.save()
            nothing_mailed(served, she)
            moved = zoom_meeting(zoom, first_meeting).json()["start_time"]
            assert moved == zulu(at(days.first, 12, 30))  # Zoom waits for her too
            she.send_pending(
                days.first,
                f"Änderung: {long_date(days.first)}, 14:00 Uhr",
                "Änderung an 3 Abonnent:innen senden?",
                "Änderung verschickt: 3 Nachrichten.",
            )
            wait_for(lambda: len(sent(served.smtp.handler.messages[served.seen :])) >= 3,
                     "the update")  # fmt: skip
            updates = one_each(sent(served.new_mail()), days.first, "PUBLISH")
            for update in updates:
                assert update.uid == invitation.uid
                assert update.sequence > invitation.sequence
                assert update.start == at(days.first, 14, 0)
            moved = zoom_meeting(zoom, first_meeting).json()["start_time"]
            assert moved == zulu(at(days.first, 14, 0))

            # 3. A speaker's typo fixed, and the change not worth a mail.
            she.edit(days.first)
            page.locator("#f-sp-0-name").fill("Anna Lena Hemmer")
            she.save()
            page.get_by_role("link", name="Änderungen").first.click()
            change = page.locator("section.change")
            expect(change).to_have_count(1)
            expect(change).to_contain_text("Anna Lena Hemer – Koordinatorin, Migrationsagentur")
            expect(change).to_contain_text("Anna Lena Hemmer – Koordinatorin, Migrationsagentur")
            walk.look("plan-browser-updates-typo")
            change.get_by_role("button", name="Keine Mail nötig").click()
            expect(page.get_by_text("es ging keine Mail hinaus")).to_be_visible()
            expect(page.get_by_text("Keine Änderung wartet auf Versand")).to_be_visible()
            nothing_mailed(served, she)

            # 4. The second session is cancelled with a reason and the cancellation sent.
            second_meeting = served.meeting_id(days.second)
            she.edit(days.second)
            page.get_by_label("Dieser Termin fällt aus").check()
            page.locator("#f-reason").fill("Die Referentin ist erkrankt.")
            she.save()
            assert sent(served.new_mail()) == []
            assert zoom_meeting(zoom, second_meeting).status_code == 200  # until she sends
            she.send_pending(
                days.second,
                f"Absage: {long_date(days.second)}, 12:30 Uhr",
                "Absage an 3 Abonnent:innen senden?",
                "Absage verschickt: 3 Nachrichten.",
            )
            wait_for(lambda: len(sent(served.smtp.handler.messages[served.seen :])) >= 3,
                     "the cancellation")  # fmt: skip
            for cancellation in one_each(sent(served.new_mail()), days.second, "CANCEL"):
                assert cancellation.status == "CANCELLED"
            assert zoom_meeting(zoom, second_meeting).status_code == 404
            she.session(days.second)
            expect(page.locator("dd", has=page.locator("span.state"))).to_have_text(
                "abgesagt – Die Referentin ist erkrankt."
            )

            # 5. A topic changed, then the revision before it restored from the history.
            she.edit(days.fourth)
            page.locator("#f-topic").fill("Vorläufiger Titel")
            she.save()
            expect(page.locator("dd strong")).to_have_text("Vorläufiger Titel")
            page.get_by_role("link", name="Plan", exact=True).first.click()
            cards = page.locator("ul.cards > li")
            expect(cards.first).to_contain_text("(aktuell)")
            current = int(re.findall(r"Stand (\d+)", cards.first.inner_text())[0])
            earlier = current - 1
            walk.look("plan-browser-history")
            page.get_by_role("link", name=f"ansehen Stand {earlier}").click()
            expect(page.locator("pre.diff")).to_contain_text("Vorläufiger Titel")
            walk.look("plan-browser-revision")
            page.get_by_role("button", name=f"Stand {earlier} wiederherstellen …").click()
            walk.look("plan-browser-restore-confirm")
            before = served.reloads()
            page.get_by_role("button", name=f"Ja, Stand {earlier} wiederherstellen").click()
            expect(page.get_by_text(f"Wiederhergestellt (Stand {current + 1}).")).to_be_visible()
            wait_for(lambda: served.reloads() > before, "the daemon to reload the restored plan")
            she.session(days.fourth)
            expect(page.locator("dd strong")).to_have_text("Sprachkurse vor Ort")
            page.get_by_role("link", name="Änderungen").first.click()
            expect(page.get_by_text("Keine Änderung wartet auf Versand")).to_be_visible()

            # 6. A Thursday for an extra session: refused, naming the Wednesday, until confirmed.
            page.goto(f"{served.url}/admin/")
            page.get_by_role("link", name="Termin hinzufügen").first.click()
            walk.look("plan-browser-new")
            page.locator("#f-date").fill(days.thursday.isoformat())
            page.locator("#f-topic").fill("Sondertermin: Fragen zur Einbürgerung")
            page.locator("#f-sp-0-name").fill("Eva Roth")
            page.get_by_role("button", name="Speichern", exact=True).last.click()
            refusal = page.locator("#e-date")
            expect(refusal).to_contain_text("ist kein Termin der Reihe")
            expect(refusal).to_contain_text(long_date(days.fourth))
            expect(page.locator("#f-topic")).to_have_value("Sondertermin: Fragen zur Einbürgerung")
            walk.look("plan-browser-thursday-refused")
            assert served.revision() == current + 1  # nothing saved
            page.get_by_label("Ja, Zusatztermin außerhalb der Regel").check()
            she.save()
            expect(page.locator("dd strong")).to_have_text("Sondertermin: Fragen zur Einbürgerung")
            expect(she.state()).to_have_text("geplant")
            walk.look("plan-browser-extra")
            page.get_by_role("link", name="Plan", exact=True).first.click()
            page.get_by_role("link", name="Texte der Reihe").click()
            expect(page.locator("#f-invitation_days")).to_have_value("21")
            walk.look("plan-browser-series")
            assert walk.serious == []
        finally:
            browser.close()
    assert served.revision() == current + 2
    # Nothing else went to the subscribers: no second copy of anything.
    assert sent(served.new_mail()) == []
