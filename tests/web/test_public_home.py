"""The series' public home at / and /en/ over real HTTP (issue 17): sessions, cancellations,
breaks, links, branding under the CSP, caching; and `check` on imprint and privacy notice."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.mail import MaildirTransport
from session_bot.cli.checks import run_checks
from session_bot.core.errors import ConfigError
from session_bot.core.plan import Plan, load_plan
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from tests.support.settings import EXAMPLE_PLAN, SECRET_KEY, make_settings
from tests.support.web_server import ServerThread

NOW = dt.datetime(2025, 2, 12, 9, 0, tzinfo=ZoneInfo("Europe/Berlin"))
IMPRINT = "https://organiser.example.org/impressum"
PRIVACY = "https://organiser.example.org/datenschutz"
CANCELLED = """      2025-04-30:
        cancelled: true
        reason: Die Referentin ist erkrankt.
        translations:
          en:
            reason: The speaker is ill.
"""


def plan_with_a_cancellation(tmp_path: Path) -> Path:
    text = EXAMPLE_PLAN.read_text(encoding="utf-8")
    assert "      2025-04-30:\n" in text
    path = tmp_path / "plan.yaml"
    path.write_text(text.replace("      2025-04-30:\n", CANCELLED, 1), encoding="utf-8")
    return path


def serve(tmp_path: Path, **settings: Any) -> ServerThread:
    plan_file = plan_with_a_cancellation(tmp_path)
    s = make_settings(tmp_path, plan=plan_file, **settings)
    store = wiring.open_store(s)
    plan: Plan = load_plan(plan_file)
    transport = MaildirTransport(s.resolved_outbox)
    ctx = WebContext(
        settings=s,
        store=store,
        clock=ManualClock(NOW),
        plan=lambda: plan,
        transport=lambda: transport,
        secret_key=SECRET_KEY,
    )
    return ServerThread(create_app(ctx))


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    with serve(tmp_path, imprint_url=IMPRINT, privacy_url=PRIVACY) as server:
        yield server.url


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_german_page_lists_the_plans_sessions(site: str) -> None:
    answer = httpx.get(f"{site}/")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-language"] == "de"
    html = answer.text
    page = text_of(html)
    assert '<html lang="de">' in html
    assert "<h1>Willkommen: Online Austausch</h1>" in html
    assert "Wir bieten auch in diesem Jahr regelmäßig" in page  # the plan's description
    assert "Mittwoch, 26. Februar 2025 12:30–13:30 Uhr (Mitteleuropäische Normalzeit)" in page
    assert "Akteursübergreifende Zusammenarbeit und Welcome-Strukturen" in page
    assert "Anna Lena Hemmer, Koordinatorin Burgenlandkreis, Migrationsagentur" in page
    assert "Mittwoch, 26. März 2025" in page and "Arbeitsmarktintegration von Geflüchteten" in page
    assert "Mittwoch, 28. Mai 2025 12:30–13:30 Uhr (Mitteleuropäische Sommerzeit)" in page
    assert "Abgesagt: Die Referentin ist erkrankt." in page
    assert "<del>Wohnen statt Unterbringen" in html
    assert "Mittwoch, 27. August 2025 Kein Termin: Pause" in page  # the summer break
    assert '<form method="post" action="/subscribe" novalidate>' in html  # the form, right here
    assert 'name="page_lang" value="de"' in html and "Mit Klick auf „Anmelden“" in page
    assert f'<a href="{IMPRINT}">Impressum</a>' in html
    assert f'<a href="{PRIVACY}">Datenschutzerklärung</a>' in html
    assert "<script" not in html.lower()


def test_the_english_page_uses_the_plans_translations(site: str) -> None:
    answer = httpx.get(f"{site}/en/")
    assert answer.status_code == 200 and answer.headers["content-language"] == "en"
    html = answer.text
    page = text_of(html)
    assert "<h1>Welcome: Online Exchange</h1>" in html
    assert "Again this year we hold this exchange" in page
    assert "Wednesday, February 26, 2025" in page
    assert "Central European Standard Time" in page and "Central European Summer Time" in page
    assert "Working together across institutions" in page
    # A topic the plan has in German only says so for screen readers.
    assert '<p lang="de">Arbeitsmarktintegration von Geflüchteten' in html
    assert "Cancelled: The speaker is ill." in page
    assert "Wednesday, August 27, 2025 No session: Break" in page
    assert '<form method="post" action="/subscribe?lang=en" novalidate>' in html
    assert f'<a href="{IMPRINT}">Imprint</a>' in html


def test_the_language_switch_leads_to_the_other_page(site: str) -> None:
    de = httpx.get(f"{site}/").text
    assert 'href="/?lang=en"' in de
    assert httpx.get(f"{site}/?lang=en").headers["location"] == "/en/"
    assert httpx.get(f"{site}/en/?lang=de").headers["location"] == "/"


def test_calendar_links_offer_the_feed(site: str) -> None:
    html = httpx.get(f"{site}/").text
    webcal = "webcal://session-bot.example.org/calendar.ics"
    assert f'href="{webcal}"' in html
    assert 'href="https://calendar.google.com/calendar/r?cid=webcal%3A%2F%2Fsession-bot' in html
    assert (
        'href="https://outlook.live.com/calendar/0/addfromweb?url='
        "https%3A%2F%2Fsession-bot.example.org%2Fcalendar.ics&amp;name=" in html
    )
    assert 'href="https://session-bot.example.org/calendar.ics"' in html


def test_the_page_is_cacheable_with_an_etag(site: str) -> None:
    first = httpx.get(f"{site}/")
    tag = first.headers["etag"]
    assert first.headers["cache-control"] == "public, max-age=300"
    assert tag == '"' + hashlib.sha256(first.content).hexdigest()[:32] + '"'
    again = httpx.get(f"{site}/", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["etag"] == tag
    other = httpx.get(f"{site}/", headers={"If-None-Match": '"something-else"'})
    assert other.status_code == 200
    assert httpx.get(f"{site}/en/").headers["etag"] != tag


def test_without_imprint_and_privacy_settings_no_links(tmp_path: Path) -> None:
    with serve(tmp_path) as server:
        html = httpx.get(f"{server.url}/").text
    assert "Impressum" not in html and "Datenschutzerklärung" not in html


def test_branding_is_allowed_by_the_csp_and_nothing_else_is(tmp_path: Path) -> None:
    logo = "https://cdn.example.net/brand/logo.png"
    with serve(tmp_path, brand_colour="#7A1F5C", brand_logo_url=logo) as server:
        answer = httpx.get(f"{server.url}/")
    html, csp = answer.text, answer.headers["content-security-policy"]
    styles = re.findall(r"<style>(.*?)</style>", html, re.DOTALL)
    assert len(styles) == 2
    for style in styles:
        digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
        assert f"'sha256-{digest}'" in csp
    assert "--accent: #7a1f5c" in styles[1]
    assert f'<img src="{logo}"' in html
    assert re.search(r"img-src data: https://cdn\.example\.net(;|$)", csp)
    assert "script-src" not in csp and "default-src 'none'" in csp


@pytest.mark.parametrize(
    ("setting", "value", "message"),
    [
        ("brand_colour", "#ffcc00", "contrast of 1.5:1"),
        ("brand_colour", "blue", "#rrggbb"),
        ("brand_logo_url", "http://cdn.example.net/logo.png", "https address"),
        ("imprint_url", "javascript:alert(1)", "https://"),
    ],
)
def test_unreadable_or_unsafe_branding_is_refused(
    tmp_path: Path, setting: str, value: str, message: str
) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        make_settings(tmp_path, **{setting: value})


def check_lines(tmp_path: Path, **settings: Any) -> list[str]:
    lines: list[str] = []
    run_checks(make_settings(tmp_path, **settings), EXAMPLE_PLAN, lines.append)
    return [line for line in lines if "imprint and privacy notice" in line]


def test_check_names_a_public_deployment_without_imprint_and_privacy(tmp_path: Path) -> None:
    (line,) = check_lines(tmp_path)  # the public URL is https://session-bot.example.org
    assert line.startswith("warn imprint and privacy notice: ")
    assert "SESSION_BOT_IMPRINT_URL and SESSION_BOT_PRIVACY_URL not set" in line
    assert "German law expects" in line
    (line,) = check_lines(tmp_path, imprint_url=IMPRINT)
    assert "SESSION_BOT_PRIVACY_URL not set" in line and "IMPRINT_URL" not in line
    assert check_lines(tmp_path, imprint_url=IMPRINT, privacy_url=PRIVACY) == []
    assert check_lines(tmp_path, public_url="http://127.0.0.1:8080") == []
