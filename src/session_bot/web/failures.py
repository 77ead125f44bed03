"""What a visitor sees when the database cannot be used: 503 with Retry-After, never a 500.

A 500 comes with uvicorn's traceback in the log, and SQLAlchemy's part of it prints the SQL
parameters, which can be a subscriber's address. A 503 with Retry-After tells browsers' users,
mail clients sending the RFC 8058 one-click POST and Zoom alike to try again later, and the log
gets one line naming the route (not the path: it may carry a token) and the store's message
(which never holds parameters, see ``adapters/db/database.translate``).
"""

from __future__ import annotations

import logging

from fastapi.routing import APIRoute
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response

from session_bot.web.deps import WebContext
from session_bot.web.pages import page_language, render_page

log = logging.getLogger("session_bot.web")

RETRY_AFTER_SECONDS = 120

# Here rather than in texts.yaml: the page must render even when nothing else can be relied on.
_OUTAGE: dict[str, tuple[str, str]] = {
    "de": (
        "Technisches Problem",
        "Gerade ist ein technisches Problem aufgetreten. Ihre Anfrage wurde nicht gespeichert. "
        "Bitte versuchen Sie es in einigen Minuten noch einmal.",
    ),
    "en": (
        "Technical problem",
        "A technical problem has just occurred. Your request was not saved. "
        "Please try again in a few minutes.",
    ),
}


def _route_name(request: Request) -> str:
    route = request.scope.get("route")
    return str(getattr(route, "path", "/" + request.url.path.lstrip("/").split("/")[0]))


def _is_page(request: Request) -> bool:
    route = request.scope.get("route")
    return isinstance(route, APIRoute) and route.response_class is HTMLResponse


def store_failed(request: Request, exc: Exception) -> Response:
    """The handler of ``StoreError`` for the whole app."""
    log.error(
        "web: %s %s answered 503, the database cannot be used: %s",
        request.method,
        _route_name(request),
        exc,
    )
    headers = {"Retry-After": str(RETRY_AFTER_SECONDS)}
    if not _is_page(request):
        return JSONResponse(
            {"ok": False, "error": "the database cannot be used right now; try again later"},
            status_code=503,
            headers=headers,
        )
    ctx: WebContext = request.app.state.ctx
    lang = page_language(request, request.query_params.get("lang"))
    title, text = _OUTAGE[lang] if lang in _OUTAGE else _OUTAGE["de"]
    return render_page(
        request,
        ctx,
        "message.html",
        lang,
        title_key="",
        title=title,
        status=503,
        extra_headers=headers,
        paragraphs=[text],
        button=None,
        link=None,
        feed=None,
    )
