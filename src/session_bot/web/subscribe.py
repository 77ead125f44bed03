"""Subscribe, confirm and unsubscribe pages (German and English) and the RFC 8058 one-click POST.

No GET changes state: link scanners in corporate mail systems open every link, so the confirm and
unsubscribe links open a page whose single button POSTs. How pages look is ``pages``'s; what
happens after the response (mails, a run) is ``subscribe_tasks``'s, the mails sent by the
``consent_outbox``.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Mapping
from typing import Any

from fastapi import APIRouter, BackgroundTasks, Request
from fastapi.responses import HTMLResponse

from session_bot.app import subscriptions as subs
from session_bot.web.client_address import client_address
from session_bot.web.deps import Ctx, WebContext, get_context
from session_bot.web.form_fields import VALIDATION_ERROR, openapi_body, openapi_query, read_form
from session_bot.web.pages import (
    LANGS,
    consent_version,
    invalid_page,
    message_page,
    page_language,
    render_page,
    slotted_message_page,
    texts,
)
from session_bot.web.public import private_feed_url
from session_bot.web.subscribe_tasks import (
    run_for_late_invitation,
    send_confirmation_mail,
    send_owner_notice,
)

log = logging.getLogger("session_bot.web_subscribe")

router = APIRouter()

_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{1,100}")
_HTML: dict[str, Any] = {"content": {"text/html": {}}}
_INVALID: dict[str, Any] = {
    "description": "Link not valid (forged, altered or replaced); nothing changed",
    **_HTML,
}
_TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _INVALID,
    410: {"description": "Confirmation link expired; nothing changed", **_HTML},
}


def _proof(ctx: WebContext, request: Request) -> subs.RequestProof:
    url = ctx.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return subs.RequestProof(
        ip=client_address(request, ctx.settings.trusted_proxies),
        user_agent=request.headers.get("user-agent"),
        url=url,
    )


def _token_ok(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def _own_feed(ctx: WebContext, subscriber_id: int | None) -> dict[str, str] | None:
    """A confirmed subscriber's private calendar feed (with the join links), as https and
    webcal; shown only to the holder of their confirm or unsubscribe link."""
    if subscriber_id is None:
        return None
    https = private_feed_url(ctx.settings.public_url, ctx.secret_key, subscriber_id)
    return {"https": https, "webcal": "webcal://" + https.split("://", 1)[1]}


# --- subscribe -------------------------------------------------------------------------------

# Read by ``read_form``, not as ``Form()`` parameters: FastAPI's reading of them cost about a
# sixth of a busy POST /subscribe's throughput (issue 18).
_SUBSCRIBE_FIELDS = ("email", "name", "language", "page_lang")


@router.get("/subscribe", response_class=HTMLResponse, summary="Subscribe form")
def subscribe_form(request: Request, ctx: Ctx, lang: str | None = None) -> HTMLResponse:
    page_lang = page_language(request, lang)
    return _subscribe_page(
        request, ctx, page_lang, {"email": "", "name": "", "language": page_lang}
    )


def _subscribe_page(
    request: Request,
    ctx: WebContext,
    lang: str,
    values: Mapping[str, str],
    errors: Mapping[str, str] | None = None,
    status: int = 200,
) -> HTMLResponse:
    return render_page(
        request,
        ctx,
        "subscribe.html",
        lang,
        title_key="subscribe_title",
        status=status,
        values=values,
        errors=dict(errors or {}),
        consent_text=texts(lang)["consent"],
    )


@router.post(
    "/subscribe",
    response_class=HTMLResponse,
    summary="Request a subscription (sends the confirmation mail)",
    responses={
        400: {"description": "Invalid address; the form again", **_HTML},
        429: {"description": "Too many requests from this client", **_HTML},
        **VALIDATION_ERROR,
    },
    openapi_extra={
        "requestBody": openapi_body(_SUBSCRIBE_FIELDS),
        "parameters": openapi_query(("lang",)),
    },
)
async def subscribe_submit(request: Request) -> HTMLResponse:
    # The context and ``lang`` taken here, not as parameters FastAPI resolves: its dependency
    # machinery cost ≈ 25 µs a request, ≈ 3 % of a busy POST /subscribe (issue 18).
    ctx = await get_context(request)
    lang = request.query_params.get("lang")
    form = await read_form(request, _SUBSCRIBE_FIELDS)
    email, name, language, page_lang = (form[f] for f in _SUBSCRIBE_FIELDS)
    # async: the page is made on the event loop and only the database's transaction goes to
    # the writer thread (it may wait for the write lock; it writes the requests that arrived
    # meanwhile with it); the mail goes to the outbox.
    ui = page_language(request, lang, page_lang)
    mail_lang = language if language in LANGS else ui
    values = {"email": email[:320], "name": name[:200], "language": mail_lang}
    t = texts(ui)
    if not email.strip():
        return _subscribe_page(request, ctx, ui, values, {"email": t["email_missing"]}, 400)
    try:
        prepared = subs.prepare_request(
            address=email,
            name=name,
            language=mail_lang,
            consent_version=consent_version(ui),
            proof=_proof(ctx, request),
            now=ctx.clock(),
        )
    except subs.InvalidAddress:
        return _subscribe_page(request, ctx, ui, values, {"email": t["email_invalid"]}, 400)
    outcome = await ctx.sign_ups().submit(prepared)
    if outcome.action == "client-limited":
        window = int(subs.RateLimits().client_window.total_seconds())
        return message_page(
            request,
            ctx,
            ui,
            "limited_title",
            "limited_body",
            status=429,
            extra_headers={"Retry-After": str(window)},
        )
    if outcome.action == "send-confirmation":
        ctx.mails().submit(
            f"confirmation mail for subscriber {outcome.subscriber_id}",
            functools.partial(send_confirmation_mail, ctx, outcome),
        )
    elif outcome.action == "notify-owner":
        ctx.mails().submit(
            f"re-submission notice for subscriber {outcome.subscriber_id}",
            functools.partial(send_owner_notice, ctx, outcome),
        )
    else:
        log.info("subscribe request for a known address: %s", outcome.action)
    # The same page whatever the address's state: the form reveals nobody's subscription.
    return slotted_message_page(
        request, ctx, ui, "sent_title", "sent_body", "sent_hint", slot="email", value=outcome.email
    )


# --- confirm ---------------------------------------------------------------------------------


def _confirm_state_page(
    request: Request, ctx: WebContext, state: subs.ConfirmState, lang: str | None
) -> HTMLResponse:
    if state.state == "invalid":
        return invalid_page()
    ui = page_language(request, lang, state.language)
    if state.state == "expired":
        return message_page(
            request,
            ctx,
            ui,
            "expired_title",
            "expired_body",
            status=410,
            link=(f"/subscribe?lang={ui}", "subscribe_again"),
        )
    if state.state == "confirmed":
        feed = _own_feed(ctx, state.subscriber_id)
        if state.just_now:
            keys = ["confirmed_body"] + (["confirmed_late"] if state.late_deliveries else [])
            return message_page(request, ctx, ui, "confirmed_title", *keys, feed=feed)
        return message_page(
            request, ctx, ui, "confirmed_title", "already_confirmed_body", feed=feed
        )
    return message_page(
        request,
        ctx,
        ui,
        "confirm_title",
        "confirm_body",
        button_key="confirm_button",
        fill={"email": state.email or ""},
    )


@router.get(
    "/confirm/{token}",
    response_class=HTMLResponse,
    summary="Confirmation page with one button (changes nothing)",
    responses=_TOKEN_RESPONSES,
)
def confirm_page(request: Request, ctx: Ctx, token: str, lang: str | None = None) -> HTMLResponse:
    if not _token_ok(token):
        return invalid_page()
    state = subs.inspect_confirm_token(ctx.store, ctx.secret_key, token, ctx.clock())
    return _confirm_state_page(request, ctx, state, lang)


@router.post(
    "/confirm/{token}",
    response_class=HTMLResponse,
    summary="Confirm the subscription (double opt-in)",
    responses=_TOKEN_RESPONSES,
)
def confirm_submit(
    request: Request, ctx: Ctx, background: BackgroundTasks, token: str, lang: str | None = None
) -> HTMLResponse:
    if not _token_ok(token):
        return invalid_page()
    state = subs.confirm(
        ctx.store,
        ctx.secret_key,
        token,
        proof=_proof(ctx, request),
        now=ctx.clock(),
        late_invitation=ctx.settings.late_invitations,
    )
    if state.late_deliveries:
        background.add_task(run_for_late_invitation, ctx)
    return _confirm_state_page(request, ctx, state, lang)


# --- unsubscribe -----------------------------------------------------------------------------


@router.get(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe page with one button (changes nothing)",
    responses={400: _INVALID},
)
def unsubscribe_page(
    request: Request, ctx: Ctx, token: str, lang: str | None = None
) -> HTMLResponse:
    sid = subs.read_unsubscribe_token(ctx.secret_key, token) if _token_ok(token) else None
    if sid is None:
        return invalid_page()
    row = ctx.store.subscribers.get_by_id(sid)
    ui = page_language(request, lang, row["language"] if row else None)
    if row is None or row["status"] in ("unsubscribed", "forgotten"):
        return message_page(request, ctx, ui, "unsubscribed_title", "already_unsubscribed_body")
    # The page every mail links to: where a subscriber finds her private feed again.
    feed = _own_feed(ctx, sid) if row["status"] == "confirmed" else None
    return message_page(
        request, ctx, ui, "unsubscribe_title", "unsubscribe_body",
        button_key="unsubscribe_button", feed=feed,
    )  # fmt: skip


@router.post(
    "/unsubscribe/{token}",
    response_class=HTMLResponse,
    summary="Unsubscribe: RFC 8058 one-click (body List-Unsubscribe=One-Click) or the page's button",
    responses={400: _INVALID},
)
def unsubscribe_submit(
    request: Request, ctx: Ctx, token: str, lang: str | None = None
) -> HTMLResponse:
    sid = subs.read_unsubscribe_token(ctx.secret_key, token) if _token_ok(token) else None
    if sid is None:
        return invalid_page()
    result = subs.unsubscribe(ctx.store, sid, ctx.clock())
    row = ctx.store.subscribers.get_by_id(sid)
    ui = page_language(request, lang, row["language"] if row else None)
    log.info("unsubscribe of subscriber %s: %s", sid, result)
    body = "unsubscribed_body" if result == "unsubscribed" else "already_unsubscribed_body"
    return message_page(request, ctx, ui, "unsubscribed_title", body)
