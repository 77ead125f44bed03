"""Editing the plan in the console against a real uvicorn: sessions, an extra session, the
series' texts, revisions (view, compare, restore, download), conflicts and a file-managed plan.

The server's plan in force is the database's current revision as the daemon holds it: it is
re-read only when the console calls ``plan_saved``, as the daemon reloads."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.app.plan_book import PlanBook, Who, plan_of
from session_bot.core.plan import Plan, load_plan
from session_bot.core.plan.edit import PlanDocument, SessionFields
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT
from tests.support.console import ORGANISER, PASSWORD, add_organiser, csrf_of
from tests.support.settings import make_settings
from tests.support.web_server import ServerThread

MARCH = dt.date(2025, 3, 26)
APRIL = dt.date(2025, 4, 30)


@dataclass
class PlanConsole:
    url: str
    store: Store
    book: PlanBook
    in_force: list[Plan]
    reloads: list[int] = field(default_factory=list)

    @contextmanager
    def signed_in(self) -> Iterator[httpx.Client]:
        with httpx.Client(base_url=self.url, headers={"Accept-Language": "de-DE"}) as client:
            token = csrf_of(client.get("/admin/sign-in").text)
            answer = client.post(
                "/admin/sign-in", data={"email": ORGANISER, "password": PASSWORD, "csrf": token}
            )
            assert answer.status_code == 303, answer.text
            yield client

    def fields(self, series: str = "willkommen", day: dt.date = MARCH) -> SessionFields:
        revision = self.book.require_current()
        return PlanDocument(revision.text).session_fields(series, day)


@contextmanager
def _server(tmp_path: Path, plan_file: Path | None) -> Iterator[PlanConsole]:
    settings = make_settings(tmp_path, public_url="http://127.0.0.1:8080")
    store = wiring.open_store(settings)
    clock = ManualClock(SEED_INVITATION_AT)
    book = PlanBook(store, clock)
    if plan_file is None:
        book.import_text(EXAMPLE_PLAN.read_text("utf-8"), Who("test"), name="plan.yaml")
        in_force = [plan_of(book.require_current())]
    else:
        in_force = [load_plan(plan_file)]
    transport = MaildirTransport(settings.resolved_outbox)
    console = PlanConsole("", store, book, in_force)

    def reload() -> None:  # what the daemon does when the console saved a revision
        console.in_force[0] = plan_of(book.require_current())
        console.reloads.append(console.book.require_current().id)

    ctx = WebContext(
        settings=settings,
        store=store,
        clock=clock,
        plan=lambda: console.in_force[0],
        transport=lambda: transport,
        secret_key=wiring.secret_key(settings),
        plan_file=plan_file,
        plan_saved=reload,
    )
    add_organiser(store, clock)
    try:
        with ServerThread(create_app(ctx)) as server:
            console.url = server.url
            yield console
    finally:
        store.close()


@pytest.fixture
def pc(tmp_path: Path) -> Iterator[PlanConsole]:
    with _server(tmp_path, None) as c:
        yield c


class _Form(HTMLParser):
    """The fields a browser would submit from the form posting to ``action`` (no button)."""

    def __init__(self, action: str) -> None:
        super().__init__()
        self.action = action
        self.inside = False
        self.values: dict[str, str] = {}
        self._area: str | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("action", "").split("?")[0] == self.action
        if not self.inside or "name" not in a:
            if tag == "option" and self._select and "selected" in a:
                self.values[self._select] = a.get("value", "")
            return
        if tag == "input":
            kind = a.get("type", "text")
            if kind in ("checkbox", "radio"):
                if "checked" in a:
                    self.values[a["name"]] = a.get("value", "on")
            else:
                self.values[a["name"]] = a.get("value", "")
        elif tag == "textarea":
            self._area = a["name"]
            self.values[self._area] = ""
        elif tag == "select":
            self._select = a["name"]

    def handle_endtag(self, tag: str) -> None:
        if tag == "textarea":
            self._area = None
        elif tag == "select":
            self._select = None
        elif tag == "form":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self._area is not None:
            self.values[self._area] += data


def form_of(page: str, action: str) -> dict[str, str]:
    parser = _Form(action)
    parser.feed(page)
    assert parser.values, f"no form posting to {action}"
    return parser.values


def edit_form(client: httpx.Client, day: dt.date = MARCH) -> dict[str, str]:
    action = f"/admin/sessions/{day.isoformat()}/edit"
    page = client.get(action)
    assert page.status_code == 200, page.text
    return form_of(page.text, action)


def error_at(page: str, key: str) -> str:
    start = page.find(f'id="e-{key}"')
    assert start != -1, f"no message at {key}"
    return html.unescape(page[start : page.find("</p>", start)])


def test_edit_topic_and_speakers(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        form = edit_form(client)
        assert form["sp-0-name"] == "Dr. Miriam Sommer"
        assert form["base_id"] == "1"
        form["topic"] = "Arbeit und Ausbildung:\nwas Kommunen erreichen"
        form["intro"] = "Erster Absatz,\nzwei Zeilen.\n\nZweiter Absatz."
        form |= {"sp-0-pos": "2", "sp-1-pos": "1", "sp-1-role": "Teamleiter"}
        form |= {"sp-2-name": "Aylin Kaya", "sp-2-organisation": "IHK Dresden", "sp-2-pos": "3"}
        answer = client.post("/admin/sessions/2025-03-26/edit", data=form)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/admin/sessions/2025-03-26?saved=2"
        page = client.get(answer.headers["location"])
        assert "Gespeichert (Stand 2)" in page.text
        assert "was Kommunen erreichen" in page.text  # the plan in force has it
    fields = pc.fields()
    assert fields.topic == "Arbeit und Ausbildung:\nwas Kommunen erreichen"
    assert fields.intro == ("Erster Absatz, zwei Zeilen.", "Zweiter Absatz.")
    assert [(s.name, s.role, s.organisation) for s in fields.speakers] == [
        ("Jonas Albrecht", "Teamleiter", "Jobcenter Landkreis Görlitz"),
        ("Dr. Miriam Sommer", "Leiterin Integrationsmanagement", "Stadt Leipzig"),
        ("Aylin Kaya", "", "IHK Dresden"),
    ]
    revision = pc.book.require_current()
    assert (revision.id, revision.author, revision.source) == (2, ORGANISER, "console")
    assert "# After the session: links for the archive page" in revision.text  # comments kept
    assert pc.reloads == [2]
    content = pc.in_force[0].series[0].sessions[MARCH]
    assert content.speakers[2].name == "Aylin Kaya"
    entry = pc.store.audit.latest()[0]
    assert (entry.actor, entry.action) == (ORGANISER, "plan-console")
    assert "session willkommen/2025-03-26" in entry.detail


def test_another_row_and_removing_one(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        form = edit_form(client) | {"more": "speaker", "topic": "Noch nicht gespeichert"}
        answer = client.post("/admin/sessions/2025-03-26/edit", data=form)
        assert answer.status_code == 200
        again = form_of(answer.text, "/admin/sessions/2025-03-26/edit")
        assert again["sp_rows"] == "4" and again["sp-3-name"] == ""
        assert again["topic"] == "Noch nicht gespeichert"  # what she typed stays
        assert pc.book.require_current().id == 1  # nothing saved
        again |= {"sp-0-remove": "yes"}
        assert client.post("/admin/sessions/2025-03-26/edit", data=again).status_code == 303
    assert [s.name for s in pc.fields().speakers] == ["Jonas Albrecht"]


def test_problems_are_shown_next_to_their_fields(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        form = edit_form(client) | {"start": "12.30", "sp-2-role": "Moderation"}
        form |= {"cancelled": "yes", "mat-0-title": "Folien", "mat-0-url": "http://x.org/f"}
        answer = client.post("/admin/sessions/2025-03-26/edit", data=form)
        assert answer.status_code == 422
        page = answer.text
        assert "„12.30“" in error_at(page, "start")
        assert "Namen" in error_at(page, "sp-2-name")
        assert "Grund" in error_at(page, "reason")
        assert "https://" in error_at(page, "mat-0-url")
        assert 'class="summary"' in page and 'href="#f-start"' in page
        again = form_of(page, "/admin/sessions/2025-03-26/edit")
        assert again["start"] == "12.30" and again["sp-2-role"] == "Moderation"
    assert pc.book.require_current().id == 1
    assert pc.reloads == []


def test_an_extra_date_is_confirmed_and_a_taken_one_refused(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        form = form_of(client.get("/admin/sessions/new").text, "/admin/sessions/new")
        form |= {"date": "2025-03-27", "topic": "Sondertermin", "sp-0-name": "Eva Roth"}
        answer = client.post("/admin/sessions/new", data=form)
        assert answer.status_code == 422
        assert "Mittwoch, 26. März 2025" in error_at(answer.text, "date")
        assert "Ja, Zusatztermin außerhalb der Regel" in answer.text
        assert pc.book.require_current().id == 1
        form = form_of(answer.text, "/admin/sessions/new") | {"extra": "yes"}
        answer = client.post("/admin/sessions/new", data=form)
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/admin/sessions/2025-03-27?saved=2"
        assert "Sondertermin" in client.get(answer.headers["location"]).text
        form |= {"date": "26.03.2025"}
        answer = client.post("/admin/sessions/new", data=form)
        assert answer.status_code == 422
        assert "schon einen Eintrag" in error_at(answer.text, "date")
        answer = client.post("/admin/sessions/new", data=form | {"date": "31.02.2025"})
        assert answer.status_code == 422
        assert "Tag, Monat und Jahr" in error_at(answer.text, "date")
    fields = pc.fields(day=dt.date(2025, 3, 27))
    assert fields.extra and fields.speakers[0].name == "Eva Roth"
    assert pc.book.require_current().id == 2


def test_two_forms_on_one_session_the_second_is_refused(pc: PlanConsole) -> None:
    with pc.signed_in() as first, pc.signed_in() as second:
        a, b = edit_form(first), edit_form(second)
        a["topic"] = "Thema von A"
        assert first.post("/admin/sessions/2025-03-26/edit", data=a).status_code == 303
        b["topic"] = "Thema von B"
        answer = second.post("/admin/sessions/2025-03-26/edit", data=b)
        assert answer.status_code == 409
        page = html.unescape(answer.text)
        assert f"Dieser Termin wurde inzwischen von {ORGANISER} geändert" in page
        assert "topic:" in page and "Thema von A" in page
        now = form_of(answer.text, "/admin/sessions/2025-03-26/edit")
        assert now["topic"] == "Thema von A" and now["base_id"] == "2"  # the current values
    assert pc.fields().topic == "Thema von A"
    assert pc.book.require_current().id == 2


def test_two_forms_on_different_sessions_are_both_saved(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        march, april = edit_form(client, MARCH), edit_form(client, APRIL)
        march["topic"] = "Neu im März"
        april["topic"] = "Neu im April"
        assert client.post("/admin/sessions/2025-03-26/edit", data=march).status_code == 303
        assert client.post("/admin/sessions/2025-04-30/edit", data=april).status_code == 303
    assert pc.fields(day=MARCH).topic == "Neu im März"
    assert pc.fields(day=APRIL).topic == "Neu im April"
    assert pc.book.require_current().id == 3


def test_restore_an_earlier_revision(pc: PlanConsole) -> None:
    original = pc.book.require_current().text
    with pc.signed_in() as client:
        form = edit_form(client) | {"topic": "Zwischenstand"}
        assert client.post("/admin/sessions/2025-03-26/edit", data=form).status_code == 303
        listing = client.get("/admin/plan").text
        assert "Stand 1" in listing and "Stand 2" in listing and ORGANISER in listing
        page = client.get("/admin/plan/1").text
        assert '<span class="add">' in page and '<span class="remove">' in page
        assert "Zwischenstand" in page
        token = csrf_of(page)
        confirm = client.post("/admin/plan/1/restore", data={"csrf": token})
        assert confirm.status_code == 200 and "Ja, Stand 1 wiederherstellen" in confirm.text
        assert pc.book.require_current().id == 2  # only asked
        done = client.post("/admin/plan/1/restore", data={"csrf": token, "confirm": "yes"})
        assert done.status_code == 303 and done.headers["location"] == "/admin/plan?restored=3"
        listing = client.get(done.headers["location"]).text
        assert "Wiederhergestellt (Stand 3)" in listing
        # Each revision says what it was in her words, not the log's notes.
        assert "Konsole: Termin am Mittwoch, 26. März 2025" in listing
        assert "Wiederhergestellt: aus Stand 1" in listing
        assert "session willkommen/" not in listing and "restored revision" not in listing
        download = client.get("/admin/plan/current.yaml")
        assert download.status_code == 200 and download.text == original
        assert download.headers["content-disposition"].startswith("attachment;")
    current = pc.book.require_current()
    assert (current.id, current.source, current.text) == (3, "restore", original)
    assert pc.reloads == [2, 3]
    topic = pc.in_force[0].series[0].sessions[MARCH].topic
    assert topic is not None and topic.startswith("Arbeitsmarktintegration")
    assert pc.store.audit.latest()[0].action == "plan-restore"


def test_the_series_form_changes_the_lead_time(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        page = client.get("/admin/series/willkommen/edit")
        form = form_of(page.text, "/admin/series/willkommen/edit")
        assert form["invitation_days"] == "14" and form["updates"] == "review"
        answer = client.post(
            "/admin/series/willkommen/edit", data=form | {"invitation_days": "zehn"}
        )
        assert answer.status_code == 422 and "Zahl" in error_at(answer.text, "invitation_days")
        answer = client.post(
            "/admin/series/willkommen/edit", data=form | {"invitation_time": "9 Uhr"}
        )
        assert answer.status_code == 422 and "9 Uhr" in error_at(answer.text, "invitation_time")
        # Three mistakes at once: all three named, each at its field, not one per round.
        answer = client.post(
            "/admin/series/willkommen/edit",
            data=form | {"invitation_days": "400", "invitation_time": "9 Uhr",
                         "reminder_days": "-1"},
        )  # fmt: skip
        assert answer.status_code == 422
        assert "höchstens 120 Tage" in error_at(answer.text, "invitation_days")
        assert "9 Uhr" in error_at(answer.text, "invitation_time")
        assert "Zahl" in error_at(answer.text, "reminder_days")
        assert pc.book.require_current().id == 1
        form |= {"invitation_days": "10", "updates": "automatic"}
        answer = client.post("/admin/series/willkommen/edit", data=form)
        assert answer.status_code == 303, answer.text
        assert "Gespeichert (Stand 2)" in client.get(answer.headers["location"]).text
    series = pc.in_force[0].series[0]
    assert (series.lead.invitation_days, series.updates) == (10, "automatic")
    assert "# meeting + invitation 14 days before" in pc.book.require_current().text


def test_a_file_managed_plan_is_shown_not_edited(tmp_path: Path) -> None:
    file = tmp_path / "plan.yaml"
    file.write_text(EXAMPLE_PLAN.read_text("utf-8"), "utf-8")
    with _server(tmp_path, file) as pc, pc.signed_in() as client:
        page = client.get("/admin/sessions/2025-03-26/edit")
        assert page.status_code == 200
        note = f"Der Plan wird als Datei gepflegt ({file}); Änderungen bitte dort."
        assert note in html.unescape(page.text)
        assert '<fieldset class="plain" disabled>' in page.text and "Dr. Miriam Sommer" in page.text
        form = form_of(page.text, "/admin/sessions/2025-03-26/edit") | {"csrf": csrf_of(page.text)}
        for path in ("/admin/sessions/2025-03-26/edit", "/admin/series/willkommen/edit",
                     "/admin/plan/1/restore", "/admin/sessions/new"):  # fmt: skip
            answer = client.post(path, data=form | {"topic": "Neu", "confirm": "yes"})
            assert answer.status_code == 409, path
            assert note in html.unescape(answer.text)
        assert client.get("/admin/plan/current.yaml").text == file.read_text("utf-8")
        assert pc.book.current() is None
    assert file.read_text("utf-8") == EXAMPLE_PLAN.read_text("utf-8")


POSTS = ["/admin/sessions/2025-03-26/edit", "/admin/sessions/new",
         "/admin/series/willkommen/edit", "/admin/plan/1/restore"]  # fmt: skip


def test_every_plan_action_needs_a_session_and_the_form_token(pc: PlanConsole) -> None:
    with pc.signed_in() as client:
        form = edit_form(client) | {"topic": "Ohne Token", "confirm": "yes", "extra": "yes"}
    for path in POSTS:
        answer = httpx.post(f"{pc.url}{path}", data=form)
        assert answer.status_code == 303, path
        assert answer.headers["location"].startswith("/admin/sign-in"), path
    with pc.signed_in() as client:
        for path in POSTS:
            answer = client.post(path, data=form | {"csrf": "not-the-token"})
            assert answer.status_code == 400, path
    assert pc.book.require_current().id == 1
    assert not [e for e in pc.store.audit.latest() if e.action.startswith("plan-console")]


@pytest.mark.browser
def test_the_forms_in_a_browser_on_a_phone(pc: PlanConsole) -> None:
    """Chromium at 390 px: the edit form, another row, saving, a revision's comparison —
    nothing wider than the phone, no serious WCAG 2 AA violation."""
    from playwright.sync_api import expect, sync_playwright

    from tests.web.console.test_console_browser import ARGS, ARTIFACTS, Walk
    from tests.web.test_subscribe_browser import CHROMIUM

    if not CHROMIUM.exists():
        pytest.skip("needs Debian's chromium")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            context = browser.new_context(locale="de-DE", bypass_csp=True)  # for axe's script
            page = context.new_page()
            walk = Walk(page, pc.url)
            page.goto(f"{pc.url}/admin/sign-in")
            page.get_by_label("E-Mail-Adresse").fill(ORGANISER)
            page.get_by_label("Passwort").fill(PASSWORD)
            page.get_by_role("button", name="Anmelden").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
            page.get_by_role("link", name="Termin hinzufügen").first.click()
            walk.look("plan-new")
            page.goto(f"{pc.url}/admin/sessions/2025-03-26")
            page.get_by_role("link", name="Bearbeiten").click()
            walk.look("plan-edit")
            page.locator("#f-topic").fill("Im Browser geändert")
            page.get_by_role("button", name="Weitere Zeile").first.click()
            page.locator("#f-sp-3-name").fill("Nina Berg")
            page.locator("#f-start").fill("12.30")
            page.get_by_role("button", name="Speichern", exact=True).last.click()
            expect(page.locator("#e-start")).to_contain_text("12.30")
            walk.look("plan-edit-problems")
            page.locator("#f-start").fill("")
            page.get_by_role("button", name="Speichern", exact=True).last.click()
            expect(page.get_by_text("Gespeichert (Stand 2)")).to_be_visible()
            page.goto(f"{pc.url}/admin/plan/1")
            walk.look("plan-revision")
            page.goto(f"{pc.url}/admin/series/willkommen/edit")
            walk.look("plan-series")
        finally:
            browser.close()
    assert walk.serious == []
    assert [s.name for s in pc.fields().speakers][-1] == "Nina Berg"


def test_a_session_waiting_for_its_topic_gets_one(pc: PlanConsole) -> None:
    june = dt.date(2025, 6, 25)  # the rule's date, not yet in the plan's `sessions:`
    with pc.signed_in() as client:
        english = client.get("/admin/sessions/2025-06-25/edit?lang=en")
        assert "Edit the session on 25.06.2025" in english.text
        assert 'placeholder="12:30"' in english.text  # the series' start as the default
        form = edit_form(client, june)
        assert form["topic"] == "" and form["sp-0-name"] == ""
        form |= {"topic": "Sprachkurse vor Ort", "sp-0-name": "Mira Lange", "duration": "90"}
        assert client.post("/admin/sessions/2025-06-25/edit", data=form).status_code == 303
        assert client.get("/admin/sessions/2025-07-02/edit").status_code == 404
    content = pc.in_force[0].series[0].sessions[june]
    assert (content.topic, content.duration, content.speakers[0].name) == (
        "Sprachkurse vor Ort", 90, "Mira Lange",
    )  # fmt: skip
