"""The whole subscriber path in headless Chromium against a real `session-bot serve --sandbox`
process: form → confirmation mail (aiosmtpd) → confirm page → the invitation that already went
out → one-click unsubscribe page → nothing more, while the others still get mail.

The daemon runs on the real clock, so the plan is written for the days around today: the next
session is in three days and its invitation (a week ahead) is due when the daemon starts.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from session_bot import wiring
from session_bot.core.plan import load_plan
from session_bot.settings import load_settings
from tests.support.daemon_process import serve_process
from tests.support.smtp_server import SmtpServer, free_port
from tests.support.web_subscribe import (
    SECRET,
    confirm_link,
    header_unsubscribe_url,
    text_of,
    wait_for,
)

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (scripts/ensure-chromium.sh)"
    ),
]
BERLIN = ZoneInfo("Europe/Berlin")
EXISTING = "frueh@example.org"
NEW = "neu.leserin@example.org"
ADMIN = "admin-token-0123456789abcdef-XYZ"
ROOT = Path(__file__).resolve().parents[2]


def plan_yaml(day: dt.date, cancelled: bool = False) -> str:
    weekday = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"][day.weekday()]
    cancel = (
        '\n        cancelled: true\n        reason: "Die Referentin ist erkrankt."'
        if cancelled
        else ""
    )
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=WEEKLY;BYDAY={weekday}"
    starts_on: {day.isoformat()}
    start: "12:30"
    duration: 60
    timezone: Europe/Berlin
    language: de
    updates: automatic
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 7
      invitation_time: "00:00"
      reminder: false
    sessions:
      {day.isoformat()}:
        topic: Ankommen in der Kommune – ein Browsertest
        intro:
          - Wir testen den ganzen Weg einer neuen Abonnentin.{cancel}
"""


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, SmtpServer, Path]]:
    today = dt.datetime.now(BERLIN).date()
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_yaml(today + dt.timedelta(days=3)), encoding="utf-8")
    load_plan(plan)  # fail here, not in the daemon, if the plan is wrong
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
            "SESSION_BOT_ADMIN_TOKEN": ADMIN,
        }
        settings = load_settings(None, var_dir=tmp_path / "var", secret_key=SECRET)
        store = wiring.open_store(settings)
        store.subscribers.add(EXISTING, name=None, language="de", status="confirmed",
                             now=dt.datetime.now(dt.UTC))  # fmt: skip
        store.close()
        args = ["--sandbox", "--port", str(port), "--plan-check", "1",
                "--env-file", str(tmp_path / "no.env")]  # fmt: skip
        with serve_process(args, env, tmp_path / "daemon.log", lambda: _up(url)):
            yield url, smtp, plan


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/subscribe", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def mails(smtp: SmtpServer, address: str) -> list:  # type: ignore[type-arg]
    return [m.message() for m in smtp.handler.to(address)]


def test_subscribe_confirm_get_the_invitation_unsubscribe_and_receive_nothing_more(
    daemon: tuple[str, SmtpServer, Path],
) -> None:
    from playwright.sync_api import expect, sync_playwright

    url, smtp, plan = daemon
    # The daemon's first run sent the invitation to the existing subscriber.
    wait_for(lambda: mails(smtp, EXISTING), "the invitation to the existing subscriber")

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM),
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run"],
        )  # fmt: skip
        try:
            page = browser.new_page(locale="de-DE")
            external: list[str] = []
            page.on(
                "request",
                lambda r: external.append(r.url) if not r.url.startswith((url, "data:")) else None,
            )
            page.goto(f"{url}/subscribe")
            expect(page.get_by_role("heading", level=1)).to_have_text("Einladungen erhalten")
            page.get_by_label("E-Mail-Adresse").fill(NEW)
            page.get_by_label("Name (freiwillig)").fill("Lena Schäfer")
            page.get_by_role("button", name="Anmelden").click()
            expect(page.get_by_role("heading", level=1)).to_have_text(
                "Bitte prüfen Sie Ihr Postfach"
            )

            confirmation = wait_for(lambda: mails(smtp, NEW), "the confirmation mail")[0]
            assert "Guten Tag Lena Schäfer" in text_of(confirmation)
            page.goto(confirm_link(confirmation))
            expect(page.get_by_role("heading", level=1)).to_have_text("Anmeldung bestätigen")
            assert len(mails(smtp, NEW)) == 1  # opening the link sent nothing, changed nothing
            page.get_by_role("button", name="Anmeldung bestätigen").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Anmeldung bestätigt")

            invitation = wait_for(
                lambda: (lambda ms: ms[1] if len(ms) > 1 else None)(mails(smtp, NEW)),
                "the invitation that went out before the confirmation",
            )
            assert "Ankommen in der Kommune" in text_of(invitation)
            assert invitation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

            page.goto(header_unsubscribe_url(invitation))
            expect(page.get_by_role("heading", level=1)).to_have_text("Abmelden")
            page.get_by_role("button", name="Jetzt abmelden").click()
            expect(page.get_by_role("heading", level=1)).to_have_text("Sie sind abgemeldet")
            assert external == []  # no page loaded anything from elsewhere
        finally:
            browser.close()

    # Receive nothing more: the session is cancelled; everyone still subscribed hears of it.
    day = re.search(r"^      (\d{4}-\d\d-\d\d):", plan.read_text(), re.M)
    assert day is not None
    plan.write_text(plan_yaml(dt.date.fromisoformat(day.group(1)), cancelled=True), "utf-8")

    def cancellation_arrived() -> bool:
        # The daemon notices the plan change by itself; a run through the admin API acts on it.
        httpx.post(f"{url}/admin/run", headers={"Authorization": f"Bearer {ADMIN}"}, timeout=30)
        return any("erkrankt" in text_of(m) for m in mails(smtp, EXISTING))

    wait_for(cancellation_arrived, "the cancellation to the existing subscriber", timeout=30)
    assert len(mails(smtp, NEW)) == 2  # confirmation and invitation, nothing after leaving
