"""The words of the mails as a subscriber reads them (issue 19): a greeting without a name,
"Impulsvortrag" for one speaker, one title per language, an inert unsubscribe line in test mails,
and the plan's signature under the mail."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from typing import Any

import icalendar
import pytest

from session_bot.adapters.render.invitations import Recipient
from session_bot.core.plan import Occurrence, find_occurrence, load_plan
from session_bot.core.plan.localize import localized_title
from tests.support.invitations import (
    EXAMPLE_PLAN,
    NOW,
    SEED,
    calendar_part,
    html_part,
    meeting,
    parse,
    recipient,
    renderer,
    text_part,
)

SEED_DAY = dt.date(2025, 2, 26)
INERT_DE = (
    "(In der Testmail ohne Funktion – Empfänger:innen erhalten hier ihren persönlichen "
    "Abmeldelink.)"
)
INERT_EN = "(Not active in this test mail – recipients get their personal unsubscribe link here.)"


def seed_occurrence(**series_changes: Any) -> Occurrence:
    occ = find_occurrence(load_plan(EXAMPLE_PLAN), SEED_DAY)
    if series_changes:
        # model_copy: also for fields the plan model may not have yet (``signature``)
        occ = dataclasses.replace(occ, series=occ.series.model_copy(update=series_changes))
    return occ


def one_speaker(occ: Occurrence) -> Occurrence:
    assert occ.content is not None and len(occ.content.speakers) == 2
    content = occ.content.model_copy(update={"speakers": occ.content.speakers[:1]})
    return dataclasses.replace(occ, content=content)


def personalised(
    occ: Occurrence, to: Recipient, kind: str = "invitation", **kw: Any
) -> tuple[str, str, bytes, Any]:
    """(text, HTML, calendar, message) of ``kind`` as ``to`` receives it."""
    m = None if kind == "cancellation" else meeting(occ)
    mailing = renderer().render(kind, occ, m, sequence=0, now=NOW, **kw)
    msg = parse(mailing.personalise(to, message_id="<m1@sb.example.org>", date=NOW))
    return text_part(msg), html_part(msg), calendar_part(msg)[1], msg


def event(ics: bytes) -> icalendar.Event:
    return next(iter(icalendar.Calendar.from_ical(ics).walk("VEVENT")))


def description(ics: bytes) -> str:
    return str(event(ics)["DESCRIPTION"])


def en_recipient(name: str | None = None) -> Recipient:
    return dataclasses.replace(recipient(name), language="en")


# --- 1. a greeting without a name ------------------------------------------------------------


@pytest.mark.parametrize("kind", ["invitation", "reminder", "update", "cancellation"])
def test_a_subscriber_without_a_name_is_greeted_plainly(kind: str) -> None:
    text, html, _, _ = personalised(seed_occurrence(), recipient(None), kind)
    assert text.startswith("Guten Tag,\n\n")
    assert '<p style="margin:0 0 16px;">Guten Tag,</p>' in html
    text, html, _, _ = personalised(seed_occurrence(), en_recipient(None), kind, language="en")
    assert text.startswith("Hello,\n\n")
    assert '<p style="margin:0 0 16px;">Hello,</p>' in html


def test_a_named_subscriber_is_greeted_by_name() -> None:
    text, html, _, _ = personalised(seed_occurrence(), recipient("Anna Müller"))
    assert text.startswith("Guten Tag Anna Müller,\n\n") and "Guten Tag Anna Müller," in html
    text, _, _, _ = personalised(seed_occurrence(), en_recipient("Anna Müller"), language="en")
    assert text.startswith("Dear Anna Müller,\n\n")


def test_the_preview_shows_the_greeting_a_subscriber_without_a_name_gets() -> None:
    occ = seed_occurrence()
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    assert mailing.text.startswith("Guten Tag,\n\nWer mit der Aufnahme")
    assert "Guten Tag,</p>" in mailing.html


# --- 2. singular and plural by count ---------------------------------------------------------


def test_one_speaker_is_one_impulsvortrag_two_are_impulsvortraege() -> None:
    text, html, ics, _ = personalised(one_speaker(seed_occurrence()), recipient(None))
    assert "Impulsvortrag" in text.splitlines() and ">Impulsvortrag</h2>" in html
    assert "Impulsvorträge" not in text + html
    assert "Impulsvortrag:" in description(ics).splitlines()
    text, html, ics, _ = personalised(seed_occurrence(), recipient(None))
    assert "Impulsvorträge" in text.splitlines() and ">Impulsvorträge</h2>" in html
    assert "Impulsvorträge:" in description(ics).splitlines()


def test_one_talk_and_two_talks_in_english() -> None:
    text, html, _, _ = personalised(one_speaker(seed_occurrence()), en_recipient(), language="en")
    assert "Talk" in text.splitlines() and ">Talk</h2>" in html and "Talks" not in text
    _, _, ics, _ = personalised(one_speaker(seed_occurrence()), en_recipient(), language="en")
    assert "Talk:" in description(ics).splitlines()
    text, html, _, _ = personalised(seed_occurrence(), en_recipient(), language="en")
    assert "Talks" in text.splitlines() and ">Talks</h2>" in html


# --- 3. one title per language ---------------------------------------------------------------


def test_the_english_mail_names_the_series_in_english_everywhere() -> None:
    occ = seed_occurrence()
    text, html, ics, msg = personalised(occ, en_recipient(), language="en")
    title = "Welcome: Online Exchange"
    assert localized_title(occ.series, "en") == title
    assert str(msg["Subject"]).startswith(f"Invitation: {title} on ")
    assert str(msg["List-Id"]) == f'"{title}" <willkommen.sb.example.org>'
    assert f"subscribed to the series “{title}”" in text and f"series “{title}”" in html
    assert "Willkommen" not in text + html
    assert str(event(ics)["SUMMARY"]).startswith(f"{title} – ")


def test_the_german_mail_keeps_the_german_title() -> None:
    occ = seed_occurrence()
    _, _, _, msg = personalised(occ, recipient(None))
    assert localized_title(occ.series, "de") == "Willkommen: Online Austausch"
    assert str(msg["List-Id"]) == '"Willkommen: Online Austausch" <willkommen.sb.example.org>'


def test_the_confirmation_says_the_title_it_is_given_in_its_language() -> None:
    series = seed_occurrence().series
    for lang, start in (("en", "Please confirm"), ("de", "Bitte bestätigen")):
        mail = renderer().render_confirmation(
            language=lang,
            confirm_url="https://sb.example.org/confirm/t",
            series_title=localized_title(series, lang),
            now=NOW,
        )
        assert mail.subject.startswith(start)
        assert mail.subject.endswith(localized_title(series, lang))
        assert f"„{localized_title(series, lang)}“" in mail.text or (
            f"“{localized_title(series, lang)}”" in mail.text
        )
    assert localized_title(series, "en") != localized_title(series, "de")


def test_a_language_without_a_translated_title_keeps_the_plans_title() -> None:
    from session_bot.core.plan import Texts

    occ = seed_occurrence(texts=Texts())
    assert localized_title(occ.series, "en") == "Willkommen: Online Austausch"


# --- 4. test mails: an inert unsubscribe line -------------------------------------------------


def test_a_test_mail_has_no_dead_unsubscribe_link() -> None:
    to = Recipient(email="kristina@example.org", name=None, language="de")
    text, html, _, msg = personalised(seed_occurrence(), to, test_send=True)
    assert str(msg["Subject"]).startswith("[TEST] ")
    assert f"Abmelden: {INERT_DE}" in text.splitlines()
    assert f"Abmelden: <em>{INERT_DE}</em>" in html
    assert "/unsubscribe/" not in text + html
    assert not re.search(r'href="[^"]*unsubscribe', html)
    assert msg["List-Unsubscribe"] is None


def test_an_english_test_mail_says_so_in_english() -> None:
    to = Recipient(email="kristina@example.org", name="Kristina", language="en")
    text, html, _, _ = personalised(seed_occurrence(), to, test_send=True, language="en")
    assert f"Unsubscribe: {INERT_EN}" in text.splitlines()
    assert f"<em>{INERT_EN}</em>" in html and "/unsubscribe/" not in html


def test_real_mails_and_the_preview_keep_their_links() -> None:
    text, html, _, _ = personalised(seed_occurrence(), recipient(None))
    assert "Abmelden: https://sb.example.org/unsubscribe/tok1" in text.splitlines()
    assert 'href="https://sb.example.org/unsubscribe/tok1"' in html
    assert "ohne Funktion" not in text + html
    occ = seed_occurrence()
    preview = renderer().render("invitation", occ, None, sequence=0, now=NOW, sample_meeting=True)
    assert "Abmelden: https://sb.example.org/unsubscribe/preview" in preview.text.splitlines()


# --- 6. the plan's signature -----------------------------------------------------------------


def test_without_a_signature_the_mail_ends_as_the_seed_does() -> None:
    text, html, _, _ = personalised(seed_occurrence(), recipient(None))
    body = text.split("\n\n-- \n")[0].splitlines()
    assert body[2:] == SEED.read_text(encoding="utf-8").splitlines()
    assert "Viele Grüße" not in text + html


def test_a_signature_from_the_plan_closes_every_mail_in_text_and_html() -> None:
    occ = seed_occurrence(signature="Viele Grüße\nKristina Neumann\nBertelsmann Stiftung\n")
    for kind in ("invitation", "reminder", "update", "cancellation"):
        text, html, _, _ = personalised(occ, recipient(None), kind)
        body, footer = text.split("\n\n-- \n")
        assert body.endswith("\n\nViele Grüße\nKristina Neumann\nBertelsmann Stiftung"), kind
        assert "Viele Grüße" not in footer
        assert "Viele Grüße<br>Kristina Neumann<br>Bertelsmann Stiftung</p>" in html
        assert html.index("Bertelsmann Stiftung</p>") < html.index("<footer")


def test_the_signature_is_escaped_in_html() -> None:
    occ = seed_occurrence(signature="Grüße <b>&</b> mehr")
    _, html, _, _ = personalised(occ, recipient(None))
    assert "Grüße &lt;b&gt;&amp;&lt;/b&gt; mehr</p>" in html


def test_the_confirmation_carries_no_signature_and_still_renders() -> None:
    mail = renderer().render_confirmation(
        language="de", confirm_url="https://sb.example.org/confirm/t", series_title="X", now=NOW
    )
    assert "Viele Grüße" not in mail.text
