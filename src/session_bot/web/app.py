"""The web app: health, the admin API, the subscriber pages and the Zoom webhook.

``create_app`` takes everything it needs as a :class:`WebContext`; the daemon builds one, tests
build their own. Routes reach it through the ``Ctx`` dependency, never through globals.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import FastAPI, Header
from fastapi.responses import JSONResponse

from session_bot.app.run_requests import RUN_REQUEST_KEY, RunRequest
from session_bot.app.runner import state_from_store
from session_bot.core.errors import LockBusy, SessionBotError, StoreError
from session_bot.core.timeline import next_due
from session_bot.web.archive import router as archive_router
from session_bot.web.body_limit import BodyLimit
from session_bot.web.console import router as console_router
from session_bot.web.deps import Ctx, WebContext
from session_bot.web.failures import store_failed
from session_bot.web.public import router as public_router
from session_bot.web.subscribe import router as subscribe_router
from session_bot.web.zoom_webhook import router as zoom_router

log = logging.getLogger("session_bot.web")


def _iso(value: Any) -> Any:
    return value.isoformat() if isinstance(value, dt.datetime) else value


def _bearer_ok(header: str | None, expected: str) -> bool:
    if not header:
        return False
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        return False
    # Constant-time: the comparison must not reveal how much of the token was right.
    return hmac.compare_digest(token.strip().encode(), expected.encode())


Instance = Callable[[], dict[str, Any]]


def health(ctx: WebContext, instance: Instance | None = None) -> tuple[int, dict[str, Any]]:
    """(HTTP status, body) of /healthz: the database answers, the last run, the next due moment,
    a run request the leader has not taken up yet (normally answered within seconds), and
    (``instance``) which process answers: role, host, pid, since; a standby names the leader.
    Any of ``ctx.problems`` makes it 503 with ``"ok": false`` and the list."""
    now = ctx.clock()
    problems = ctx.problems() if ctx.problems is not None else []
    try:
        last = ctx.store.runs.last()
        requested = ctx.store.kv.get(RUN_REQUEST_KEY)
        nd = next_due(now, ctx.plan(), state_from_store(ctx.store))
        me = instance() if instance is not None else None
    except SessionBotError as exc:
        log.error("health check failed: %s", exc)
        failed: dict[str, Any] = {"ok": False, "role": ctx.role, "error": type(exc).__name__}
        return 503, {**failed, "problems": problems} if problems else failed
    body: dict[str, Any] = {
        "ok": not problems,
        "role": ctx.role,
        "now": now.isoformat(),
        "last_run": {k: _iso(v) for k, v in last.items()} if last else None,
        "next_due": nd.isoformat() if nd else None,
        "run_requested": RunRequest.decode(requested).as_dict() if requested else None,
    }
    if me is not None:
        body["instance"] = me
    if problems:
        body["problems"] = problems
        return 503, body
    return 200, body


def _standby_refusal(ctx: WebContext, instance: Instance | None) -> JSONResponse:
    leader = (instance() if instance is not None else {}).get("leader")
    where = (
        f"the leader (pid {leader['pid']} on {leader['host']})"
        if isinstance(leader, dict)
        else "the leader"
    )
    return JSONResponse(
        {
            "ok": False,
            "role": ctx.role,
            "leader": leader,
            "error": f"this instance is a standby and runs nothing: {where} does. Send POST "
            "/admin/run to the leader; a standby takes over by itself when the leader is gone.",
        },
        status_code=503,
        headers={"Retry-After": "10"},
    )


def create_app(ctx: WebContext, *, instance: Instance | None = None) -> FastAPI:
    """The app; ``instance`` describes the serving process for /healthz (the daemon's)."""
    app = FastAPI(
        title="session-bot",
        docs_url=None,
        redoc_url=None,
        openapi_url=None,  # nothing to advertise to the public
    )
    app.state.ctx = ctx
    app.add_middleware(BodyLimit, max_bytes=ctx.settings.max_body_bytes)
    app.add_exception_handler(StoreError, store_failed)

    @app.get("/healthz")
    def healthz(ctx: Ctx) -> JSONResponse:
        status, body = health(ctx, instance)
        return JSONResponse(body, status_code=status)

    @app.post("/admin/run")
    def admin_run(ctx: Ctx, authorization: Annotated[str | None, Header()] = None) -> JSONResponse:
        configured = ctx.settings.admin_token
        if configured is None:
            return JSONResponse(
                {"ok": False, "error": "SESSION_BOT_ADMIN_TOKEN is not set; the admin API is off"},
                status_code=503,
            )
        if not _bearer_ok(authorization, configured.get_secret_value()):
            log.warning("admin API: request without a valid bearer token refused")
            return JSONResponse(
                {"ok": False, "error": "a valid `Authorization: Bearer <token>` is required"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if ctx.role != "leader":
            return _standby_refusal(ctx, instance)
        if ctx.trigger_run is None:
            return JSONResponse(
                {"ok": False, "error": "this process runs no reconcile loop"}, status_code=503
            )
        log.info("admin API: run requested")
        try:
            result = ctx.trigger_run("admin")
        except LockBusy as exc:
            return JSONResponse({"ok": False, "error": str(exc)}, status_code=409)
        return JSONResponse(result, status_code=200 if result.get("ok", True) else 500)

    # The public form before the console: routes are tried in order and no path is in both,
    # so the busiest one (POST /subscribe, issue 18) is found without trying the console's
    # dozens of /admin/ routes first (≈ 560–575 → 630 requests/s in bench/web.py).
    app.include_router(subscribe_router)  # /subscribe, /confirm, /unsubscribe
    app.include_router(console_router)  # /admin/ pages (the bearer API above stays)
    app.include_router(zoom_router)  # /zoom/webhook
    app.include_router(public_router)  # /, /en/, /calendar.ics, /calendar/<token>.ics
    app.include_router(archive_router)  # /archive, /en/archive
    return app
