"""The audit log: who did what in the console (and the CLI's organiser commands), newest first,
and the one way a console page records what an organiser changed."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from session_bot.core.console import ConsoleSession
from session_bot.web.console.base import client, render, signed_in, to_sign_in
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()


@router.get("/admin/audit", include_in_schema=False)
def audit_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request)
    return render(
        request, ctx, "audit.html", title_key="audit_title", me=me, current="/admin/audit",
        entries=ctx.store.audit.latest(),
    )  # fmt: skip


def record(request: Request, ctx: WebContext, me: ConsoleSession, action: str, detail: str) -> None:
    """One entry for what ``me`` just did: now, by her address, from her client."""
    ctx.store.audit.record(ctx.clock(), me.organiser.email, action, detail, client(request, ctx))
