"""The console's first page: what needs the organiser, what happens next, the sessions ahead."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from session_bot.app.console.overview import overview
from session_bot.web.console.base import SESSION_COOKIE, render, signed_in, to_sign_in
from session_bot.web.deps import Ctx

router = APIRouter()


@router.get("/admin/", include_in_schema=False)
@router.get("/admin", include_in_schema=False)
def overview_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    problems = ctx.problems() if ctx.problems is not None else []
    view = overview(ctx.store, ctx.plan(), ctx.clock(), problems)
    return render(
        request, ctx, "overview.html", title_key="overview_title", me=me, current="/admin/",
        view=view,
    )  # fmt: skip
