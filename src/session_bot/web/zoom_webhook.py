"""Zoom webhooks at POST /zoom/webhook: URL validation, signature check, drift flags.

Zoom wants an answer within 3 s and retries for days on a 5xx, so the handler only records which
session to re-check and answers; the read-back happens in a run after the response.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from session_bot.web.deps import Ctx, WebContext

log = logging.getLogger("session_bot.web_zoom")
router = APIRouter()

MAX_AGE_SECONDS = 300  # replayed deliveries older than this are refused
WATCHED = ("meeting.deleted", "meeting.updated")


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _recheck(ctx: WebContext, key: str) -> None:
    if ctx.trigger_run is not None:
        log.info("zoom webhook: re-checking %s", key)
        ctx.trigger_run("webhook")


@router.post("/zoom/webhook", include_in_schema=False)
async def zoom_webhook(request: Request, ctx: Ctx, background: BackgroundTasks) -> JSONResponse:
    secret = ctx.settings.zoom_webhook_secret
    if secret is None:
        return _refuse(404, "webhooks are not configured (SESSION_BOT_ZOOM_WEBHOOK_SECRET)")
    body = await request.body()
    timestamp = request.headers.get("x-zm-request-timestamp", "")
    signature = request.headers.get("x-zm-signature", "")
    expected = sign(secret.get_secret_value(), timestamp, body)
    if not hmac.compare_digest(expected, signature):
        log.warning("zoom webhook refused: bad signature")
        return _refuse(401, "invalid signature")
    try:
        age = abs(ctx.clock().timestamp() - int(timestamp))
    except ValueError:
        return _refuse(401, "invalid timestamp")
    if age > MAX_AGE_SECONDS:
        return _refuse(401, "stale request")
    try:
        event: dict[str, Any] = json.loads(body)
        name = str(event["event"])
        payload = event.get("payload") or {}
    except (ValueError, KeyError, TypeError):
        return _refuse(400, "not a Zoom event")
    if name == "endpoint.url_validation":
        plain = str(payload.get("plainToken", ""))
        token = hmac.new(secret.get_secret_value().encode(), plain.encode(), hashlib.sha256)
        return JSONResponse({"plainToken": plain, "encryptedToken": token.hexdigest()})
    if name in WATCHED:
        try:
            meeting_id = int((payload.get("object") or {})["id"])
        except (KeyError, TypeError, ValueError):
            return JSONResponse({"status": "ignored"})
        key = ctx.store.sessions.flag_zoom_check(meeting_id, ctx.clock())
        if key is None:
            # Not ours (another series, or already deleted by us): 200 so Zoom does not retry.
            return JSONResponse({"status": "ignored"})
        background.add_task(_recheck, ctx, key)
        return JSONResponse({"status": "accepted"})
    return JSONResponse({"status": "ignored"})
