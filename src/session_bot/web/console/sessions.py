"""One session's page: the session in plain words, its Zoom meeting, its mail as recipients see
it (HTML framed from a script-free preview, text, .ics) and its mailings; a test mail to the
signed-in organiser herself."""

from __future__ import annotations

import datetime as dt
import re
from email.utils import make_msgid
from typing import Annotated

from babel.dates import format_date
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from session_bot import wiring
from session_bot.adapters.render.invitations import KINDS, RenderedMailing
from session_bot.adapters.render.session_mail import render_session_mail, stored_meeting
from session_bot.app.console.overview import SessionView, session_view
from session_bot.app.runner import state_from_store
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.languages import LANGUAGES
from session_bot.core.plan import Occurrence, find_occurrence
from session_bot.core.recipient import Recipient
from session_bot.core.timeline import SessionState
from session_bot.web.console.base import (
    SESSION_COOKIE,
    client,
    csrf_ok,
    language,
    look,
    render,
    signed_in,
    to_sign_in,
)
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()

_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
# The mail inside the console's frame: its own styles and images, never a script, a form or a
# plugin; ``sandbox`` gives it an origin of its own, so it cannot reach the console either.
PREVIEW_CSP = (
    "default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; font-src data:; "
    "form-action 'none'; base-uri 'none'; frame-ancestors 'self'; sandbox"
)


def occurrence_on(ctx: WebContext, date: str) -> Occurrence | None:
    """The plan's session on ``date`` (YYYY-MM-DD); None for no such date or session."""
    if not _DATE.match(date):
        return None
    try:
        return find_occurrence(ctx.plan(), dt.date.fromisoformat(date))
    except (ValueError, PlanError):
        return None


def preview_kinds(view: SessionView) -> list[str]:
    """The mails this session has or may have: none for a skipped one, the cancellation for a
    cancelled one; otherwise the invitation, the reminder (if the series sends one) and, once
    people were invited, the update."""
    occ = view.occurrence
    if view.state == "skipped":
        return []
    if view.state == "cancelled":
        return ["cancellation"]
    kinds = ["invitation"]
    if occ.reminder_at is not None:
        kinds.append("reminder")
    if view.state in ("invited", "reminded"):
        kinds.append("update")
    return kinds


def test_refusal(occ: Occurrence, now: dt.datetime) -> str | None:
    """Why no test invitation can go out for this session (a text key), as `send --to` refuses."""
    if occ.skip_reason:
        return "test_skipped"
    if occ.cancelled:
        return "test_cancelled"
    if not occ.has_topic:
        return "test_no_topic"
    if now >= occ.start:
        return "test_started"
    return None


def _render_mail(
    ctx: WebContext, occ: Occurrence, kind: str, lang: str, *, test_send: bool = False
) -> RenderedMailing:
    renderer = wiring.renderer_factory(ctx.settings, ctx.store)(occ.series)
    mail, _ = render_session_mail(
        renderer, ctx.store.sessions, occ, kind, ctx.clock(), language=lang,
        test_send=test_send, fields=_pending_fields(ctx, occ, kind),
    )  # fmt: skip
    return mail


def _pending_fields(ctx: WebContext, occ: Occurrence, kind: str) -> list[str] | None:
    """A change of this session waiting for review: its update or cancellation as it will go
    out, naming what changed (None: the generic mail of that kind)."""
    if kind not in ("update", "cancellation"):
        return None
    try:
        change = ctx.pending().find(occ.key)
    except SessionBotError:  # nothing waiting (NotPending), or the plan is unusable
        return None
    return list(change.fields) if change.kind == kind else None


def _not_found(request: Request, ctx: WebContext, me: ConsoleSession, date: str) -> HTMLResponse:
    t = look().texts[language(request)]
    return render(
        request, ctx, "message.html", title_key="session_missing_title", me=me, status=404,
        paragraphs=[t["session_missing"].replace("{date}", date)],
        link={"url": "/admin/", "text": t["back_overview"]},
    )  # fmt: skip


def expired_form(request: Request, ctx: WebContext, me: ConsoleSession, back: str) -> HTMLResponse:
    """The answer to a form without a valid token: nothing changed, 400."""
    t = look().texts[language(request)]
    return render(
        request, ctx, "message.html", title_key="expired_title", me=me, status=400,
        paragraphs=[t["form_expired"]], link={"url": back, "text": t["back"]},
    )  # fmt: skip


def _session_page(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    occ: Occurrence,
    notices: list[tuple[str, str]],
) -> HTMLResponse:
    now = ctx.clock()
    state = state_from_store(ctx.store).get(occ.key, SessionState())
    view = session_view(ctx.store, occ, state, now)
    kinds = preview_kinds(view)
    asked = request.query_params.get("kind", "")
    kind = asked if asked in kinds else (kinds[0] if kinds else "")
    asked_lang = request.query_params.get("mail_lang", "")
    mail_lang = asked_lang if asked_lang in LANGUAGES else occ.series.language
    mail: RenderedMailing | None = None
    problem: str | None = None
    if kind:
        try:
            mail = _render_mail(ctx, occ, kind, mail_lang)
        except SessionBotError as exc:
            problem = str(exc)
    base = f"/admin/sessions/{occ.date.isoformat()}"
    meeting = stored_meeting(ctx.store.sessions, occ)
    return render(
        request, ctx, "session.html", title_key="session_title", me=me, notices=notices,
        title=_title(request, occ), view=view, occ=occ, meeting=meeting,
        kinds=kinds, kind=kind, mail_lang=mail_lang, languages=LANGUAGES, mail=mail,
        problem=problem, base=base, preview=f"{base}/preview/{kind}/{mail_lang}",
        refusal=test_refusal(occ, now), now=now,
    )  # fmt: skip


def _title(request: Request, occ: Occurrence) -> str:
    lang = language(request)
    pattern = "EEEE, d. MMMM yyyy" if lang == "de" else "EEEE, d MMMM yyyy"
    shown = format_date(occ.date, pattern, locale=lang)
    return look().texts[lang]["session_heading"].replace("{date}", shown)


@router.get("/admin/sessions/{date}", include_in_schema=False)
def session_page(request: Request, ctx: Ctx, date: str) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    occ = occurrence_on(ctx, date)
    if occ is None:
        return _not_found(request, ctx, me, date)
    t = look().texts[language(request)]
    notices = []
    if request.query_params.get("test") == "sent":
        notices.append((t["test_sent"].replace("{email}", me.organiser.email), ""))
    saved = request.query_params.get("saved", "")
    if saved.isdigit():
        notices.append((t["pe_saved"].replace("{n}", saved), ""))
    return _session_page(request, ctx, me, occ, notices)


@router.get("/admin/sessions/{date}/preview/{kind}/{lang}.{fmt}", include_in_schema=False)
def session_preview(
    request: Request, ctx: Ctx, date: str, kind: str, lang: str, fmt: str
) -> Response:
    """The mail's HTML (framed by the session page, no script can run), text or calendar."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    occ = occurrence_on(ctx, date)
    if (
        occ is None
        or kind not in KINDS
        or lang not in LANGUAGES
        or fmt not in ("html", "txt", "ics")
    ):
        return _not_found(request, ctx, me, date)
    try:
        mail = _render_mail(ctx, occ, kind, lang)
    except SessionBotError as exc:
        return Response(str(exc), 422, media_type="text/plain; charset=utf-8")
    safe = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if fmt == "html":
        return HTMLResponse(
            mail.html,
            headers=safe
            | {"Content-Security-Policy": PREVIEW_CSP, "Referrer-Policy": "no-referrer"},
        )
    if fmt == "txt":
        return Response(mail.text, media_type="text/plain; charset=utf-8", headers=safe)
    if mail.ics is None:
        return _not_found(request, ctx, me, date)
    name = f"{occ.series.id}-{occ.date.isoformat()}-{kind}-{lang}.ics"
    return Response(
        mail.ics,
        media_type="text/calendar; charset=utf-8",
        headers=safe | {"Content-Disposition": f'attachment; filename="{name}"'},
    )


@router.post("/admin/sessions/{date}/test", include_in_schema=False)
def send_test(
    request: Request,
    ctx: Ctx,
    date: str,
    csrf: Annotated[str, Form()] = "",
    mail_lang: Annotated[str, Form()] = "",
) -> Response:
    """The invitation as a test mail to the signed-in organiser's own address."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    occ = occurrence_on(ctx, date)
    if occ is None:
        return _not_found(request, ctx, me, date)
    base = f"/admin/sessions/{occ.date.isoformat()}"
    if not csrf_ok(me, csrf):
        return expired_form(request, ctx, me, base)
    t = look().texts[language(request)]
    lang = mail_lang if mail_lang in LANGUAGES else occ.series.language
    now = ctx.clock()
    refusal = test_refusal(occ, now)
    failure = t[refusal] if refusal else _send_test(ctx, me, occ, lang, now)
    outcome = f"not sent: {failure}" if failure else "sent"
    detail = f"invitation {occ.key} ({lang}) to {me.organiser.email}: {outcome}"
    ctx.store.audit.record(now, me.organiser.email, "test-mail", detail, client(request, ctx))
    if failure is None:
        return RedirectResponse(f"{base}?test=sent&mail_lang={lang}", status_code=303)
    text = t["test_failed"].replace("{email}", me.organiser.email).replace("{why}", failure)
    return _session_page(request, ctx, me, occ, [(text, "bad")])


def _send_test(
    ctx: WebContext, me: ConsoleSession, occ: Occurrence, lang: str, now: dt.datetime
) -> str | None:
    """Send the test invitation; None when the server took it, else why not (its answer)."""
    to = me.organiser.email
    try:
        mail = _render_mail(ctx, occ, "invitation", lang, test_send=True)
        message = mail.personalise(
            Recipient(email=to, name=me.organiser.name, language=lang),
            message_id=make_msgid("test", to.rpartition("@")[2]),
            date=now,
        )
        transport = ctx.transport()
        try:
            answer = transport.send(wiring.envelope_sender(ctx.settings, ctx.plan()), to, message)
        finally:
            transport.close()
    except SessionBotError as exc:
        return str(exc)
    if answer.outcome != "sent":
        return f"{answer.code or ''} {answer.response}".strip() or answer.outcome
    return None
