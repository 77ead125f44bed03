"""Zoom webhooks at POST /zoom/webhook: URL validation, signature check, drift flags.

Zoom wants an answer within 3 s and retries for days on a 5xx, so the handler only records which
session to re-check and answers; the read-back happens in a run after the response. For the same
reason nothing a signed sender can put in an event leads to a 500: a malformed event is a 400, an
event about nothing of ours a 200 "ignored", a replayed delivery a 200 "duplicate".

Authenticate before parse: the signature headers are checked (present, well-formed, fresh)
before the body is read, and the body is parsed only after its signature matched.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import logging
import re
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import JSONResponse

from session_bot.core.errors import SessionBotError
from session_bot.web.deps import Ctx, WebContext

log = logging.getLogger("session_bot.web_zoom")
router = APIRouter()

MAX_AGE_SECONDS = 300  # replayed deliveries older than this are refused
WATCHED = ("meeting.deleted", "meeting.updated")
_SIGNATURE = re.compile(r"v0=[0-9a-f]{64}")
_MAX_ID = 2**63 - 1  # what a BIGINT column holds; anything larger is not a Zoom meeting


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode(), b"v0:" + timestamp.encode() + b":" + body, hashlib.sha256)
    return "v0=" + mac.hexdigest()


def _refuse(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status_code=status)


def _recheck(ctx: WebContext, key: str) -> None:
    if ctx.trigger_run is None:
        return
    log.info("zoom webhook: re-checking %s", key)
    try:
        ctx.trigger_run("webhook")
    except SessionBotError as exc:
        # The flag stays set; the next scheduled run re-checks the session.
        log.warning("zoom webhook: re-check did not run now: %s", exc)


def _headers_refusal(request: Request, now: float) -> JSONResponse | None:
    """Checks that need no body, so an unsigned sender never gets us to read one."""
    timestamp = request.headers.get("x-zm-request-timestamp", "")
    signature = request.headers.get("x-zm-signature", "")
    if not _SIGNATURE.fullmatch(signature):
        log.warning("zoom webhook refused: no or malformed signature header")
        return _refuse(401, "invalid signature")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        return _refuse(401, "invalid timestamp")
    if abs(now - int(timestamp)) > MAX_AGE_SECONDS:
        return _refuse(401, "stale request")
    return None


def _event(body: bytes) -> tuple[str, dict[str, Any]] | None:
    """(name, payload) of a Zoom event, or None for anything else."""
    try:
        event = json.loads(body)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than the parser goes
        return None
    if not isinstance(event, dict) or not isinstance(event.get("event"), str):
        return None
    payload = event.get("payload")
    if payload is None:
        payload = {}
    if not isinstance(payload, dict):
        return None
    return event["event"], payload


def _meeting_id(payload: dict[str, Any]) -> int | None:
    """The meeting id Zoom names, if it can be one (a positive signed 64-bit integer)."""
    obj = payload.get("object")
    raw = obj.get("id") if isinstance(obj, dict) else None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit() and len(raw) <= 19:
        raw = int(raw)
    if isinstance(raw, bool) or not isinstance(raw, int):
        return None
    return raw if 1 <= raw <= _MAX_ID else None


def _first_delivery(ctx: WebContext, signature: str) -> bool:
    """True the first time this signature is seen within the time a delivery stays fresh.

    The signature covers timestamp and body, so it names one delivery. The store's rate-limit
    counter does the remembering: it is one atomic statement, so of two concurrent replays only
    one counts as first (a kv get-then-set would let both through)."""
    key = "zw:" + hashlib.sha256(signature.encode()).hexdigest()[:40]
    window = dt.timedelta(seconds=2 * MAX_AGE_SECONDS)
    return ctx.store.counters.hit_rate_limit(key, ctx.clock(), window, 1)


@router.post("/zoom/webhook", include_in_schema=False)
async def zoom_webhook(request: Request, ctx: Ctx, background: BackgroundTasks) -> JSONResponse:
    secret = ctx.settings.zoom_webhook_secret
    if secret is None:
        return _refuse(404, "webhooks are not configured (SESSION_BOT_ZOOM_WEBHOOK_SECRET)")
    refusal = _headers_refusal(request, ctx.clock().timestamp())
    if refusal is not None:
        return refusal
    timestamp = request.headers["x-zm-request-timestamp"]
    signature = request.headers["x-zm-signature"]
    body = await request.body()  # bounded by the app's BodyLimit
    if not hmac.compare_digest(sign(secret.get_secret_value(), timestamp, body), signature):
        log.warning("zoom webhook refused: bad signature")
        return _refuse(401, "invalid signature")
    event = _event(body)
    if event is None:
        log.warning("zoom webhook: signed but not a Zoom event; refused with 400")
        return _refuse(400, "not a Zoom event")
    name, payload = event
    if name == "endpoint.url_validation":
        plain = payload.get("plainToken")
        if not isinstance(plain, str):
            return _refuse(400, "plainToken missing")
        token = hmac.new(secret.get_secret_value().encode(), plain.encode(), hashlib.sha256)
        return JSONResponse({"plainToken": plain, "encryptedToken": token.hexdigest()})
    if not _first_delivery(ctx, signature):
        log.info("zoom webhook: %s delivered again; ignored", name)
        return JSONResponse({"status": "duplicate"})
    if name in WATCHED:
        meeting_id = _meeting_id(payload)
        if meeting_id is None:
            return JSONResponse({"status": "ignored"})
        key = ctx.store.sessions.flag_zoom_check(meeting_id, ctx.clock())
        if key is None:
            # Not ours (another series, or already deleted by us): 200 so Zoom does not retry.
            return JSONResponse({"status": "ignored"})
        background.add_task(_recheck, ctx, key)
        return JSONResponse({"status": "accepted"})
    return JSONResponse({"status": "ignored"})
