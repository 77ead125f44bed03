"""``session-bot check`` for templates: render everything once, collect problems instead of failing.

An organiser editing templates should see every broken template at once, each only once, and
learn before a mailing goes out that a bulk mail lost its visible unsubscribe link.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING

from session_bot.adapters.render.parts import render_salutation
from session_bot.adapters.render.personalise import slot_names
from session_bot.adapters.render.values import KINDS, MailParts
from session_bot.core.errors import TemplateError
from session_bot.core.languages import LANGUAGES
from session_bot.core.plan import Occurrence

if TYPE_CHECKING:
    from session_bot.adapters.render.renderer import Renderer


def check_templates(
    renderer: Renderer, occurrences: Iterable[Occurrence], now: dt.datetime
) -> list[str]:
    """Every template against every session (sample meeting); see ``Renderer.check``."""
    problems: list[str] = []
    for lang in LANGUAGES:
        try:
            render_salutation(renderer.templates, lang)
            renderer.confirmation_parts(
                language=lang, confirm_url="https://example.invalid/confirm", series_title="…"
            )
        except TemplateError as exc:
            _note(problems, exc, f"{lang}/confirmation")
    for occ in occurrences:
        if not occ.skip_reason:
            _check_session(renderer, occ, now, problems)
    return problems


def _check_session(
    renderer: Renderer, occ: Occurrence, now: dt.datetime, problems: list[str]
) -> None:
    # Sample values, so that templates guarding on a reason or on changes render those branches.
    reason = (occ.content.reason if occ.content else None) or "(Beispielgrund)"
    for kind in KINDS:
        for lang in LANGUAGES:
            try:
                parts = renderer.render_parts(
                    kind, occ, None, sequence=0, now=now, language=lang,
                    sample_meeting=True, reason=reason, changes=["(Beispieländerung)"],
                )  # fmt: skip
            except TemplateError as exc:
                _note(problems, exc, f"{kind} in {lang} for {occ.key}")
                continue
            _check_unsubscribe_link(parts, kind, lang, problems)


def _check_unsubscribe_link(parts: MailParts, kind: str, lang: str, problems: list[str]) -> None:
    for problem in missing_unsubscribe_link(parts, kind, lang):
        if problem not in problems:
            problems.append(problem)


def missing_unsubscribe_link(parts: MailParts, kind: str, lang: str) -> list[str]:
    """A bulk mail whose text or HTML lost its visible unsubscribe link (one line per part);
    ``check`` lists them and rendering for a mailing refuses them."""
    return [
        f"{lang}/{kind}.{ext}: no visible unsubscribe link; keep "
        "{{ unsubscribe_url }} (unfiltered) in it, bulk mail must show one"
        for ext, body in (("txt", parts.text), ("html", parts.html))
        if "unsubscribe_url" not in slot_names(body)
    ]


def _note(problems: list[str], exc: TemplateError, what: str) -> None:
    # The same broken template fails every session and kind; report it once, with its first use.
    if not any(p.startswith(str(exc)) for p in problems):
        problems.append(f"{exc} (rendering {what})")
