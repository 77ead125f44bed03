"""A series and one of its sessions as a subscriber of another language reads them. Pure."""

from __future__ import annotations

from session_bot.core.plan.model import Series, SessionContent, Texts


def localized_title(series: Series, language: str | None) -> str:
    """The series' title in ``language``: ``texts.translations.<language>.title`` if the plan
    gives one, else the title itself. Every place that names the series to a reader (mails, the
    List-Id, the confirmation, the subscriber pages) uses this, so a language has one title."""
    if language is None or language == series.language:
        return series.title
    texts = series.texts.translations.get(language)  # type: ignore[call-overload]
    return (texts.title if texts is not None else None) or series.title


def localize(
    series: Series, content: SessionContent, language: str
) -> tuple[Series, SessionContent, bool]:
    """Series and session as a subscriber of ``language`` reads them.

    Returns (series, content, has_texts): ``has_texts`` is False when the plan has no texts in
    that language, so templates fall back to their own wording (and leave out the series' texts).
    """
    if language == series.language:
        return series, content, True
    texts = series.texts.translations.get(language)  # type: ignore[call-overload]
    if texts is not None:
        series = series.model_copy(
            update={
                "title": localized_title(series, language),
                "texts": Texts(
                    invitation_lead=texts.invitation_lead or series.texts.invitation_lead,
                    closing=texts.closing,
                    subscribe_note=texts.subscribe_note,
                ),
            }
        )
    own = content.translations.get(language)  # type: ignore[call-overload]
    if own is not None:
        content = content.model_copy(
            update={
                "topic": own.topic or content.topic,
                "intro": own.intro or content.intro,
                "reason": own.reason or content.reason,
            }
        )
    return series, content, texts is not None
