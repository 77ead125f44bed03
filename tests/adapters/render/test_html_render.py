"""The HTML invitation in headless Chromium: visible text, structure, contrast, no requests.

Screenshots land in test-artifacts/ (invitation.png, invitation-dark.png) for a human look.
"""

from __future__ import annotations

import datetime as dt
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.invitations import (
    NOW,
    ROOT,
    SEED_JOIN_URL,
    html_part,
    meeting,
    occurrence,
    parse,
    recipient,
    renderer,
)

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
ARTIFACTS = ROOT / "test-artifacts"
pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed"),
]

# WCAG relative luminance / contrast ratio, evaluated in the page on computed colours.
CONTRAST_JS = """
(sel) => {
  const rgb = (s) => s.match(/[\\d.]+/g).slice(0, 3).map(Number);
  const lum = ([r, g, b]) => {
    const f = (c) => { c /= 255; return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4; };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const bg = (el) => {
    for (; el; el = el.parentElement) {
      const c = getComputedStyle(el).backgroundColor;
      if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return rgb(c);
    }
    return [255, 255, 255];
  };
  return [...document.querySelectorAll(sel)].map((el) => {
    const a = lum(rgb(getComputedStyle(el).color)), b = lum(bg(el));
    return (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  });
}
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield b
        b.close()


def invitation_html() -> str:
    occ = occurrence(dt.date(2025, 2, 26))
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    raw = mailing.personalise(recipient("Anna Müller"), message_id="<h@x>", date=NOW)
    return html_part(parse(raw))


def open_page(browser: Any, html: str, scheme: str) -> tuple[Any, list[str]]:
    page = browser.new_page(viewport={"width": 720, "height": 900}, color_scheme=scheme)
    requests: list[str] = []
    page.on("request", lambda req: requests.append(req.url))
    page.set_content(html, wait_until="load")
    return page, requests


def test_invitation_renders_accessibly_in_chromium(browser: Any) -> None:
    page, requests = open_page(browser, invitation_html(), "light")
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "invitation.png"), full_page=True)
        assert requests == [], "no external assets or trackers"
        assert page.get_attribute("html", "lang") == "de"
        assert page.title().startswith("Einladung: Willkommen: Online Austausch")
        h1 = page.locator("h1")
        assert h1.count() == 1 and h1.is_visible()
        assert "Akteursübergreifende Zusammenarbeit" in h1.inner_text()
        assert [h.strip() for h in page.locator("h2").all_inner_texts()] == [
            "Impulsvorträge", "Termin", "Online teilnehmen",
        ]  # fmt: skip
        button = page.get_by_role("link", name="Zoom-Meeting beitreten")
        assert button.is_visible() and button.get_attribute("href") == SEED_JOIN_URL
        box = button.bounding_box()
        assert box is not None and box["height"] >= 40, "a finger-sized button"
        tel = page.locator('a[href^="tel:"]')
        assert tel.get_attribute("href") == "tel:+496950500952,,66547677759%23,,,,*717531%23"
        body = page.inner_text("body")
        for visible in (
            "Guten Tag Anna Müller,",
            "Mittwoch, 26. Februar 2025",
            "665 4767 7759",
            "717531",
        ):
            assert visible in body
        unsubscribe = page.get_by_role("link", name="Abmelden")
        assert unsubscribe.is_visible()
        assert unsubscribe.get_attribute("href") == "https://sb.example.org/unsubscribe/tok1"
        assert min(page.evaluate(CONTRAST_JS, "p, li, h1, h2, footer p, a")) >= 4.5
        assert page.evaluate("document.images.length") == 0, "readable with images off"
    finally:
        page.close()


def test_invitation_in_dark_mode(browser: Any) -> None:
    page, requests = open_page(browser, invitation_html(), "dark")
    try:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "invitation-dark.png"), full_page=True)
        card = page.evaluate("getComputedStyle(document.querySelector('main')).backgroundColor")
        assert card == "rgb(30, 41, 59)", "dark card instead of a white block"
        assert min(page.evaluate(CONTRAST_JS, "p, li, h1, h2, footer p, a")) >= 4.5
        assert requests == []
    finally:
        page.close()
