"""The console's frame: templates and texts, the signed-in organiser, form tokens, headers.

Pages are server-rendered and work without JavaScript. Every state-changing form carries the
session's CSRF token (the sign-in form a double-submit cookie); the session cookie is HttpOnly,
SameSite=Lax, limited to /admin and Secure whenever the public URL is https.
"""

from __future__ import annotations

import datetime as dt
import functools
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import jinja2
from babel.dates import format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from session_bot import wiring
from session_bot.adapters.render.invitations import default_templates_dir
from session_bot.app.console.accounts import Accounts
from session_bot.app.plan_book import Who
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import SessionBotError
from session_bot.web.client_address import client_address
from session_bot.web.console.run_words import run_words
from session_bot.web.deps import WebContext
from session_bot.web.pages import (
    merged_texts,
    page_environment,
    page_language,
    series_title,
    style_hash,
)

SESSION_COOKIE = "sb_console"
FORM_COOKIE = "sb_form"  # the sign-in form's double-submit token
LANG_COOKIE = "sb_lang"


@dataclass(frozen=True)
class Look:
    env: jinja2.Environment
    texts: Mapping[str, Mapping[str, str]]
    css: str
    csp: str


@functools.cache
def look() -> Look:
    folder = default_templates_dir() / "console"
    css = (folder / "console.css").read_text("utf-8")
    csp = (
        f"default-src 'none'; style-src {style_hash(css)}; img-src data:; form-action 'self'; "
        "frame-src 'self'; frame-ancestors 'self'; base-uri 'none'"
    )
    env = page_environment(folder)
    texts = merged_texts(folder)
    return Look(env, texts, css, csp)


def headers(lang: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": look().csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "SAMEORIGIN",
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Language": lang,
    }


def language(request: Request) -> str:
    asked = request.query_params.get("lang")
    return page_language(request, asked, request.cookies.get(LANG_COOKIE))


def accounts(ctx: WebContext) -> Accounts:
    return wiring.accounts(ctx.store, ctx.clock)


def client(request: Request, ctx: WebContext) -> str | None:
    return client_address(request, ctx.settings.trusted_proxies)


def secure(ctx: WebContext) -> bool:
    return ctx.settings.public_url.startswith("https://")


def signed_in(request: Request, ctx: WebContext) -> ConsoleSession | None:
    return accounts(ctx).session(request.cookies.get(SESSION_COOKIE))


def to_sign_in(request: Request, expired: bool = False) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    where = f"/admin/sign-in?next={quote(target, safe='')}" + ("&expired=1" if expired else "")
    return RedirectResponse(where, status_code=303)


def csrf_ok(me: ConsoleSession, sent: str | None) -> bool:
    return bool(sent) and hmac.compare_digest(me.csrf.encode(), (sent or "").encode())


def who(request: Request, ctx: WebContext, me: ConsoleSession) -> Who:
    """The signed-in organiser and her client address, as the audit log records an edit."""
    return Who(me.organiser.email, client(request, ctx))


def form_token() -> str:
    return secrets.token_urlsafe(24)


def render(
    request: Request,
    ctx: WebContext,
    template: str,
    *,
    title_key: str,
    me: ConsoleSession | None,
    status: int = 200,
    notices: list[tuple[str, str]] | None = None,
    current: str = "",
    **values: Any,
) -> HTMLResponse:
    lang = language(request)
    t = look().texts[lang]
    zone = _zone(ctx)
    html = (
        look()
        .env.get_template(template)
        .render(
            lang=lang,
            other_lang="en" if lang == "de" else "de",
            t=t,
            css=look().css,
            title=values.pop("title", None) or t[title_key],
            series_title=series_title(ctx, lang),
            me=me,
            csrf=me.csrf if me else "",
            current=current,
            notices=notices or [],
            pending_count=_pending_count(ctx) if me else 0,
            moment=lambda v: _moment(v, lang, zone),
            day=lambda v: _day(v, lang, zone),
            run_words=lambda counts: run_words(counts, t),
            **values,
        )
    )
    response = HTMLResponse(html, status, headers=headers(lang))
    if request.query_params.get("lang") == lang:
        response.set_cookie(LANG_COOKIE, lang, max_age=365 * 86400, samesite="lax", path="/admin")
    return response


def set_session_cookie(response: Response, ctx: WebContext, token: str) -> None:
    response.set_cookie(
        SESSION_COOKIE, token, httponly=True, samesite="lax", secure=secure(ctx), path="/admin"
    )


def _pending_count(ctx: WebContext) -> int:
    """Changes waiting for the organiser (the navigation's count); 0 while the plan is unusable
    (the overview names that problem)."""
    try:
        return len(ctx.pending().pending())
    except SessionBotError:
        return 0


def _zone(ctx: WebContext) -> Any:
    try:
        return ctx.plan().series[0].zone
    except (SessionBotError, IndexError):
        return dt.UTC


def _moment(value: dt.datetime, lang: str, zone: Any) -> str:
    pattern = "EEEE, d. MMMM yyyy, HH:mm 'Uhr'" if lang == "de" else "EEEE, d MMMM yyyy, HH:mm"
    return format_datetime(value, pattern, tzinfo=zone, locale=lang)


def _day(value: dt.datetime, lang: str, zone: Any) -> str:
    pattern = "EEEE, d. MMMM yyyy" if lang == "de" else "EEEE, d MMMM yyyy"
    return format_datetime(value, pattern, tzinfo=zone, locale=lang)
