"""The archive of past sessions at /archive and /en/archive over real HTTP (issue 17): held
sessions newest first with their materials as links, cancelled, skipped, future and old ones
left out, cacheable."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path
from zoneinfo import ZoneInfo

import httpx
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.mail import MaildirTransport
from session_bot.core.plan import Plan, load_plan
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from tests.support.settings import SECRET_KEY, make_settings
from tests.support.web_server import ServerThread

NOW = dt.datetime(2025, 5, 1, 12, 0, tzinfo=ZoneInfo("Europe/Berlin"))
PLAN = """\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYDAY=-1WE"
    starts_on: 2023-01-01
    start: "12:30"
    organiser: {name: Kristina Neumann, email: kristina@example.org}
    breaks: [1]
    texts:
      translations:
        en: {title: "Welcome: Online Exchange"}
    sessions:
      2023-02-22:
        topic: Ein Termin vor mehr als zwei Jahren
      2025-02-26:
        topic: Akteursübergreifende Zusammenarbeit
        translations:
          en: {topic: Working together across institutions}
        speakers:
          - {name: Anna Lena Hemmer, role: Koordinatorin, organisation: Migrationsagentur}
        materials:
          - title: Folien der Migrationsagentur
            url: https://example.org/folien.pdf?a=1&b=2
            kind: slides
          - title: Mitschnitt
            url: https://example.org/video
            kind: recording
          - title: Linkliste
            url: https://example.org/links
      2025-03-26:
        topic: Arbeitsmarktintegration
        cancelled: true
        reason: Die Referentin ist erkrankt.
      2025-04-30:
        topic: Wohnen statt Unterbringen
        materials:
          - {title: Protokoll, url: "https://example.org/protokoll", kind: documentation}
      2025-05-28:
        topic: Kita und Schule
        materials:
          - {title: Vorab-Folien, url: "https://example.org/vorab"}
"""


@pytest.fixture
def site(tmp_path: Path) -> Iterator[str]:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(PLAN, encoding="utf-8")
    settings = make_settings(tmp_path, plan=plan_file)
    store = wiring.open_store(settings)
    plan: Plan = load_plan(plan_file)
    transport = MaildirTransport(settings.resolved_outbox)
    ctx = WebContext(
        settings=settings,
        store=store,
        clock=ManualClock(NOW),
        plan=lambda: plan,
        transport=lambda: transport,
        secret_key=SECRET_KEY,
    )
    with ServerThread(create_app(ctx)) as server:
        yield server.url
    store.close()


def text_of(html: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


def test_the_german_archive_lists_past_sessions_with_their_materials(site: str) -> None:
    answer = httpx.get(f"{site}/archive")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/html; charset=utf-8"
    assert answer.headers["content-language"] == "de"
    html = answer.text
    page = text_of(html)
    assert '<html lang="de">' in html and "<h1>Archiv</h1>" in html
    assert "<script" not in html
    assert "Mittwoch, 26. Februar 2025 Akteursübergreifende Zusammenarbeit" in page
    assert "Anna Lena Hemmer, Koordinatorin, Migrationsagentur" in page
    assert (
        'Folien: <a href="https://example.org/folien.pdf?a=1&amp;b=2">Folien der '
        "Migrationsagentur</a>"
    ) in html
    assert 'Aufzeichnung: <a href="https://example.org/video">Mitschnitt</a>' in html
    assert 'Material: <a href="https://example.org/links">Linkliste</a>' in html
    assert 'Dokumentation: <a href="https://example.org/protokoll">Protokoll</a>' in html
    # newest first
    assert page.index("30. April 2025") < page.index("26. Februar 2025")


def test_cancelled_skipped_future_and_old_sessions_are_left_out(site: str) -> None:
    page = text_of(httpx.get(f"{site}/archive").text)
    assert "Arbeitsmarktintegration" not in page and "erkrankt" not in page  # cancelled
    assert "26. März 2025" not in page
    assert "Januar 2025" not in page  # the break month
    assert "Kita und Schule" not in page and "Vorab-Folien" not in page  # not held yet
    assert "Ein Termin vor mehr als zwei Jahren" not in page
    assert "Mittwoch, 31. Mai 2023" in page  # held, no plan entry: in, without materials
    assert "Zu diesem Termin gibt es keine Materialien." in page


def test_the_english_archive_uses_the_translations(site: str) -> None:
    answer = httpx.get(f"{site}/en/archive")
    assert answer.status_code == 200
    assert answer.headers["content-language"] == "en"
    html = answer.text
    page = text_of(html)
    assert '<html lang="en">' in html and "<h1>Archive</h1>" in html
    assert "Welcome: Online Exchange" in page
    assert "Wednesday, February 26, 2025 Working together across institutions" in page
    assert 'Slides: <a href="https://example.org/folien.pdf?a=1&amp;b=2" lang="de">' in html
    assert 'Recording: <a href="https://example.org/video" lang="de">Mitschnitt</a>' in html
    assert '<p lang="de"><strong>Wohnen statt Unterbringen</strong></p>' in html
    assert "Cancelled" not in page and "Arbeitsmarktintegration" not in page


def test_the_language_switch_leads_to_the_other_archive(site: str) -> None:
    to_en = httpx.get(f"{site}/archive?lang=en")
    assert (to_en.status_code, to_en.headers["location"]) == (303, "/en/archive")
    to_de = httpx.get(f"{site}/en/archive?lang=de")
    assert (to_de.status_code, to_de.headers["location"]) == (303, "/archive")


def test_the_archive_is_cacheable(site: str) -> None:
    answer = httpx.get(f"{site}/archive")
    assert answer.headers["cache-control"] == "public, max-age=300"
    assert "content-security-policy" in answer.headers
    tag = answer.headers["etag"]
    again = httpx.get(f"{site}/archive", headers={"If-None-Match": tag})
    assert again.status_code == 304 and again.content == b""
    assert again.headers["cache-control"] == "public, max-age=300"
    assert httpx.get(f"{site}/en/archive").headers["etag"] != tag
