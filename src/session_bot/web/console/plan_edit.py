"""Editing one session of the plan in the console (/admin/sessions/{date}/edit) and adding an
extra one (/admin/sessions/new).

Each save is a new plan revision (``PlanBook``): validated as the plan file is, with the
problems shown next to the fields; refused when someone else changed the same session since the
form was filled (its ``base_id``). A plan kept as a file (SESSION_BOT_PLAN) is shown, not edited.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from session_bot.app.plan_book import EditConflict, PlanBook, ReadOnlyPlan, plan_of
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.plan import Plan, Series, find_occurrence, parse_plan
from session_bot.core.plan.edit import PlanDocument, SessionFields
from session_bot.core.plan.problems import PlanProblems
from session_bot.web.console import plan_form as pf
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
from session_bot.web.console.sessions import expired_form
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()
NEW = "/admin/sessions/new"


@dataclass(frozen=True)
class Source:
    """The plan text the form is filled from, its revision (0 for a file) and the plan."""

    text: str
    base_id: int
    plan: Plan
    editable: bool


def plan_source(ctx: WebContext, book: PlanBook) -> Source:
    """The current revision, or the file when the plan is kept as one (``PlanError`` if
    neither is usable)."""
    if not book.editable and ctx.plan_file is not None:
        try:
            text = Path(ctx.plan_file).read_text("utf-8")
        except OSError as exc:
            raise PlanError(f"the plan file {ctx.plan_file} cannot be read: {exc}") from None
        return Source(text, 0, ctx.plan(), False)
    current = book.require_current()
    return Source(current.text, current.id, plan_of(current), True)


def file_note(request: Request, ctx: WebContext) -> str:
    return look().texts[language(request)]["pe_file_managed"].replace("{path}", str(ctx.plan_file))


def message(
    request: Request, ctx: WebContext, me: ConsoleSession, text: str, status: int, back: str
) -> HTMLResponse:
    t = look().texts[language(request)]
    return render(
        request, ctx, "message.html", title_key="pe_title", me=me, status=status,
        paragraphs=[text], link={"url": back, "text": t["back"]},
    )  # fmt: skip


def saved(ctx: WebContext) -> None:
    """This process acts on the new revision at once (the other server at its next check)."""
    if ctx.plan_saved is not None:
        ctx.plan_saved()


async def form_data(request: Request) -> dict[str, str]:
    """The posted fields (text only; the body limit bounds their size)."""
    form = await request.form()
    return {k: v for k, v in form.multi_items() if isinstance(v, str)}


def _day(text: str) -> dt.date | None:
    text = text.strip()
    m = re.fullmatch(r"(\d{1,2})\.(\d{1,2})\.(\d{4})", text)
    try:
        if m:
            return dt.date(int(m.group(3)), int(m.group(2)), int(m.group(1)))
        return dt.date.fromisoformat(text) if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text) else None
    except ValueError:
        return None


def _series(plan: Plan, day: dt.date | None) -> Series | None:
    if day is None:
        return None
    try:
        return find_occurrence(plan, day).series
    except PlanError:
        return None


def _page(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    form: pf.SessionForm,
    *,
    series: Series,
    plan: Plan,
    day: dt.date | None,
    errors: Mapping[str, str] | None = None,
    status: int = 200,
    readonly: bool = False,
    **more: Any,
) -> HTMLResponse:
    t = look().texts[language(request)]
    new = day is None or request.url.path == NEW
    if new:
        title = t["pe_new_title"]
        action = NEW
    else:
        assert day is not None
        title = t["pe_edit_title"].replace("{date}", f"{day:%d.%m.%Y}")
        action = f"/admin/sessions/{day.isoformat()}/edit"
    errors = dict(errors or {})
    return render(
        request, ctx, "session_edit.html", title_key="pe_title", me=me, status=status,
        title=title, form=form, errors=errors, series=series, all_series=plan.series, new=new,
        action=action, edit_day=day, readonly=readonly, kinds=pf.KINDS,
        offer_extra=form.extra or "date" in errors,
        back=f"/admin/sessions/{day.isoformat()}" if day and not new else "/admin/",
        file_note=file_note(request, ctx) if readonly else "", **more,
    )  # fmt: skip


@router.get("/admin/sessions/new", include_in_schema=False)
def new_session(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    book = ctx.plan_book()
    try:
        src = plan_source(ctx, book)
    except PlanError as exc:
        return message(request, ctx, me, str(exc), 409, "/admin/")
    form = pf.with_spare_rows(pf.SessionForm(base_id=src.base_id), 2, 1)
    return _page(
        request, ctx, me, form, series=src.plan.series[0], plan=src.plan, day=None,
        readonly=not src.editable,
    )  # fmt: skip


@router.get("/admin/sessions/{date}/edit", include_in_schema=False)
def edit_session(request: Request, ctx: Ctx, date: str) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    book = ctx.plan_book()
    try:
        src = plan_source(ctx, book)
    except PlanError as exc:
        return message(request, ctx, me, str(exc), 409, "/admin/")
    day = _day(date)
    series = _series(src.plan, day)
    if day is None or series is None:
        t = look().texts[language(request)]
        return message(
            request, ctx, me, t["session_missing"].replace("{date}", date), 404, "/admin/"
        )
    fields = PlanDocument(src.text).session_fields(series.id, day)
    form = pf.with_spare_rows(pf.form_of(fields, src.base_id), 1, 1)
    return _page(
        request, ctx, me, form, series=series, plan=src.plan, day=day, readonly=not src.editable
    )


@router.post("/admin/sessions/new", include_in_schema=False)
async def add_session(request: Request, ctx: Ctx) -> Response:
    data = await form_data(request)
    return await run_in_threadpool(_save, request, ctx, data, None)


@router.post("/admin/sessions/{date}/edit", include_in_schema=False)
async def save_session(request: Request, ctx: Ctx, date: str) -> Response:
    data = await form_data(request)
    return await run_in_threadpool(_save, request, ctx, data, date)


def _save(request: Request, ctx: WebContext, data: dict[str, str], date: str | None) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    back = NEW if date is None else f"/admin/sessions/{date}/edit"
    if not csrf_ok(me, data.get("csrf")):
        return expired_form(request, ctx, me, back)
    book = ctx.plan_book()
    if not book.editable:
        return message(request, ctx, me, file_note(request, ctx), 409, back)
    try:
        src = plan_source(ctx, book)
    except PlanError as exc:
        return message(request, ctx, me, str(exc), 409, "/admin/")
    t = look().texts[language(request)]
    form = pf.read_form(data)
    errors: dict[str, str] = {}
    if date is None:
        day = _day(form.get("date"))
        series = next((s for s in src.plan.series if s.id == data.get("series")), None)
        series = series or src.plan.series[0]
        if day is None:
            errors["date"] = t["pe_date_bad"]
        elif PlanDocument(src.text).session_raw(series.id, day) is not None:
            errors["date"] = t["pe_date_taken"].replace("{date}", f"{day:%d.%m.%Y}")
    else:
        day = _day(date)
        found = _series(src.plan, day)
        if day is None or found is None:
            return message(
                request, ctx, me, t["session_missing"].replace("{date}", date), 404, "/admin/"
            )
        series = found
    more = data.get("more", "")
    if more in ("speaker", "material"):
        pf.with_spare_rows(form, int(more == "speaker"), int(more == "material"))
        return _page(request, ctx, me, form, series=series, plan=src.plan, day=day)
    parsed = pf.parse(form, t)
    errors.update(parsed.errors)
    if errors and day is not None:
        # All her mistakes at once: what the plan's validation says about the rest, too.
        problems = _problems(src.text, series.id, day, parsed.fields)
        errors = pf.place_problems(problems, series.id, day, parsed) | errors
    if errors or day is None:
        return _page(request, ctx, me, form, series=series, plan=src.plan, day=day,
                     errors=errors, status=422)  # fmt: skip
    try:
        revision = book.save_session(
            series.id, day, parsed.fields, who(request, ctx, me), base_id=form.base_id
        )
    except PlanProblems as exc:
        errors = pf.place_problems(exc.problems, series.id, day, parsed)
        return _page(request, ctx, me, form, series=series, plan=src.plan, day=day,
                     errors=errors, status=422)  # fmt: skip
    except EditConflict as exc:
        return _conflict(request, ctx, me, form, exc, series, day)
    except ReadOnlyPlan:
        return message(request, ctx, me, file_note(request, ctx), 409, back)
    except (PlanError, SessionBotError) as exc:
        return _page(request, ctx, me, form, series=series, plan=src.plan, day=day,
                     errors={"general": str(exc)}, status=422)  # fmt: skip
    saved(ctx)
    return RedirectResponse(
        f"/admin/sessions/{day.isoformat()}?saved={revision.id}", status_code=303
    )


def _problems(text: str, series_id: str, day: dt.date, fields: SessionFields) -> list[PlanError]:
    """What the plan's validation would say about these fields (nothing is saved)."""
    doc = PlanDocument(text)
    doc.set_session(series_id, day, fields)
    return validation_problems(doc)


def validation_problems(doc: PlanDocument) -> list[PlanError]:
    """What the plan file's validation says about an edited plan (nothing is saved)."""
    try:
        parse_plan(doc.dump(), "console")
    except PlanProblems as exc:
        return exc.problems
    return []


def _conflict(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    typed: pf.SessionForm,
    exc: EditConflict,
    series: Series,
    day: dt.date,
) -> HTMLResponse:
    """Nothing saved: the form shows the session as it is now (to enter her change again on
    top of it), with what changed meanwhile and what she had typed."""
    fields = PlanDocument(exc.current.text).session_fields(series.id, day)
    form = pf.with_spare_rows(pf.form_of(fields, exc.current.id, day.isoformat()), 1, 1)
    return _page(
        request, ctx, me, form, series=series, plan=plan_of(exc.current), day=day, status=409,
        conflict={"message": str(exc), "changes": exc.changes, "typed": typed},
    )  # fmt: skip
