"""Signing in and out, and setting a password through the one-time link."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from session_bot.app.console.accounts import SignedIn
from session_bot.web.console.base import (
    FORM_COOKIE,
    SESSION_COOKIE,
    accounts,
    client,
    csrf_ok,
    form_token,
    language,
    look,
    render,
    secure,
    set_session_cookie,
    signed_in,
)
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()


def _safe_next(target: str | None) -> str:
    # Only a path of the console: never an address elsewhere (an open redirect).
    if target and target.startswith("/admin") and not target.startswith("//"):
        return target
    return "/admin/"


def _sign_in_page(
    request: Request, ctx: WebContext, *, error: str | None, email: str, next_: str, status: int
) -> HTMLResponse:
    token = form_token()
    notices = []
    if request.query_params.get("expired"):
        notices.append((look().texts[language(request)]["sign_in_expired"], "warn"))
    if request.query_params.get("signed_out"):
        notices.append((look().texts[language(request)]["signed_out"], ""))
    response = render(
        request, ctx, "sign_in.html", title_key="sign_in_title", me=None, status=status,
        error=error, email=email, next=next_, form_csrf=token, narrow=True, notices=notices,
    )  # fmt: skip
    response.set_cookie(
        FORM_COOKIE, token, httponly=True, samesite="strict", secure=secure(ctx), path="/admin"
    )
    return response


@router.get("/admin/sign-in", include_in_schema=False)
def sign_in_form(request: Request, ctx: Ctx, next: str | None = None) -> Response:
    if signed_in(request, ctx) is not None:
        return RedirectResponse(_safe_next(next), status_code=303)
    return _sign_in_page(request, ctx, error=None, email="", next_=_safe_next(next), status=200)


@router.post("/admin/sign-in", include_in_schema=False)
def sign_in(
    request: Request,
    ctx: Ctx,
    email: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/admin/",
) -> Response:
    t = look().texts[language(request)]
    expected = request.cookies.get(FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        return _sign_in_page(
            request, ctx, error=t["form_expired"], email=email, next_=_safe_next(next), status=400
        )
    result = accounts(ctx).sign_in(email, password, client(request, ctx))
    if not isinstance(result, SignedIn):
        status = 429 if result in ("locked", "busy") else 401
        return _sign_in_page(
            request, ctx, error=t[f"sign_in_{result}"], email=email, next_=_safe_next(next),
            status=status,
        )  # fmt: skip
    response = RedirectResponse(_safe_next(next), status_code=303)
    set_session_cookie(response, ctx, result.token)
    response.delete_cookie(FORM_COOKIE, path="/admin")
    return response


@router.post("/admin/sign-out", include_in_schema=False)
def sign_out(request: Request, ctx: Ctx, csrf: Annotated[str, Form()] = "") -> Response:
    me = signed_in(request, ctx)
    token = request.cookies.get(SESSION_COOKIE)
    if me is not None and token and csrf_ok(me, csrf):
        accounts(ctx).sign_out(token, client(request, ctx))
    elif me is not None:
        return RedirectResponse("/admin/", status_code=303)  # no token: nothing changes
    response = RedirectResponse("/admin/sign-in?signed_out=1", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/admin")
    return response


def _password_page(
    request: Request, ctx: WebContext, token: str, error: str | None, status: int
) -> HTMLResponse:
    t = look().texts[language(request)]
    owner = accounts(ctx).link_owner(token)
    if owner is None:
        return render(
            request, ctx, "message.html", title_key="password_title", me=None, status=410,
            paragraphs=[t["password_link"]], link=None, narrow=True,
        )  # fmt: skip
    form = form_token()
    response = render(
        request, ctx, "password.html", title_key="password_title", me=None, status=status,
        owner=owner, error=error, form_csrf=form, narrow=True,
    )  # fmt: skip
    response.set_cookie(
        FORM_COOKIE, form, httponly=True, samesite="strict", secure=secure(ctx), path="/admin"
    )
    return response


@router.get("/admin/password/{token}", include_in_schema=False)
def password_form(request: Request, ctx: Ctx, token: str) -> HTMLResponse:
    return _password_page(request, ctx, token, None, 200)


@router.post("/admin/password/{token}", include_in_schema=False)
def password_submit(
    request: Request,
    ctx: Ctx,
    token: str,
    password: Annotated[str, Form()] = "",
    repeated: Annotated[str, Form()] = "",
    csrf: Annotated[str, Form()] = "",
) -> HTMLResponse:
    t = look().texts[language(request)]
    expected = request.cookies.get(FORM_COOKIE, "")
    if not expected or not hmac.compare_digest(expected.encode(), csrf.encode()):
        return _password_page(request, ctx, token, t["form_expired"], 400)
    result = accounts(ctx).set_password(token, password, repeated, client(request, ctx))
    if isinstance(result, str):
        return _password_page(request, ctx, token, t[f"password_{result}"], 400)
    return render(
        request, ctx, "message.html", title_key="password_title", me=None,
        paragraphs=[t["password_saved"]],
        link={"url": "/admin/sign-in", "text": t["sign_in_title"]}, narrow=True,
    )  # fmt: skip
