"""The series' archive of past sessions (``/archive`` German, ``/en/archive`` English).

Every session held in the last two years, newest first, with its topic, speakers and the
``materials:`` the plan lists for it (slides, recordings, documentation) as links; cancelled and
skipped sessions are left out. A GET that changes nothing, computed from the plan alone, served
with an ETag and ``max-age=300``. No JavaScript.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from session_bot.core.plan import Occurrence, Plan, SessionContent, localize, occurrences
from session_bot.web.deps import Ctx, WebContext
from session_bot.web.pages import render_page
from session_bot.web.public import cached

router = APIRouter()

ARCHIVE_DAYS = 731  # two years back (a leap day included)
_PATHS = {"de": "/archive", "en": "/en/archive"}
_HOMES = {"de": "/", "en": "/en/"}


@router.get("/archive", response_class=Response)
def archive_de(request: Request, ctx: Ctx, lang: str | None = None) -> Response:
    if lang == "en":  # the layout's language switch links to ?lang=
        return RedirectResponse(_PATHS["en"], status_code=303)
    return archive_page(request, ctx, "de")


@router.get("/en/archive", response_class=Response)
def archive_en(request: Request, ctx: Ctx, lang: str | None = None) -> Response:
    if lang == "de":
        return RedirectResponse(_PATHS["de"], status_code=303)
    return archive_page(request, ctx, "en")


def archive_page(request: Request, ctx: WebContext, lang: str) -> Response:
    page = render_page(
        request,
        ctx,
        "archive.html",
        lang,
        title_key="arch_title",
        sessions=[_session_view(o, lang) for o in past_sessions(ctx.plan(), ctx.clock())],
        home_url=_HOMES[lang],
        subscribe_url="/subscribe" if lang == "de" else f"/subscribe?lang={lang}",
    )
    return cached(request, bytes(page.body), page.headers, page.media_type)


def past_sessions(plan: Plan, now: dt.datetime) -> list[Occurrence]:
    """The sessions of every series that ended by ``now``, at most two years back, newest first;
    none that was cancelled or skipped."""
    found: list[Occurrence] = []
    for series in plan.series:
        today = now.astimezone(series.zone).date()
        back = today - dt.timedelta(days=ARCHIVE_DAYS)
        for occ in occurrences(series, back, today, source=plan.source):
            if occ.skip_reason or occ.cancelled or occ.end > now:
                continue
            found.append(occ)
    found.sort(key=lambda o: o.start, reverse=True)
    return found


def _session_view(occ: Occurrence, lang: str) -> dict[str, Any]:
    original = occ.content or SessionContent.model_validate({})
    _, content, _ = localize(occ.series, original, lang)
    own = original.translations.get(lang)  # type: ignore[call-overload]
    fallback = occ.series.language
    return {
        "iso": occ.date.isoformat(),
        "date": format_date(occ.date, "full", locale=lang),
        "topic": content.topic_one_line,
        "topic_lang": lang if lang == fallback or (own and own.topic) else fallback,
        "speakers": [
            ", ".join(p for p in (s.name, s.role, s.organisation) if p) for s in content.speakers
        ],
        "plan_lang": fallback,
        "materials": [
            {"title": m.title.strip(), "url": m.url, "kind": m.kind} for m in original.materials
        ],
    }
