"""`session-bot preview`: one session's mail as recipients will see it."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.adapters.db.store import Store
from session_bot.adapters.render.invitations import Recipient, RenderedMailing
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
    test_send: bool = False,
) -> tuple[RenderedMailing, bool]:
    """The session's mail with its stored meeting, or with marked sample join details when the
    meeting does not exist yet (proof-reading weeks ahead); (mail, has a real meeting)."""
    renderer = wiring.renderer_factory(settings, store)(occ.series)
    rendered, meeting = session_mail(renderer, store.sessions, occ, kind, now, test_send=test_send)
    return rendered, meeting is not None


def render_preview(settings: Settings, plan: Plan, date: str, fmt: str, kind: str) -> bytes:
    if fmt not in FORMATS:
        raise PlanError(
            f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}", field="--format"
        )
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise PlanError(f"{date!r} is not a date like 2025-02-26", field="DATE") from None
    occ = find_occurrence(plan, day)
    now = system_clock()
    rendered, _ = render_session_mail(
        settings, wiring.open_store(settings, purpose="look"), occ, kind, now
    )
    if fmt == "text":
        return rendered.text.encode()
    if fmt == "html":
        return rendered.html.encode()
    if fmt == "ics":
        return rendered.ics or b""
    url, mailto = wiring.unsubscribe_links(
        settings, wiring.secret_key(settings), 0, occ.series.organiser.email
    )
    sample = Recipient(
        email="vorschau@example.org",
        name="Vorschau",
        language=occ.series.language,
        unsubscribe_url=url,
        unsubscribe_mailto=mailto,
    )
    return rendered.personalise(sample, message_id="<preview@session-bot.invalid>", date=now)


def open_preview(settings: Settings, content: bytes, fmt: str, date: str) -> Path:
    """Write the preview under var/preview/ and hand it to the desktop's default application."""
    import webbrowser

    folder = settings.var_dir / "preview"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{date}.{'txt' if fmt == 'text' else fmt}"
    path.write_bytes(content)
    webbrowser.open(path.resolve().as_uri())
    return path
