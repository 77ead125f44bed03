"""The series' public home in headless Chromium against a real `session-bot serve --sandbox`
(issue 17): the home page at 1200 and 390 px in German and English, subscribing with its form
(confirmation mail → confirm page with the private calendar feed), the archive with a materials
link, and an announcement written in the console, previewed, tested and sent — each subscriber
gets exactly one. Every page is photographed at 390 and 1200 px (test-artifacts/public/) and
checked with axe-core for serious WCAG 2 AA violations and for horizontal overflow on a phone.

The daemon runs on the real clock, so the plan is written around today: a session held four days
ago with its slides, the next one in three days (its invitation is due when the daemon starts)
and a cancelled one in ten.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from babel.dates import format_date, get_timezone_name
from icalendar import Calendar

from session_bot import wiring
from session_bot.settings import load_settings
from tests.support.console import ORGANISER, PASSWORD, add_organiser
from tests.support.daemon_process import serve_process
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.waiting import wait_for
from tests.support.web_subscribe import confirm_link, text_of
from tests.web.test_subscribe_browser import BERLIN, CHROMIUM

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]
ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts" / "public"
SECRET = "test-secret-key-0123456789abcdef"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip
IMPRINT = "https://organiser.example.org/impressum"
PRIVACY = "https://organiser.example.org/datenschutz"
SLIDES = "https://example.org/folien-wohnen.pdf"
SUBSCRIBERS = [f"person{n}@example.org" for n in range(3)]
NEW = "lena.schaefer@example.org"
SUBJECT = "Im August kein Termin"


@dataclass(frozen=True)
class Days:
    past: dt.date  # held four days ago, with slides
    next: dt.date  # in three days: invited when the daemon starts
    cancelled: dt.date  # in ten days, cancelled with a reason


def plan_yaml(days: Days) -> str:
    weekday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][days.next.weekday()]
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=WEEKLY;BYDAY={weekday}"
    starts_on: {(days.past - dt.timedelta(days=7)).isoformat()}
    start: "12:30"
    duration: 60
    timezone: Europe/Berlin
    language: de
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 7
      invitation_time: "00:00"
      reminder: false
    texts:
      translations:
        en: {{title: "Welcome: Online Exchange"}}
    sessions:
      {days.past.isoformat()}:
        topic: Wohnen statt Unterbringen
        materials:
          - {{title: Folien zum Wohnen, url: "{SLIDES}", kind: slides}}
      {days.next.isoformat()}:
        topic: Ankommen in der Kommune
        translations:
          en: {{topic: Arriving in the municipality}}
        speakers:
          - {{name: Anna Lena Hemmer, role: Koordinatorin, organisation: Migrationsagentur}}
      {days.cancelled.isoformat()}:
        topic: Arbeitsmarktintegration
        cancelled: true
        reason: Die Referentin ist erkrankt.
        translations:
          en: {{reason: The speaker is ill.}}
"""


@dataclass(frozen=True)
class Served:
    url: str
    smtp: SmtpServer
    var: Path
    days: Days


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    today = dt.datetime.now(BERLIN).date()
    days = Days(today - dt.timedelta(days=4), today + dt.timedelta(days=3),
                today + dt.timedelta(days=10))  # fmt: skip
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_yaml(days), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with SmtpServer() as smtp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")},
            "SESSION_BOT_VAR_DIR": str(tmp_path / "var"),
            "SESSION_BOT_PLAN": str(plan),
            "SESSION_BOT_SECRET_KEY": SECRET,
            "SESSION_BOT_PUBLIC_URL": url,
            "SESSION_BOT_SMTP_HOST": smtp.host,
            "SESSION_BOT_SMTP_PORT": str(smtp.port),
            "SESSION_BOT_SMTP_TLS": "none",
            "SESSION_BOT_IMPRINT_URL": IMPRINT,
            "SESSION_BOT_PRIVACY_URL": PRIVACY,
        }
        settings = load_settings(None, var_dir=tmp_path / "var", secret_key=SECRET)
        store = wiring.open_store(settings)
        now = dt.datetime.now(dt.UTC)
        for address in SUBSCRIBERS:
            store.subscribers.add(address, name=None, language="de", status="confirmed",
                                  now=now, confirmed_at=now)  # fmt: skip
        add_organiser(store, wiring.system_clock)
        store.close()
        args = ["--sandbox", "--port", str(port), "--env-file", str(tmp_path / "no.env")]
        with serve_process(args, env, tmp_path / "daemon.log", lambda: _up(url)):
            yield Served(url, smtp, tmp_path / "var", days)


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Walk:
    """One browser page, photographed and checked at both widths after every step."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.serious: list[str] = []

    def look(self, name: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        for width in (390, 1200):
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
            results = Axe().run(self.page, options={"runOnly": ["wcag2a", "wcag2aa"]})
            for v in results.response["violations"]:
                if v["impact"] in ("serious", "critical"):
                    self.serious.append(f"{name} at {width} px: {v['id']} ({v['help']})")
        # Nothing on the page is wider than a phone.
        self.page.set_viewport_size({"width": 390, "height": 900})
        overflow = self.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, f"{name} is {overflow} px wide at 390 px"


def shown_time(day: dt.date, lang: str) -> tuple[str, str]:
    """The date and the time with its zone as a reader expects them (12:30–13:30 in Berlin)."""
    start = dt.datetime.combine(day, dt.time(12, 30), BERLIN)
    zone = get_timezone_name(start, "long", locale=lang)
    time = f"12:30–13:30 Uhr ({zone})" if lang == "de" else f"12:30\u202fPM–1:30\u202fPM ({zone})"
    return format_date(day, "full", locale=lang), time


def finished(served: Served) -> bool:
    """The announcement's mailing is done: every row sent, nothing left to send."""
    store = wiring.open_store(load_settings(None, var_dir=served.var, secret_key=SECRET))
    try:
        rows = [m for m in store.mailings.summaries() if m["kind"] == "announcement"]
        return len(rows) == 1 and rows[0]["finished_at"] is not None and rows[0]["sent"] == 4
    finally:
        store.close()


def mails_to(smtp: SmtpServer, address: str) -> list[Any]:
    return [m.message() for m in smtp.handler.to(address)]


def check_home(page: Any, served: Served, lang: str, walk: Walk) -> None:
    from playwright.sync_api import expect

    de = lang == "de"
    page.goto(served.url + ("/" if de else "/en/"))
    title = "Willkommen: Online Austausch" if de else "Welcome: Online Exchange"
    expect(page.get_by_role("heading", level=1)).to_have_text(title)
    sessions = page.locator("ol.home-sessions > li")
    date, time = shown_time(served.days.next, lang)
    upcoming = sessions.filter(has_text=date)
    expect(upcoming).to_contain_text(time)
    expect(upcoming).to_contain_text(
        "Ankommen in der Kommune" if de else "Arriving in the municipality"
    )
    expect(upcoming).to_contain_text("Anna Lena Hemmer, Koordinatorin, Migrationsagentur")
    cancelled = sessions.filter(has_text=shown_time(served.days.cancelled, lang)[0])
    expect(cancelled).to_contain_text(
        "Abgesagt: Die Referentin ist erkrankt." if de else "Cancelled: The speaker is ill."
    )
    expect(cancelled.locator("del")).to_have_text("Arbeitsmarktintegration")
    expect(
        sessions.filter(has_text=format_date(served.days.past, "full", locale=lang))
    ).to_have_count(0)

    imprint = page.get_by_role("link", name="Impressum" if de else "Imprint")
    expect(imprint).to_have_attribute("href", IMPRINT)
    privacy = page.get_by_role("link", name="Datenschutzerklärung" if de else "Privacy notice")
    expect(privacy).to_have_attribute("href", PRIVACY)
    feed = f"{served.url}/calendar.ics"
    webcal = "webcal://" + feed.removeprefix("http://")
    expect(
        page.get_by_role("link", name="Kalender abonnieren (webcal)" if de else
                         "Subscribe to the calendar (webcal)")
    ).to_have_attribute("href", webcal)  # fmt: skip
    google = page.get_by_role("link", name="Google")
    expect(google).to_have_attribute("href", re.compile(r"^https://calendar\.google\.com/"))
    expect(page.get_by_role("link", name="Outlook")).to_have_attribute(
        "href", re.compile(r"^https://outlook\.live\.com/calendar/0/addfromweb\?url=")
    )
    expect(page.get_by_role("link", name="Apple")).to_have_attribute("href", webcal)
    walk.look(f"home-{lang}")


def test_the_public_home_subscribing_the_archive_and_an_announcement(served: Served) -> None:
    from playwright.sync_api import expect, sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    url, smtp = served.url, served.smtp
    # The daemon's first run invites the three subscribers (the invitation is due).
    wait_for(lambda: all(mails_to(smtp, a) for a in SUBSCRIBERS), "the start run's invitations")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            # axe is injected as a script: the pages' CSP forbids scripts, so the test bypasses it.
            context = browser.new_context(locale="de-DE", bypass_csp=True)
            page = context.new_page()
            walk = Walk(page)
            external: list[str] = []
            page.on("request", lambda r: None if r.url.startswith((url, "data:"))
                    else external.append(r.url))  # fmt: skip

            check_home(page, served, "en", walk)
            check_home(page, served, "de", walk)

            # Subscribing with the home page's own form.
            page.get_by_role("link", name="Zur Anmeldung").click()
            page.get_by_label("E-Mail-Adresse").fill(NEW)
            page.get_by_label("Name (freiwillig)").fill("Lena Schäfer")
            page.get_by_role("button", name="Anmelden").click()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                "Bitte prüfen Sie Ihr Postfach"
            )
            walk.look("subscribe-sent")
            confirmation = wait_for(lambda: mails_to(smtp, NEW), "the confirmation mail")[0]
            assert "Guten Tag Lena Schäfer" in text_of(confirmation)
            page.goto(confirm_link(confirmation))
            page.get_by_role("button", name="Anmeldung bestätigen").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Anmeldung bestätigt")
            expect(
                page.get_by_role("heading", name="Alle Termine im eigenen Kalender (mit Zoom-Link)")
            ).to_be_visible()
            own = page.locator("a.feed-url").get_attribute("href")
            assert own is not None and own.startswith(f"{url}/calendar/")
            webcal = page.get_by_role("link", name="Im Kalender abonnieren (webcal)")
            expect(webcal).to_have_attribute("href", "webcal://" + own.removeprefix("http://"))
            walk.look("confirmed")
            store = wiring.open_store(load_settings(None, var_dir=served.var, secret_key=SECRET))
            try:
                row = store.subscribers.get(NEW)
                assert row is not None and row["status"] == "confirmed"
                assert row["consent_version"].startswith("de-")
            finally:
                store.close()
            # Her feed carries the next session's join link; the public one does not.
            events = Calendar.from_ical(httpx.get(own).content).walk("VEVENT")
            joins = [str(e["URL"]) for e in events if "URL" in e]
            assert len(joins) == 1 and joins[0].startswith("http")
            assert joins[0] not in httpx.get(f"{url}/calendar.ics").text

            # The archive, reached from the home page: the past session with its slides.
            page.goto(f"{url}/")
            page.get_by_role("link", name="Vergangene Termine mit Folien und Dokumentation").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Archiv")
            expect(
                page.get_by_role("heading", name=format_date(served.days.past, "full", locale="de"))
            ).to_be_visible()
            expect(page.get_by_text("Wohnen statt Unterbringen")).to_be_visible()
            slides = page.get_by_role("link", name="Folien zum Wohnen")
            expect(slides).to_have_attribute("href", SLIDES)
            walk.look("archive")
            assert external == []  # the public pages load nothing from elsewhere

            # An announcement: written in the console, previewed, tested, sent.
            page.goto(f"{url}/admin/")
            page.get_by_label("E-Mail-Adresse").fill(ORGANISER)
            page.get_by_label("Passwort").fill(PASSWORD)
            page.get_by_role("button", name="Anmelden").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
            page.get_by_role("link", name="Mitteilungen").first.click()
            page.locator("#subject_de").fill(SUBJECT)
            page.locator("#text_de").fill("Liebe Community,\n\nim August pausieren wir.")
            page.get_by_role("button", name="Vorschau").click()
            preview = page.frame_locator("iframe.mail").first
            expect(preview.get_by_text("im August pausieren wir.")).to_be_visible()
            walk.look("announcement-preview")
            page.get_by_role("button", name="Test an mich senden").click()
            expect(page.get_by_text(f"Der Test ist an {ORGANISER} gegangen.")).to_be_visible()
            test = wait_for(lambda: mails_to(smtp, ORGANISER), "the test to the organiser")
            assert [m["Subject"] for m in test] == [f"[TEST] {SUBJECT}"]
            page.get_by_role("button", name="Weiter zum Senden").click()
            expect(
                page.get_by_text("Die Mitteilung geht jetzt an 4 Empfänger:innen.")
            ).to_be_visible()
            walk.look("announcement-confirm")
            page.get_by_role("button", name="Ja, an 4 Empfänger:innen senden").click()
            expect(
                page.get_by_text("Die Mitteilung ist festgelegt und wird gesendet.")
            ).to_be_visible()

            everyone = [*SUBSCRIBERS, NEW]

            def delivered() -> bool:
                got = Counter(a for m in smtp.handler.messages for a in m.rcpt_tos
                              if SUBJECT in m.message()["Subject"])  # fmt: skip
                return all(got[a] >= 1 for a in everyone)

            wait_for(delivered, "the announcement to every subscriber", timeout=30)
            wait_for(lambda: finished(served), "the announcement's mailing to finish")
            page.get_by_role("link", name="Aussendungen").click()
            announced = page.get_by_role("link", name=f"Mitteilung: {SUBJECT}")
            expect(announced).to_be_visible()
            expect(page.locator("tr", has=announced)).to_contain_text("abgeschlossen")
            walk.look("mailings")
            assert walk.serious == []
        finally:
            browser.close()

    # The mailing is finished: each subscriber got exactly one copy; the organiser only the test.
    got = Counter(a for m in smtp.handler.messages for a in m.rcpt_tos
                  if SUBJECT in m.message()["Subject"])  # fmt: skip
    assert got == {**dict.fromkeys(everyone, 1), ORGANISER: 1}
