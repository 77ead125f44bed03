"""The confirmation mail from its pre-rendered template is the mail rendered from scratch (issue
18): same headers, same decoded text and HTML, for names with umlauts in both languages; and
templates that would not give the same mail that way are rendered per request."""

from __future__ import annotations

import email
from email import policy
from email.message import EmailMessage
from pathlib import Path

import pytest

from session_bot.adapters.render.confirmation import ConfirmationMail, ConfirmationMails
from session_bot.adapters.render.invitations import Recipient, Renderer
from tests.support.invitations import NOW, config

# An ampersand: the HTML part must escape the link exactly as the template does.
LINKS = [
    "https://sb.example.org/confirm/MS4xNzM5MzQ3MjAwMDAwMDAwLjA.wmw8NfHMWyGsS77qnC9cyQ",
    "https://sb.example.org/confirm/a-very-long-token-" + "x" * 90 + "?lang=en&b=1",
]
NAMES = ["Jörg Müller-Lüdenscheidt", "Ärzte Öl Über Straße", None]


def _view(raw: bytes) -> tuple[list[tuple[str, str]], str, str]:
    msg = email.message_from_bytes(raw, policy=policy.default)
    assert isinstance(msg, EmailMessage)
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    # The MIME boundary is drawn per rendering; what the reader sees is the rest.
    headers = [
        (k, msg.get_content_type() if k == "Content-Type" else str(v)) for k, v in msg.items()
    ]
    return headers, str(text.get_content()), str(html.get_content())


def _both(renderer: Renderer, mails: ConfirmationMails, lang: str, link: str, name: str | None):  # type: ignore[no-untyped-def]
    kw = {"language": lang, "confirm_url": link, "series_title": "Willkommen: Austausch über Ämter"}
    to = Recipient("jörg@example.org" if name else "anna@example.org", name, lang)
    mid = "<confirm.7.20250226@sb.example.org>"
    scratch = renderer.render_confirmation(now=NOW, **kw).personalise(to, message_id=mid, date=NOW)
    fast = mails.render_confirmation(now=NOW, **kw)
    return fast, fast.personalise(to, message_id=mid, date=NOW), scratch


@pytest.mark.parametrize("lang", ["de", "en"])
@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("link", LINKS)
def test_prerendered_confirmation_is_the_mail_rendered_from_scratch(
    lang: str, name: str | None, link: str
) -> None:
    renderer = Renderer(config())
    mails = ConfirmationMails(renderer)
    fast, fast_bytes, scratch_bytes = _both(renderer, mails, lang, link, name)
    assert isinstance(fast, ConfirmationMail)  # the pre-rendered path, not the fallback
    assert _view(fast_bytes) == _view(scratch_bytes)
    headers, text, html = _view(fast_bytes)
    assert link in text and link.replace("&", "&amp;") in html
    assert "List-Unsubscribe" not in dict(headers)
    if name:
        assert name in text


def test_one_template_serves_many_requests_each_with_its_own_link() -> None:
    renderer = Renderer(config())
    mails = ConfirmationMails(renderer)
    for i in range(20):
        link = f"https://sb.example.org/confirm/token-{i}"
        _, fast_bytes, scratch_bytes = _both(renderer, mails, "de", link, "Jörg Müller")
        assert _view(fast_bytes) == _view(scratch_bytes)
        assert f"token-{i}" in _view(fast_bytes)[1]


def test_templates_that_change_the_link_are_rendered_per_request(tmp_path: Path) -> None:
    """An organiser's confirmation that filters the link (or fills the unsubscribe slot) would
    differ when the link is a slot: those mails are rendered from scratch, as before."""
    (tmp_path / "de").mkdir()
    default = Path(__file__).resolve().parents[3] / "templates" / "de" / "confirmation.txt"
    text = default.read_text(encoding="utf-8").replace(
        "{{ confirm_url }}", "{{ confirm_url|upper }} {{ unsubscribe_url }}"
    )
    (tmp_path / "de" / "confirmation.txt").write_text(text, encoding="utf-8")
    renderer = Renderer(config(templates_dir=tmp_path))
    mails = ConfirmationMails(renderer)
    fast, fast_bytes, scratch_bytes = _both(renderer, mails, "de", LINKS[0], "Jörg Müller")
    assert not isinstance(fast, ConfirmationMail)
    assert _view(fast_bytes) == _view(scratch_bytes)
    assert LINKS[0].upper() in _view(fast_bytes)[1]
