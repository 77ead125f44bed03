"""`session-bot preview`: one session's mail as recipients will see it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.adapters.db.store import Store
from session_bot.adapters.render.invitations import LANGUAGES, Recipient, RenderedMailing
from session_bot.adapters.render.session_mail import render_session_mail as session_mail
from session_bot.core.errors import PlanError
from session_bot.core.plan import Occurrence, Plan, find_occurrence
from session_bot.settings import Settings

FORMATS = ("text", "html", "ics", "eml")


def render_session_mail(
    settings: Settings,
    store: Store,
    occ: Occurrence,
    kind: str,
    now: dt.datetime,
    *,
    language: str | None = None,
    test_send: bool = False,
) -> tuple[RenderedMailing, bool]:
    """The session's mail with its stored meeting, or with marked sample join details when the
    meeting does not exist yet (proof-reading weeks ahead); (mail, has a real meeting)."""
    renderer = wiring.renderer_factory(settings, store)(occ.series)
    rendered, meeting = session_mail(
        renderer, store.sessions, occ, kind, now, language=language, test_send=test_send
    )
    return rendered, meeting is not None


NOTES = {
    "de": {
        "skipped": "Am {day} findet kein Termin statt: {reason}. Es geht keine Einladung hinaus.",
        "cancelled": "Dieser Termin ist abgesagt{reason}; das ist die Absage, die die "
        "Eingeladenen bekommen.",
        "cancelled_kind": "Dieser Termin ist abgesagt{reason}; es geht nur noch eine Absage "
        "hinaus (--kind cancellation zeigt sie).",
        "held": "Für diesen Termin steht noch kein Thema im Plan: die Einladung ist angehalten, "
        "bis eines eingetragen ist.",
        "reason": " (Grund: {reason})",
    },
    "en": {
        "skipped": "There is no session on {day}: {reason}. No invitation goes out.",
        "cancelled": "This session is cancelled{reason}; this is the cancellation those invited "
        "get.",
        "cancelled_kind": "This session is cancelled{reason}; only a cancellation goes out "
        "(--kind cancellation shows it).",
        "held": "The plan has no topic for this session yet: its invitation is held until it has "
        "one.",
        "reason": " (reason: {reason})",
    },
}


def session_notes(occ: Occurrence, kind: str | None, lang: str) -> tuple[str, list[str]]:
    """The kind to preview (a cancelled session: its cancellation) and what to say about the
    session first, in ``lang``. A skipped date raises ``PlanError`` with its reason."""
    from session_bot.cli.status_words import day, skip_words

    t = NOTES[lang]
    if occ.skip_reason:
        reason = skip_words(occ.skip_reason, occ.date, lang)
        raise PlanError(t["skipped"].format(day=day(occ.date, lang), reason=reason))
    if occ.cancelled:
        why = occ.content.reason if occ.content else None
        reason = t["reason"].format(reason=why) if why else ""
        if kind in (None, "cancellation"):
            return "cancellation", [t["cancelled"].format(reason=reason)]
        return kind, [t["cancelled_kind"].format(reason=reason)]
    return kind or "invitation", [] if occ.has_topic else [t["held"]]


def render_preview(
    settings: Settings,
    plan: Plan,
    date: str,
    fmt: str,
    kind: str | None,
    language: str | None = None,
) -> tuple[bytes, list[str]]:
    """(the mail in ``fmt``, notes for the organiser: skipped, cancelled or held)."""
    if fmt not in FORMATS:
        raise PlanError(
            f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="--format"
        )
    if language not in (None, *LANGUAGES):
        raise PlanError(f"unknown language {language!r}; use de or en", field="--language")
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise PlanError(f"{date!r} is not a date like 2025-02-26", field="DATE") from None
    occ = find_occurrence(plan, day)
    said = language or (occ.series.language if occ.series.language in NOTES else "de")
    kind, notes = session_notes(occ, kind, said)
    now = system_clock()
    store = wiring.open_store(settings, purpose="look")
    rendered, _ = render_session_mail(settings, store, occ, kind, now, language=language)
    if fmt == "text":
        return rendered.text.encode(), notes
    if fmt == "html":
        return rendered.html.encode(), notes
    if fmt == "ics":
        return rendered.ics or b"", notes
    url, mailto = wiring.unsubscribe_links(
        settings, wiring.secret_key(settings), 0, occ.series.organiser.email
    )
    sample = Recipient(
        email="vorschau@example.org",
        name="Vorschau",
        language=rendered.language,
        unsubscribe_url=url,
        unsubscribe_mailto=mailto,
    )
    mail = rendered.personalise(sample, message_id="<preview@session-bot.invalid>", date=now)
    return mail, notes


def open_preview(settings: Settings, content: bytes, fmt: str, date: str) -> Path:
    """Write the preview under var/preview/ and hand it to the desktop's default application."""
    import webbrowser

    folder = settings.var_dir / "preview"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{date}.{'txt' if fmt == 'text' else fmt}"
    path.write_bytes(content)
    webbrowser.open(path.resolve().as_uri())
    return path
