"""A series and session as subscribers of another language read them."""

from __future__ import annotations

from session_bot.core.plan.localize import localize
from session_bot.core.plan.model import SessionContent
from tests.core.plans import make_series

CONTENT = SessionContent.model_validate(
    {
        "topic": "Thema",
        "intro": ["Einleitung."],
        "translations": {"en": {"topic": "Topic"}},
    }
)
TEXTS = {
    "invitation_lead": "Wir laden ein zum",
    "closing": ["Schluss."],
    "subscribe_note": "Anmelden bei …",
    "translations": {"en": {"title": "Welcome", "closing": "Closing."}},
}


def test_the_series_language_is_returned_as_it_is() -> None:
    series = make_series(texts=TEXTS)
    assert localize(series, CONTENT, "de") == (series, CONTENT, True)


def test_translated_texts_replace_the_originals_and_fall_back_field_by_field() -> None:
    series, content, has_texts = localize(make_series(texts=TEXTS), CONTENT, "en")
    assert has_texts
    assert series.title == "Welcome"
    # No English lead in the plan: the German one stays rather than none.
    assert series.texts.invitation_lead == "Wir laden ein zum"
    # Closing and note are the translation's own, even when empty: no German closing in English.
    assert series.texts.closing == ("Closing.",)
    assert series.texts.subscribe_note is None
    assert content.topic == "Topic"
    assert content.intro == ("Einleitung.",)


def test_a_translation_without_a_closing_leaves_the_closing_empty() -> None:
    texts = {**TEXTS, "translations": {"en": {"title": "Welcome"}}}
    series, _, has_texts = localize(make_series(texts=texts), CONTENT, "en")
    assert has_texts
    assert series.texts.closing == ()


def test_without_texts_in_that_language_the_caller_is_told_so() -> None:
    series = make_series()
    out_series, content, has_texts = localize(
        series, CONTENT.model_copy(update={"translations": {}}), "en"
    )
    assert not has_texts
    assert out_series == series
    assert content.topic == "Thema"
