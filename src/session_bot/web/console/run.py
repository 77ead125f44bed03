"""Run now: what a reconcile run would do at this moment, in words, and a button that runs it
through the daemon's runner (the same run lock; a standby leaves a run request instead)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, Response

from session_bot.app.console.overview import MailingCount
from session_bot.app.runner import state_from_store
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import SessionBotError
from session_bot.core.timeline import Action, due_actions
from session_bot.web.console.base import (
    SESSION_COOKIE,
    client,
    csrf_ok,
    render,
    signed_in,
    to_sign_in,
)
from session_bot.web.console.sessions import expired_form
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()
PATH = "/admin/run-now"


@dataclass(frozen=True)
class OpenMailing:
    """A mailing whose delivery a run would resume."""

    date: str  # the session's date, YYYY-MM-DD
    mailing: MailingCount


@dataclass(frozen=True)
class DueNow:
    actions: list[Action]
    open: list[OpenMailing]
    confirmed: int  # confirmed subscribers: who an invitation or reminder would go to


def due_now(ctx: WebContext) -> DueNow:
    """What ``session-bot run --dry-run`` lists: the due actions and the mailings to resume."""
    store = ctx.store
    actions = due_actions(ctx.clock(), ctx.plan(), state_from_store(store))
    resumed = [
        OpenMailing(
            row.session_key.partition("/")[2],
            MailingCount(
                row.id,
                row.kind,
                row.sequence,
                row.created_at,
                row.recipients,
                store.mailings.delivery_counts(row.id),
            ),
        )
        for row in store.mailings.open()
    ]
    return DueNow(actions, resumed, store.subscribers.count("confirmed"))


def _page(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    *,
    result: dict[str, Any] | None = None,
) -> HTMLResponse:
    return render(
        request, ctx, "run.html", title_key="nav_run", me=me, current=PATH,
        due=due_now(ctx), result=result, can_run=ctx.trigger_run is not None,
        standby=ctx.role != "leader",
    )  # fmt: skip


@router.get(PATH, include_in_schema=False)
def run_now_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    return _page(request, ctx, me)


@router.post(PATH, include_in_schema=False)
def run_now(request: Request, ctx: Ctx, csrf: Annotated[str, Form()] = "") -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    if not csrf_ok(me, csrf):
        return expired_form(request, ctx, me, PATH)
    if ctx.trigger_run is None:
        result: dict[str, Any] = {"ok": False, "error": "this process runs no reconcile loop"}
    else:
        try:
            result = ctx.trigger_run("console")
        except SessionBotError as exc:  # LockBusy: a run is in progress and holds the lock
            result = {"ok": False, "error": str(exc)}
    ctx.store.audit.record(
        ctx.clock(), me.organiser.email, "run", _audit_detail(result), client(request, ctx)
    )
    return _page(request, ctx, me, result=result)


def _audit_detail(result: dict[str, Any]) -> str:
    if "requested" in result:
        return "requested from the leader"
    if "error" in result:
        return f"not run: {result['error']}"
    return f"{result.get('outcome', 'ok')}: {result.get('summary', '')}"
