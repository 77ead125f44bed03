"""An announcement (issue 17) as a complete bulk mail: the organiser's subject and text in the
series' layout, with the personal greeting, the visible unsubscribe link and the List-Unsubscribe
headers of every mailing; no calendar. Rendered once per language, personalised per recipient
by the same :class:`RenderedMailing` as the session mails."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from session_bot.adapters.render.check import missing_unsubscribe_link
from session_bot.adapters.render.mailing import RenderedMailing, assemble
from session_bot.adapters.render.parts import (
    render_salutation,
    render_texts,
    require_language,
    signature,
    subject_with_prefix,
)
from session_bot.adapters.render.renderer import Renderer
from session_bot.adapters.render.values import MailParts
from session_bot.core.errors import TemplateError
from session_bot.core.plan import Series, SessionContent, localize
from session_bot.core.plan.localize import localized_title

KIND = "announcement"


def paragraphs(text: str) -> list[list[str]]:
    """The organiser's text as paragraphs (split at blank lines) of lines."""
    blocks = [b.strip() for b in text.replace("\r\n", "\n").split("\n\n")]
    return [[line.rstrip() for line in b.splitlines()] for b in blocks if b]


class AnnouncementRenderer:
    """Renders the announcements of one series with its templates, sender and list."""

    def __init__(self, renderer: Renderer) -> None:
        self._renderer = renderer

    def render(
        self, series: Series, *, subject: str, text: str, language: str, test_send: bool = False
    ) -> RenderedMailing:
        lang = require_language(language)
        config, templates = self._renderer.config, self._renderer.templates
        local, _, own = localize(series, SessionContent.model_validate({}), lang)
        ctx: dict[str, Any] = {
            "kind": KIND,
            "language": lang,
            "series": local,
            "own_language": own,
            "announcement": {"subject": subject, "paragraphs": paragraphs(text)},
            "test_send": test_send,
            "public_url": config.public_url,
            "signature": signature(series, lang),
        }
        subject_line, body, html = render_texts(
            templates, KIND, lang, ctx, None, config.preview_unsubscribe_url
        )
        parts = MailParts(
            subject=subject_with_prefix(subject_line, test_send), text=body, html=html, ics=None
        )
        missing = [] if test_send else missing_unsubscribe_link(parts, KIND, lang)
        if missing:
            raise TemplateError("; ".join(missing))
        salutation = render_salutation(templates, lang)
        list_name = localized_title(series, lang)
        return assemble(config, KIND, lang, parts, salutation, list_name, test_send=test_send)


def announcement_renderers(
    renderer_for: Callable[[Series], Renderer],
) -> Callable[[Series], AnnouncementRenderer]:
    """Each series' announcement renderer, on top of its mail renderer (same config, templates)."""
    return lambda series: AnnouncementRenderer(renderer_for(series))
