"""`{{ subscribe_url }}` in the mail templates (issue 17): the subscribe page's address, from the
public URL, in every kind of mail; the default templates keep the seed's text."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from session_bot.adapters.render.invitations import Recipient
from tests.support.invitations import (
    NOW,
    html_part,
    meeting,
    occurrence,
    parse,
    recipient,
    renderer,
    text_part,
)

SEED_DAY = dt.date(2025, 2, 26)
REMINDER_TXT = """{% extends "de/invitation.txt" %}
{% block subject %}Erinnerung{% endblock %}
{% block closing %}
Gern weitersagen – hier kann man sich anmelden: {{ subscribe_url }}
{% endblock %}
"""
REMINDER_HTML = """{% extends "de/invitation.html" %}
{% block closing %}<p><a href="{{ subscribe_url }}">Zur Anmeldung</a></p>{% endblock %}
"""
CONFIRMATION_TXT = """{% extends "de/_layout.txt" %}
{% block subject %}Bitte bestätigen: {{ series_title }}{% endblock %}
{% block content %}
Bestätigen: {{ confirm_url }}
Die Seite der Reihe: {{ subscribe_url }}
{% endblock %}
{% block footer %}{% endblock %}
"""


def overrides(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return tmp_path


def test_a_session_mail_template_gets_the_subscribe_address(tmp_path: Path) -> None:
    folder = overrides(
        tmp_path, {"de/reminder.txt": REMINDER_TXT, "de/reminder.html": REMINDER_HTML}
    )
    r = renderer(templates_dir=folder, public_url="https://bot.example.org/")
    occ = occurrence(SEED_DAY)
    raw = r.render("reminder", occ, meeting(occ), sequence=0, now=NOW).personalise(
        recipient("Anna"), message_id="<s@x>", date=NOW
    )
    msg = parse(raw)
    assert "Gern weitersagen – hier kann man sich anmelden: https://bot.example.org/subscribe" in (
        text_part(msg).splitlines()
    )
    assert '<a href="https://bot.example.org/subscribe">Zur Anmeldung</a>' in html_part(msg)
    assert r.check([occ], NOW) == []


def test_the_confirmation_template_gets_the_subscribe_address(tmp_path: Path) -> None:
    r = renderer(templates_dir=overrides(tmp_path, {"de/confirmation.txt": CONFIRMATION_TXT}))
    mailing = r.render_confirmation(
        language="de", confirm_url="https://sb.example.org/confirm/abc",
        series_title="Willkommen: Online Austausch", now=NOW,
    )  # fmt: skip
    raw = mailing.personalise(
        Recipient(email="neu@example.org", name=None, language="de"), message_id="<c@x>", date=NOW
    )
    lines = text_part(parse(raw)).splitlines()
    assert "Die Seite der Reihe: https://sb.example.org/subscribe" in lines


def test_the_default_invitation_does_not_mention_the_subscribe_page() -> None:
    occ = occurrence(SEED_DAY)
    raw = (
        renderer()
        .render("invitation", occ, meeting(occ), sequence=0, now=NOW)
        .personalise(recipient(), message_id="<d@x>", date=NOW)
    )
    assert "/subscribe" not in text_part(parse(raw))
