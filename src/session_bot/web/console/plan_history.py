"""The plan's revisions in the console (/admin/plan): who saved which, each one's text and its
difference from the current one, restoring one (after a confirmation) and the current plan as
a YAML download."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Mapping
from typing import Annotated

from babel.dates import format_date
from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from session_bot.app.plan_book import EditConflict, ReadOnlyPlan
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.records import PlanRevision
from session_bot.web.console.base import (
    SESSION_COOKIE,
    csrf_ok,
    headers,
    language,
    look,
    render,
    signed_in,
    to_sign_in,
    who,
)
from session_bot.web.console.plan_edit import file_note, message, plan_source, saved
from session_bot.web.console.sessions import expired_form
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()
PATH = "/admin/plan"


def diff_lines(lines: list[str]) -> list[tuple[str, str]]:
    """Each line of a unified diff with its kind: add, remove, hunk, head or same."""
    out = []
    for line in lines:
        if line.startswith(("+++", "---")):
            kind = "head"
        elif line.startswith("@@"):
            kind = "hunk"
        elif line.startswith("+"):
            kind = "add"
        elif line.startswith("-"):
            kind = "remove"
        else:
            kind = "same"
        out.append((kind, line))
    return out


def _revision(ctx: WebContext, revision_id: str) -> PlanRevision | None:
    if not revision_id.isdigit() or len(revision_id) > 12:
        return None
    try:
        return ctx.plan_book().get(int(revision_id))
    except PlanError:
        return None


# The notes PlanBook writes (in English, for the log and `plan history`) and their words here.
_NOTES = (
    (re.compile(r"imported from (.+)"), "ph_note_imported"),
    (re.compile(r"session [^/]+/(\d{4}-\d{2}-\d{2})"), "ph_note_session"),
    (re.compile(r"series .+"), "ph_note_series"),
    (re.compile(r"restored revision (\d+)"), "ph_note_restored"),
)


def note_words(t: Mapping[str, str], lang: str) -> Callable[[PlanRevision], str]:
    """A revision's note in the reader's language ("Termin am Mittwoch, 9. Dezember 2026");
    a note of another shape as it is."""

    def words(revision: PlanRevision) -> str:
        for pattern, key in _NOTES:
            m = pattern.fullmatch(revision.note)
            if m is None:
                continue
            value = m.group(1) if m.groups() else ""
            if key == "ph_note_session":
                value = format_date(dt.date.fromisoformat(value), "full", locale=lang)
            return t[key].replace("{value}", value)
        return revision.note

    return words


def _missing(request: Request, ctx: WebContext, me: ConsoleSession, revision_id: str) -> Response:
    t = look().texts[language(request)]
    text = t["ph_missing"].replace("{n}", revision_id[:12])
    return message(request, ctx, me, text, 404, PATH)


@router.get("/admin/plan", include_in_schema=False)
def plan_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    book = ctx.plan_book()
    t = look().texts[language(request)]
    notices = []
    restored = request.query_params.get("restored", "")
    if restored.isdigit():
        notices.append((t["ph_restored"].replace("{n}", restored), ""))
    current = book.current() if book.editable else None
    return render(
        request, ctx, "plan.html", title_key="ph_title", me=me, current=PATH,
        note=note_words(look().texts[language(request)], language(request)), notices=notices,
        revisions=book.history(), current_id=current.id if current else None,
        file_note=file_note(request, ctx) if not book.editable else "",
        series=_series_ids(ctx),
    )  # fmt: skip


def _series_ids(ctx: WebContext) -> list[tuple[str, str]]:
    try:
        return [(s.id, s.title) for s in ctx.plan().series]
    except SessionBotError:
        return []


@router.get("/admin/plan/current.yaml", include_in_schema=False)
def download(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    try:
        src = plan_source(ctx, ctx.plan_book())
    except PlanError as exc:
        return message(request, ctx, me, str(exc), 404, PATH)
    name = f"plan-{src.base_id}.yaml" if src.base_id else "plan.yaml"
    return Response(
        src.text,
        media_type="application/yaml; charset=utf-8",
        headers=headers(language(request))
        | {"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.get("/admin/plan/{revision_id}", include_in_schema=False)
def revision_page(request: Request, ctx: Ctx, revision_id: str) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    revision = _revision(ctx, revision_id)
    if revision is None:
        return _missing(request, ctx, me, revision_id)
    book = ctx.plan_book()
    current = book.current()
    lines = book.compare(revision.id) if current is not None else []
    t = look().texts[language(request)]
    return render(
        request, ctx, "plan.html", title_key="ph_title", me=me, current=PATH,
        note=note_words(look().texts[language(request)], language(request)),
        title=t["ph_revision_title"].replace("{n}", str(revision.id)), revision=revision,
        diff=diff_lines(lines), current_id=current.id if current else None,
        editable=book.editable,
    )  # fmt: skip


@router.post("/admin/plan/{revision_id}/restore", include_in_schema=False)
def restore(
    request: Request,
    ctx: Ctx,
    revision_id: str,
    csrf: Annotated[str, Form()] = "",
    confirm: Annotated[str, Form()] = "",
) -> Response:
    """First POST: what restoring does, and the button to do it; second (confirm=yes): do it."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    back = f"{PATH}/{revision_id[:12]}"
    if not csrf_ok(me, csrf):
        return expired_form(request, ctx, me, back)
    book = ctx.plan_book()
    if not book.editable:
        return message(request, ctx, me, file_note(request, ctx), 409, back)
    revision = _revision(ctx, revision_id)
    if revision is None:
        return _missing(request, ctx, me, revision_id)
    t = look().texts[language(request)]
    if confirm != "yes":
        current = book.current()
        return render(
            request, ctx, "plan.html", title_key="ph_title", me=me, current=PATH,
        note=note_words(look().texts[language(request)], language(request)),
            title=t["ph_confirm_title"].replace("{n}", str(revision.id)), revision=revision,
            confirming=True, current_id=current.id if current else None, editable=True,
        )  # fmt: skip
    try:
        new = book.restore(revision.id, who(request, ctx, me))
    except (ReadOnlyPlan, EditConflict, PlanError) as exc:
        return message(request, ctx, me, str(exc), 409, back)
    saved(ctx)
    return RedirectResponse(f"{PATH}?restored={new.id}", status_code=303)
