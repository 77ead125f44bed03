"""Every request body is bounded before anything reads it.

A pure ASGI middleware (no ``BaseHTTPMiddleware``, which would buffer): a declared
Content-Length above the limit is refused with 413 before the app runs; a body without one
(chunked) is counted as the app reads it, and reading stops with 413 as soon as the count passes
the limit. So at most ``max_bytes`` plus one chunk of any request is ever held in memory.
"""

from __future__ import annotations

import logging

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("session_bot.web")

_BODY = b"request body too large\n"


class BodyTooLarge(HTTPException):
    """Raised from ``receive``: an HTTPException, so FastAPI's body parsing passes it on instead
    of turning it into a 400, and the app's own handler answers 413."""

    def __init__(self) -> None:
        super().__init__(status_code=413, detail="request body too large")


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            _log_refusal(scope, declared)
            await _refuse(send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    _log_refusal(scope, seen)
                    raise BodyTooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyTooLarge:
            # Only reached where nothing inside answered it; a begun response cannot change.
            if not started:
                await _refuse(send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server refuses a malformed one before we see it
    return None


def _log_refusal(scope: Scope, size: int) -> None:
    log.warning(
        "web: %s %s refused: body of %s bytes or more is over the limit",
        scope.get("method", "?"),
        # Only the first segment: confirm and unsubscribe paths carry a subscriber's token.
        "/" + str(scope.get("path", "/")).lstrip("/").split("/")[0],
        size,
    )


async def _refuse(send: Send) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(_BODY)).encode()),
                # The rest of the body is never read: the connection cannot carry another request.
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": _BODY})
