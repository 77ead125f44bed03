"""``Renderer``: every kind of mail of one series, from its templates to a :class:`RenderedMailing`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any

from session_bot.adapters.render.check import check_templates, missing_unsubscribe_link
from session_bot.adapters.render.mailing import RenderedMailing, assemble
from session_bot.adapters.render.mime import dkim_sign
from session_bot.adapters.render.parts import (
    calendar_filename,
    calendar_method,
    meeting_view,
    render_calendar,
    render_salutation,
    render_texts,
    require_kind,
    require_language,
    session_context,
    subject_with_prefix,
)
from session_bot.adapters.render.templates import Templates
from session_bot.adapters.render.values import MailConfig, MailParts, MeetingLike
from session_bot.core.errors import TemplateError
from session_bot.core.plan import Occurrence
from session_bot.core.plan.localize import localized_title
from session_bot.core.recipient import Recipient


class Renderer:
    """Renders every kind of mail of one series configuration."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config
        self.templates = Templates(config.templates_dir)
        self.env = self.templates.env  # public before the split into modules; kept for callers
        if config.dkim:
            # A key that cannot sign should stop start-up, not the first mailing.
            dkim_sign(b"From: a@b.example\r\nSubject: key check\r\n\r\nx\r\n", config.dkim)

    def render(
        self,
        kind: str,
        occ: Occurrence,
        meeting: MeetingLike | None,
        *,
        sequence: int,
        now: dt.datetime,
        language: str | None = None,
        reason: str | None = None,
        changes: list[str] | None = None,
        test_send: bool = False,
        sample_meeting: bool = False,
    ) -> RenderedMailing:
        lang = language or occ.series.language
        parts = self.render_parts(
            kind, occ, meeting, sequence=sequence, now=now, language=lang, reason=reason,
            changes=changes, test_send=test_send, sample_meeting=sample_meeting,
        )  # fmt: skip
        missing = [] if test_send or sample_meeting else missing_unsubscribe_link(parts, kind, lang)
        if missing:
            # Bulk mail without a visible way out: never sent (`check` lists the same).
            raise TemplateError("; ".join(missing))
        salutation = render_salutation(self.templates, lang)
        list_name = localized_title(occ.series, lang)  # the List-Id's name, as the mail says it
        return assemble(self.config, kind, lang, parts, salutation, list_name, test_send=test_send)

    def render_confirmation(
        self, *, language: str, confirm_url: str, series_title: str, now: dt.datetime
    ) -> RenderedMailing:
        """The double-opt-in mail: no unsubscribe headers, no calendar."""
        parts = self.confirmation_parts(
            language=language, confirm_url=confirm_url, series_title=series_title
        )
        salutation = render_salutation(self.templates, language)
        return assemble(self.config, "confirmation", language, parts, salutation, series_title)

    def render_parts(
        self,
        kind: str,
        occ: Occurrence,
        meeting: MeetingLike | None,
        *,
        sequence: int,
        now: dt.datetime,
        language: str,
        reason: str | None = None,
        changes: list[str] | None = None,
        test_send: bool = False,
        sample_meeting: bool = False,
        recipient: Recipient | None = None,
    ) -> MailParts:
        """Subject, text, HTML and .ics of one mail; personal values as slots unless ``recipient``.

        With a recipient this is the slow, straightforward rendering that tests hold the fast
        ``personalise`` against.
        """
        require_kind(kind)
        lang = require_language(language)
        view = meeting_view(kind, occ, meeting, sample_meeting)
        ctx = session_context(
            kind, occ, lang, view, reason=reason, changes=changes, test_send=test_send,
            public_url=self.config.public_url,
        )  # fmt: skip
        subject, text, html = self._texts(kind, lang, ctx, recipient)
        method = calendar_method(occ, kind)
        data = render_calendar(
            self.templates, kind, lang, occ, ctx, method=method, view=view, sequence=sequence,
            now=now, uid_domain=self.config.uid_domain or self.config.message_id_domain, recipient=recipient,
        )  # fmt: skip
        return MailParts(
            subject=subject_with_prefix(subject, test_send),
            text=text,
            html=html,
            ics=data,
            calendar_method=method,
            calendar_filename=calendar_filename(lang, kind),
        )

    def confirmation_parts(
        self,
        *,
        language: str,
        confirm_url: str,
        series_title: str,
        recipient: Recipient | None = None,
    ) -> MailParts:
        require_language(language)
        ctx: dict[str, Any] = {
            "kind": "confirmation",
            "language": language,
            "series_title": series_title,
            "confirm_url": confirm_url,
            "public_url": self.config.public_url,
        }
        subject, text, html = self._texts("confirmation", language, ctx, recipient)
        return MailParts(subject=subject, text=text, html=html, ics=None)

    def check(self, occurrences: Iterable[Occurrence], now: dt.datetime) -> list[str]:
        """Render every template against every session (sample meeting); list the problems.

        Each problem reads ``template:line: message (rendering …)``; one per template problem.
        """
        return check_templates(self, occurrences, now)

    def _texts(
        self, kind: str, lang: str, ctx: dict[str, Any], recipient: Recipient | None
    ) -> tuple[str, str, str]:
        preview_url = self.config.preview_unsubscribe_url
        return render_texts(self.templates, kind, lang, ctx, recipient, preview_url)
