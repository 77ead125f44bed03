"""The organiser's console in headless Chromium against a real `session-bot serve --sandbox`:
sign in, the overview, a session and its preview, a test mail to herself, run now, one
recipient's history, a CSV import with a bad line, the export, sign out. Every page is
photographed at 390 and 1200 px (test-artifacts/console/) and checked with axe-core for serious
WCAG 2 AA violations.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_bot import wiring
from session_bot.settings import load_settings
from tests.support.console import ORGANISER, PASSWORD, add_organiser
from tests.support.daemon_process import serve_process
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.waiting import wait_for
from tests.web.test_subscribe_browser import BERLIN, CHROMIUM, plan_yaml

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's chromium"),
]
ROOT = Path(__file__).resolve().parents[3]
ARTIFACTS = ROOT / "test-artifacts" / "console"
SECRET = "test-secret-key-0123456789abcdef"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]  # fmt: skip


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[str, SmtpServer, Path, dt.date]]:
    day = dt.datetime.now(BERLIN).date() + dt.timedelta(days=3)
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_yaml(day), encoding="utf-8")
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
        }
        settings = load_settings(None, var_dir=tmp_path / "var", secret_key=SECRET)
        store = wiring.open_store(settings)
        now = dt.datetime.now(dt.UTC)
        for n in range(3):
            store.subscribers.add(f"person{n}@example.org", name=None, language="de",
                                  status="confirmed", now=now, confirmed_at=now)  # fmt: skip
        add_organiser(store, wiring.system_clock)
        store.close()
        args = ["--sandbox", "--port", str(port), "--env-file", str(tmp_path / "no.env")]
        with serve_process(args, env, tmp_path / "daemon.log", lambda: _up(url)):
            yield url, smtp, tmp_path, day


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/admin/sign-in", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


class Walk:
    """One browser page, photographed and checked at both widths after every step."""

    def __init__(self, page: Any, url: str) -> None:
        self.page, self.url = page, url
        self.serious: list[str] = []

    def look(self, name: str) -> None:
        from axe_playwright_python.sync_playwright import Axe

        for width in (390, 1200):
            self.page.set_viewport_size({"width": width, "height": 900})
            self.page.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"), full_page=True)
        results = Axe().run(self.page, options={"runOnly": ["wcag2a", "wcag2aa"]})
        for v in results.response["violations"]:
            if v["impact"] in ("serious", "critical"):
                self.serious.append(f"{name}: {v['id']} ({v['help']})")
        # Nothing on the page is wider than a phone.
        self.page.set_viewport_size({"width": 390, "height": 900})
        overflow = self.page.evaluate("document.documentElement.scrollWidth")
        assert overflow <= 390, f"{name} is {overflow} px wide at 390 px"


def test_the_organiser_walks_through_her_console(
    served: tuple[str, SmtpServer, Path, dt.date],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, smtp, tmp_path, day = served
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    # The daemon's first run invites the three subscribers (the invitation is due).
    wait_for(lambda: len(smtp.handler.messages) >= 3, "the invitations of the start run")
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            # axe is injected as a script: the pages' CSP forbids scripts, so the test bypasses it.
            context = browser.new_context(locale="de-DE", bypass_csp=True)
            page = context.new_page()
            walk = Walk(page, url)

            page.goto(f"{url}/admin/")
            expect(page.get_by_role("heading", level=1)).to_have_text("Anmelden")
            walk.look("sign-in")
            page.get_by_label("E-Mail-Adresse").fill(ORGANISER)
            page.get_by_label("Passwort").fill(PASSWORD)
            page.get_by_role("button", name="Anmelden").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Übersicht")
            expect(page.get_by_text("eingeladen").first).to_be_visible()
            walk.look("overview")

            # A session, its invitation as recipients see it, a test mail to herself.
            page.locator(f"a[href='/admin/sessions/{day.isoformat()}']").first.click()
            expect(page.get_by_text("Ankommen in der Kommune").first).to_be_visible()
            walk.look("session")
            page.get_by_role("button", name="Test an mich senden").click()
            wait_for(lambda: smtp.handler.to(ORGANISER), "the test mail to the organiser")
            walk.look("session-test-sent")

            # Run now: what it would do (nothing is due: the start run invited), confirm, result.
            page.get_by_role("link", name="Jetzt ausführen").click()
            walk.look("run-now")
            page.get_by_role("button", name="Jetzt ausführen").click()
            walk.look("run-done")

            # Mailings, and one recipient's history.
            page.get_by_role("link", name="Aussendungen").click()
            expect(page.get_by_text("Einladung").first).to_be_visible()
            walk.look("mailings")
            page.get_by_label("E-Mail-Adresse").fill("person1@example.org")
            page.get_by_label("E-Mail-Adresse").press("Enter")
            expect(page.get_by_text("person1@example.org").first).to_be_visible()
            walk.look("recipient")

            # Subscribers: import a CSV with one bad line, see it named, import; export.
            page.get_by_role("link", name="Abonnent:innen").click()
            walk.look("subscribers")
            csv = tmp_path / "liste.csv"
            csv.write_text("email;name\nneu@example.org;Neu\nkaputt@;Kaputt\n", encoding="utf-8")
            page.get_by_role("link", name="CSV importieren").first.click()
            page.set_input_files("input[type=file]", str(csv))
            page.get_by_role("button", name="Datei prüfen").click()
            expect(page.get_by_text("kaputt@").first).to_be_visible()
            walk.look("import-preview")
            page.get_by_role("button", name="Importieren").click()
            walk.look("import-done")
            page.get_by_role("link", name="Abonnent:innen").click()
            expect(page.get_by_text("neu@example.org").first).to_be_visible()
            with page.expect_download() as download:
                page.get_by_role("link", name="Als CSV exportieren").first.click()
            exported = Path(download.value.path()).read_text(encoding="utf-8-sig")
            assert "neu@example.org" in exported and "kaputt@" not in exported

            page.get_by_role("link", name="Protokoll").click()
            expect(page.get_by_text("angemeldet").first).to_be_visible()
            walk.look("audit")

            page.get_by_role("button", name="Abmelden").click()
            expect(page.get_by_text("Sie sind abgemeldet.")).to_be_visible()
            assert walk.serious == []
        finally:
            browser.close()
