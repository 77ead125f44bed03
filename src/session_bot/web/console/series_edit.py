"""The series' texts and lead times in the console (/admin/series/{series_id}/edit), and
whether changes to announced sessions wait for her review or are mailed at once."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from session_bot.app.plan_book import EditConflict, PlanBook, ReadOnlyPlan
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.plan.edit import PlanDocument, SeriesFields
from session_bot.core.plan.problems import PlanProblems
from session_bot.web.console.base import (
    SESSION_COOKIE,
    csrf_ok,
    language,
    look,
    render,
    signed_in,
    to_sign_in,
    who,
)
from session_bot.web.console.plan_edit import (
    file_note,
    form_data,
    message,
    plan_source,
    saved,
    validation_problems,
)
from session_bot.web.console.plan_form import in_form_words, paragraphs
from session_bot.web.console.sessions import expired_form
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()

TEXTS = ("invitation_lead", "subscribe_note", "title_en", "invitation_lead_en",
         "subscribe_note_en", "signature", "invitation_time", "reminder_time")  # fmt: skip
PARAGRAPHS = ("closing", "closing_en")
NUMBERS = ("invitation_days", "reminder_days")
# Where the plan's validation names a series field: its place in the form.
_PLACES = {
    "texts.invitation_lead": "invitation_lead",
    "texts.closing": "closing",
    "texts.subscribe_note": "subscribe_note",
    "texts.translations.en.title": "title_en",
    "texts.translations.en.invitation_lead": "invitation_lead_en",
    "texts.translations.en.closing": "closing_en",
    "texts.translations.en.subscribe_note": "subscribe_note_en",
    "signature": "signature",
    "lead.invitation_days": "invitation_days",
    "lead.invitation_time": "invitation_time",
    "lead.reminder": "reminder",
    "lead.reminder_days": "reminder_days",
    "lead.reminder_time": "reminder_time",
    "updates": "updates",
}


def _values(f: SeriesFields) -> dict[str, Any]:
    values: dict[str, Any] = {k: getattr(f, k) for k in TEXTS}
    values |= {k: "\n\n".join(getattr(f, k)) for k in PARAGRAPHS}
    values |= {k: str(getattr(f, k)) for k in NUMBERS}
    return values | {"reminder": f.reminder, "updates": f.updates}


def _read(data: Mapping[str, str], t: Mapping[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """What she typed, and the problems only the form can see (numbers that are none)."""
    values: dict[str, Any] = {k: data.get(k, "")[:20_000] for k in (*TEXTS, *PARAGRAPHS, *NUMBERS)}
    values["reminder"] = bool(data.get("reminder"))
    values["updates"] = "automatic" if data.get("updates") == "automatic" else "review"
    errors = {
        k: t["se_days_bad"] for k in NUMBERS if not re.fullmatch(r"\d{1,3}", values[k].strip())
    }
    return values, errors


def _problems(
    book: PlanBook, series_id: str, values: Mapping[str, Any], bad: Mapping[str, str]
) -> list[PlanError]:
    """The plan's validation of these values, the numbers that are none taken as they are
    now (nothing is saved)."""
    current = book.current()
    if current is None:
        return []
    doc = PlanDocument(current.text)
    now = doc.series_fields(series_id)
    fields = _fields({**values, **{k: getattr(now, k) for k in bad}})
    doc.set_series(series_id, fields)
    return validation_problems(doc)


def _fields(values: Mapping[str, Any]) -> SeriesFields:
    def text(key: str) -> str:
        return str(values[key]).replace("\r\n", "\n").strip()

    return SeriesFields(
        invitation_lead=text("invitation_lead"),
        closing=paragraphs(str(values["closing"])),
        subscribe_note=text("subscribe_note"),
        title_en=text("title_en"),
        invitation_lead_en=text("invitation_lead_en"),
        closing_en=paragraphs(str(values["closing_en"])),
        subscribe_note_en=text("subscribe_note_en"),
        signature=text("signature"),
        invitation_days=int(text("invitation_days")),
        invitation_time=text("invitation_time"),
        reminder=bool(values["reminder"]),
        reminder_days=int(text("reminder_days")),
        reminder_time=text("reminder_time"),
        updates=str(values["updates"]),
    )


def _place(problems: Iterable[PlanError], series_id: str) -> dict[str, str]:
    prefix = f"series[{series_id}]."
    errors: dict[str, str] = {}
    for p in problems:
        where = p.field or ""
        rest = re.sub(r"\[\d+\]$", "", where[len(prefix) :]) if where.startswith(prefix) else ""
        key = _PLACES.get(rest, "general")
        text = in_form_words(p.message)
        errors[key] = f"{errors[key]} {text}" if key in errors else text
    return errors


def _page(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    series_id: str,
    values: Mapping[str, Any],
    base_id: int,
    *,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
    readonly: bool = False,
    conflict: EditConflict | None = None,
    notices: list[tuple[str, str]] | None = None,
) -> HTMLResponse:
    return render(
        request, ctx, "series_edit.html", title_key="se_title", me=me, status=status, notices=notices,
        form=values, base_id=base_id, errors=dict(errors or {}), series_id=series_id,
        action=f"/admin/series/{series_id}/edit", readonly=readonly, conflict=conflict,
        file_note=file_note(request, ctx) if readonly else "",
    )  # fmt: skip


@router.get("/admin/series/{series_id}/edit", include_in_schema=False)
def edit_series(request: Request, ctx: Ctx, series_id: str) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    try:
        src = plan_source(ctx, ctx.plan_book())
        fields = PlanDocument(src.text).series_fields(series_id)
    except PlanError as exc:
        return message(request, ctx, me, str(exc), 404, "/admin/")
    t = look().texts[language(request)]
    shown = request.query_params.get("saved", "")
    notices = [(t["pe_saved"].replace("{n}", shown), "")] if shown.isdigit() else []
    return _page(
        request,
        ctx,
        me,
        series_id,
        _values(fields),
        src.base_id,
        readonly=not src.editable,
        notices=notices,
    )


@router.post("/admin/series/{series_id}/edit", include_in_schema=False)
async def save_series(request: Request, ctx: Ctx, series_id: str) -> Response:
    data = await form_data(request)
    return await run_in_threadpool(_save, request, ctx, data, series_id)


def _save(request: Request, ctx: WebContext, data: dict[str, str], series_id: str) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    back = f"/admin/series/{series_id}/edit"
    if not csrf_ok(me, data.get("csrf")):
        return expired_form(request, ctx, me, back)
    book = ctx.plan_book()
    if not book.editable:
        return message(request, ctx, me, file_note(request, ctx), 409, back)
    t = look().texts[language(request)]
    values, errors = _read(data, t)
    base = data.get("base_id", "").strip()
    base_id = int(base) if base.isdigit() else 0
    if errors:
        # All her mistakes at once: what the plan's validation says about the rest, too.
        errors = _place(_problems(book, series_id, values, errors), series_id) | errors
        return _page(request, ctx, me, series_id, values, base_id, errors=errors, status=422)
    try:
        revision = book.save_series(series_id, _fields(values), who(request, ctx, me),
                                    base_id=base_id)  # fmt: skip
    except PlanProblems as exc:
        errors = _place(exc.problems, series_id)
        return _page(request, ctx, me, series_id, values, base_id, errors=errors, status=422)
    except EditConflict as exc:
        now = _values(PlanDocument(exc.current.text).series_fields(series_id))
        return _page(request, ctx, me, series_id, now, exc.current.id, status=409, conflict=exc)
    except ReadOnlyPlan:
        return message(request, ctx, me, file_note(request, ctx), 409, back)
    except SessionBotError as exc:
        errors = {"general": str(exc)}
        return _page(request, ctx, me, series_id, values, base_id, errors=errors, status=422)
    saved(ctx)
    return RedirectResponse(f"{back}?saved={revision.id}", status_code=303)
