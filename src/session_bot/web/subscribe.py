"""Subscribe, confirm and unsubscribe pages (German and English) and the RFC 8058 one-click POST.

No GET changes state: link scanners in corporate mail systems open every link, so the confirm and
unsubscribe links open a page whose single button POSTs. Pages use no external assets; the one
stylesheet is inlined and allowed by its hash in the Content-Security-Policy.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any

import jinja2
import yaml
from fastapi import APIRouter, BackgroundTasks, Form, Request
from fastapi.responses import HTMLResponse

from session_bot.adapters.render.invitations import MailConfig, Renderer, default_templates_dir
from session_bot.app import subscriptions as subs
from session_bot.core.errors import SessionBotError
from session_bot.web.deps import Ctx, WebContext

log = logging.getLogger(__name__)

router = APIRouter()

LANGS = ("de", "en")
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{1,100}")
_HTML: dict[str, Any] = {"content": {"text/html": {}}}
_INVALID: dict[str, Any] = {
    "description": "Link not valid (forged, altered or replaced); nothing changed",
    **_HTML,
}


# --- page rendering --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Pages:
    env: jinja2.Environment
    texts: Mapping[str, Mapping[str, str]]
    css: str
    csp: str
    consent_versions: Mapping[str, str]


@functools.cache
def _pages() -> _Pages:
    folder = default_templates_dir() / "web"
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    texts: dict[str, dict[str, str]] = yaml.safe_load((folder / "texts.yaml").read_text("utf-8"))
    missing = set(texts["de"]) ^ set(texts["en"])
    if missing:
        raise SessionBotError(
            f"{folder / 'texts.yaml'}: keys {sorted(missing)} exist in one language only; "
            "give every text in de and en"
        )
    css = (folder / "style.css").read_text("utf-8")
    digest = base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()
    csp = (
        f"default-src 'none'; style-src 'sha256-{digest}'; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    versions = {
        lang: f"{lang}-{hashlib.sha256(' '.join(t['consent'].split()).encode()).hexdigest()[:12]}"
        for lang, t in texts.items()
    }
    return _Pages(env, texts, css, csp, versions)


def consent_version(lang: str) -> str:
    """The version of the consent text shown in ``lang`` (changes whenever its wording does)."""
    return _pages().consent_versions[lang]


def _headers(pages: _Pages, lang: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": pages.csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # Token URLs must not leak to anywhere through a Referer.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Language": lang,
    }


def _render(
    request: Request,
    ctx: WebContext,
    template: str,
    lang: str,
    *,
    title_key: str,
    status: int = 200,
    extra_headers: Mapping[str, str] | None = None,
    **values: Any,
) -> HTMLResponse:
    pages = _pages()
    t = pages.texts[lang]
    other = "en" if lang == "de" else "de"
    html = pages.env.get_template(template).render(
        lang=lang,
        t=t,
        css=pages.css,
        title=t[title_key],
        series_title=_series_title(ctx),
        other_lang=other,
        other_lang_url=f"{request.url.path}?lang={other}",
        action=f"{request.url.path}?lang={lang}",
        **values,
    )
    return HTMLResponse(html, status, headers={**_headers(pages, lang), **(extra_headers or {})})


def _message(
    request: Request,
    ctx: WebContext,
    lang: str,
    title_key: str,
    *paragraph_keys: str,
    status: int = 200,
    button_key: str | None = None,
    link: tuple[str, str] | None = None,
    fill: Mapping[str, str] | None = None,
    extra_headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    t = _pages().texts[lang]
    fill = {"title": _series_title(ctx), **(fill or {})}
    paragraphs = []
    for key in paragraph_keys:
        text = t[key]
        for name, value in fill.items():
            text = text.replace("{" + name + "}", value)
        paragraphs.append(text)
    return _render(
        request,
        ctx,
        "message.html",
        lang,
        title_key=title_key,
        status=status,
        extra_headers=extra_headers,
        paragraphs=paragraphs,
        button=t[button_key] if button_key else None,
        link={"url": link[0], "text": t[link[1]]} if link else None,
    )


def _invalid(ctx: WebContext) -> HTMLResponse:
    pages = _pages()
    html = pages.env.get_template("invalid.html").render(css=pages.css)
    return HTMLResponse(html, 400, headers=_headers(pages, "de"))


def _series_title(ctx: WebContext) -> str:
    try:
        return ctx.plan().series[0].title
    except (SessionBotError, IndexError):
        return "session-bot"


def _lang(request: Request, requested: str | None, preferred: str | None = None) -> str:
    """?lang= first, then the subscriber's language, then Accept-Language, then German."""
    if requested in LANGS:
        return requested
    if preferred in LANGS:
        return preferred
    best, best_q = "de", -1.0
    for part in request.headers.get("accept-language", "").split(","):
        tag, _, params = part.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        if primary not in LANGS:
            continue
        q = 1.0
        m = re.search(r"q\s*=\s*([0-9.]+)", params)
        if m:
            try:
                q = float(m.group(1))
            except ValueError:
                q = 0.0
        if q > best_q:
            best, best_q = primary, q
    return best


def _proof(ctx: WebContext, request: Request) -> subs.RequestProof:
    url = ctx.settings.public_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    return subs.RequestProof(
        ip=request.client.host if request.client else None,
        user_agent=request.headers.get("user-agent"),
        url=url,
    )


# --- mail (sent after the response, so timing reveals nothing about the address) -------------


@functools.lru_cache(maxsize=8)
def _renderer(config: MailConfig) -> Renderer:
    return Renderer(config)


def _mail_confirmation(ctx: WebContext, outcome: subs.SubscribeOutcome) -> None:
    from session_bot import wiring

    try:
        plan = ctx.plan()
        series = plan.series[0]
        config = wiring.mail_config(ctx.settings, series)
        now = ctx.clock()
        transport = ctx.transport()
        try:
            result = subs.send_confirmation(
                renderer=_renderer(config),
                transport=transport,
                sender=wiring.envelope_sender(ctx.settings, plan),
                to=outcome.email,
                name=outcome.name,
                language=outcome.language,
                confirm_url=f"{config.public_url}/confirm/{outcome.confirm_token}",
                series_title=series.title,
                message_id=f"<confirm.{outcome.subscriber_id}.{now:%Y%m%d%H%M%S%f}@"
                f"{config.message_id_domain}>",
                now=now,
            )
        finally:
            transport.close()
    except SessionBotError as exc:
        log.error("confirmation mail for subscriber %s not sent: %s", outcome.subscriber_id, exc)
        return
    if result.outcome != "sent":
        log.warning(
            "confirmation mail for subscriber %s not accepted: %s %s",
            outcome.subscriber_id,
            result.code,
            result.response,
        )


def _mail_owner_notice(ctx: WebContext, outcome: subs.SubscribeOutcome) -> None:
    from session_bot import wiring

    assert outcome.subscriber_id is not None
    try:
        plan = ctx.plan()
        series = plan.series[0]
        config = wiring.mail_config(ctx.settings, series)
        now = ctx.clock()
        url, _ = wiring.unsubscribe_links(
            ctx.settings, ctx.secret_key, outcome.subscriber_id, config.from_email
        )
        message = subs.owner_notice_message(
            from_name=config.from_name,
            from_email=config.from_email,
            to=outcome.email,
            language=outcome.language,
            series_title=series.title,
            unsubscribe_url=url,
            message_id=f"<notice.{outcome.subscriber_id}.{now:%Y%m%d%H%M%S%f}@"
            f"{config.message_id_domain}>",
            now=now,
        )
        transport = ctx.transport()
        try:
            transport.send(wiring.envelope_sender(ctx.settings, plan), outcome.email, message)
        finally:
            transport.close()
    except SessionBotError as exc:
        log.error("re-submission notice for subscriber %s not sent: %s", outcome.subscriber_id, exc)


def _trigger_run(ctx: WebContext) -> None:
    if ctx.trigger_run is None:
        return
    try:
        ctx.trigger_run("confirm")
    except SessionBotError as exc:
        # The scheduled run picks the late invitation up; nothing is lost.
        log.warning("run after a confirmation did not happen now: %s", exc)


# --- routes ----------------------------------------------------------------------------------


@router.get("/subscribe", response_class=HTMLResponse, summary="Subscribe form")
def subscribe_form(request: Request, ctx: Ctx, lang: str | None = None) -> HTMLResponse:
    page_lang = _lang(request, lang)
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
    return _render(
        request,
        ctx,
        "subscribe.html",
        lang,
        title_key="subscribe_title",
        status=status,
        values=values,
        errors=dict(errors or {}),
        consent_text=_pages().texts[lang]["consent"],
    )


@router.post(
    "/subscribe",
    response_class=HTMLResponse,
    summary="Request a subscription (sends the confirmation mail)",
    responses={
        400: {"description": "Invalid address; the form again", **_HTML},
        429: {"description": "Too many requests from this client", **_HTML},
    },
)
def subscribe_submit(
    request: Request,
    ctx: Ctx,
    background: BackgroundTasks,
    email: Annotated[str, Form()] = "",
    name: Annotated[str, Form()] = "",
    language: Annotated[str, Form()] = "",
    page_lang: Annotated[str, Form()] = "",
    lang: str | None = None,
) -> HTMLResponse:
    ui = _lang(request, lang, page_lang)
    mail_lang = language if language in LANGS else ui
    values = {"email": email[:320], "name": name[:200], "language": mail_lang}
    t = _pages().texts[ui]
    if not email.strip():
        return _subscribe_page(request, ctx, ui, values, {"email": t["email_missing"]}, 400)
    try:
        outcome = subs.request_subscription(
            ctx.store,
            ctx.secret_key,
            address=email,
            name=name,
            language=mail_lang,
            consent_version=consent_version(ui),
            proof=_proof(ctx, request),
            now=ctx.clock(),
        )
    except subs.InvalidAddress:
        return _subscribe_page(request, ctx, ui, values, {"email": t["email_invalid"]}, 400)
    if outcome.action == "client-limited":
        window = int(subs.RateLimits().client_window.total_seconds())
        return _message(
            request,
            ctx,
            ui,
            "limited_title",
            "limited_body",
            status=429,
            extra_headers={"Retry-After": str(window)},
        )
    if outcome.action == "send-confirmation":
        background.add_task(_mail_confirmation, ctx, outcome)
    elif outcome.action == "notify-owner":
        background.add_task(_mail_owner_notice, ctx, outcome)
    else:
        log.info("subscribe request for a known address: %s", outcome.action)
    # The same page whatever the address's state: the form reveals nobody's subscription.
    return _message(
        request,
        ctx,
        ui,
        "sent_title",
        "sent_body",
        "sent_hint",
        fill={"email": outcome.email},
    )


def _token_ok(token: str) -> bool:
    return _TOKEN.fullmatch(token) is not None


def _confirm_state_page(
    request: Request, ctx: WebContext, state: subs.ConfirmState, lang: str | None
) -> HTMLResponse:
    if state.state == "invalid":
        return _invalid(ctx)
    ui = _lang(request, lang, state.language)
    if state.state == "expired":
        return _message(
            request,
            ctx,
            ui,
            "expired_title",
            "expired_body",
            status=410,
            link=(f"/subscribe?lang={ui}", "subscribe_again"),
        )
    if state.state == "confirmed":
        if state.just_now:
            keys = ["confirmed_body"] + (["confirmed_late"] if state.late_deliveries else [])
            return _message(request, ctx, ui, "confirmed_title", *keys)
        return _message(request, ctx, ui, "confirmed_title", "already_confirmed_body")
    return _message(
        request,
        ctx,
        ui,
        "confirm_title",
        "confirm_body",
        button_key="confirm_button",
        fill={"email": state.email or ""},
    )


_TOKEN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: _INVALID,
    410: {"description": "Confirmation link expired; nothing changed", **_HTML},
}


@router.get(
    "/confirm/{token}",
    response_class=HTMLResponse,
    summary="Confirmation page with one button (changes nothing)",
    responses=_TOKEN_RESPONSES,
)
def confirm_page(request: Request, ctx: Ctx, token: str, lang: str | None = None) -> HTMLResponse:
    if not _token_ok(token):
        return _invalid(ctx)
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
        return _invalid(ctx)
    state = subs.confirm(
        ctx.store,
        ctx.secret_key,
        token,
        proof=_proof(ctx, request),
        now=ctx.clock(),
        late_invitation=ctx.settings.late_invitations,
    )
    if state.late_deliveries:
        background.add_task(_trigger_run, ctx)
    return _confirm_state_page(request, ctx, state, lang)


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
        return _invalid(ctx)
    row = ctx.store.subscribers.get_by_id(sid)
    ui = _lang(request, lang, row["language"] if row else None)
    if row is None or row["status"] in ("unsubscribed", "forgotten"):
        return _message(request, ctx, ui, "unsubscribed_title", "already_unsubscribed_body")
    return _message(
        request, ctx, ui, "unsubscribe_title", "unsubscribe_body", button_key="unsubscribe_button"
    )


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
        return _invalid(ctx)
    result = subs.unsubscribe(ctx.store, sid, ctx.clock())
    row = ctx.store.subscribers.get_by_id(sid)
    ui = _lang(request, lang, row["language"] if row else None)
    log.info("unsubscribe of subscriber %s: %s", sid, result)
    body = "unsubscribed_body" if result == "unsubscribed" else "already_unsubscribed_body"
    return _message(request, ctx, ui, "unsubscribed_title", body)
