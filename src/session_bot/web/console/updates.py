"""Changes to announced sessions that wait for the organiser (/admin/updates): what changed
(before → after), the update or cancellation as recipients will see it, and three answers:
a test to herself, send to everyone (after a confirmation naming the number of recipients),
or no mail needed (not for a cancellation).

Sending stores her approval (``PendingDesk.send``) and asks for a run, which mails it through
the runner's own update or cancellation step; on a standby the leader answers the run request.
Each form names the change it was made for (its digest), so a plan edited meanwhile is not sent
or dismissed unseen.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from email.utils import make_msgid
from typing import Annotated, Any

from babel.dates import format_datetime
from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from session_bot import wiring
from session_bot.adapters.render.invitations import RenderedMailing
from session_bot.adapters.render.session_mail import render_session_mail
from session_bot.app.pending import NotPending
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import SessionBotError
from session_bot.core.languages import LANGUAGES
from session_bot.core.recipient import Recipient
from session_bot.core.review import PendingChange
from session_bot.web.console.base import (
    SESSION_COOKIE,
    client,
    csrf_ok,
    language,
    look,
    render,
    signed_in,
    to_sign_in,
    who,
)
from session_bot.web.console.sessions import PREVIEW_CSP, expired_form
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()
PATH = "/admin/updates"


@dataclass(frozen=True)
class Difference:
    """One changed field, as subscribers were told it and as it will be told."""

    field: str  # time | topic | speakers
    before: list[str]
    after: list[str]


@dataclass(frozen=True)
class ChangeView:
    change: PendingChange
    differences: list[Difference]
    mails: dict[str, RenderedMailing]  # per language with subscribers
    problem: str | None  # why the mail cannot be rendered (then it cannot be sent either)

    @property
    def date(self) -> str:
        return self.change.occurrence.date.isoformat()


def mail_languages(ctx: WebContext) -> list[str]:
    """The languages confirmed subscribers read (the series' own when there are none yet)."""
    found: set[str] = set()
    for row in ctx.store.subscribers.iter(["confirmed"], batch=2000):
        found.add(str(row.get("language")))
        if found >= set(LANGUAGES):
            break  # every language seen: the rest of a long list changes nothing
    shown: list[str] = [lang for lang in LANGUAGES if lang in found]
    return shown or [ctx.plan().series[0].language]


def pending_mail(
    ctx: WebContext, change: PendingChange, lang: str, *, test_send: bool = False
) -> RenderedMailing:
    """The update or cancellation exactly as the next run sends it (fields, sequence + 1)."""
    occ = change.occurrence
    renderer = wiring.renderer_factory(ctx.settings, ctx.store)(occ.series)
    mail, _ = render_session_mail(
        renderer, ctx.store.sessions, occ, change.kind, ctx.clock(), language=lang,
        test_send=test_send, fields=list(change.fields),
    )  # fmt: skip
    return mail


def differences(change: PendingChange, lang: str) -> list[Difference]:
    occ = change.occurrence
    before, after = change.before, occ.announced_fingerprint()
    zone = occ.series.zone
    fields = change.fields if change.kind == "update" else ("time", "topic")
    out = []
    for name in fields:
        if name == "time":
            out.append(Difference(name, [_when(before, zone, lang)], [_when(after, zone, lang)]))
        elif name == "topic":
            out.append(Difference(name, [str(before.get("topic", ""))], [str(after["topic"])]))
        elif name == "speakers":
            out.append(
                Difference(name, _speakers(before.get("speakers")), _speakers(after["speakers"]))
            )
    return out


def _when(fingerprint: dict[str, Any], zone: Any, lang: str) -> str:
    raw = fingerprint.get("start")
    if not raw:
        return ""
    start = dt.datetime.fromisoformat(str(raw)).astimezone(zone)
    end = (start + dt.timedelta(minutes=int(fingerprint.get("duration") or 0))).astimezone(zone)
    if lang == "de":
        day = format_datetime(start, "EEEE, d. MMMM yyyy, HH:mm", locale=lang)
        return f"{day}–{end:%H:%M} Uhr"
    return f"{format_datetime(start, 'EEEE, d MMMM yyyy, HH:mm', locale=lang)}–{end:%H:%M}"


def _speakers(raw: Any) -> list[str]:
    out = []
    for s in raw or []:
        extra = ", ".join(v for v in (s.get("role", ""), s.get("organisation", "")) if v)
        out.append(f"{s.get('name', '')} – {extra}" if extra else str(s.get("name", "")))
    return out


def change_view(ctx: WebContext, change: PendingChange, lang: str, langs: list[str]) -> ChangeView:
    mails: dict[str, RenderedMailing] = {}
    problem = None
    try:
        for mail_lang in langs:
            mails[mail_lang] = pending_mail(ctx, change, mail_lang)
    except SessionBotError as exc:
        problem = str(exc)
    return ChangeView(change, differences(change, lang), mails, problem)


def change_on(ctx: WebContext, date: str) -> PendingChange | None:
    """The change waiting for the session on ``date`` (YYYY-MM-DD), if any."""
    for change in ctx.pending().pending():
        if change.occurrence.date.isoformat() == date:
            return change
    return None


def _page(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    *,
    notices: list[tuple[str, str]] | None = None,
    result: dict[str, Any] | None = None,
    status: int = 200,
) -> HTMLResponse:
    lang = language(request)
    langs = mail_languages(ctx)
    views = [change_view(ctx, c, lang, langs) for c in ctx.pending().pending()]
    return render(
        request, ctx, "updates.html", title_key="upd_title", me=me, current=PATH,
        notices=notices, views=views, result=result, status=status,
        standby=ctx.role != "leader",
    )  # fmt: skip


def _nothing_waiting(request: Request, ctx: WebContext, me: ConsoleSession) -> HTMLResponse:
    t = look().texts[language(request)]
    return render(
        request, ctx, "message.html", title_key="upd_missing_title", me=me, status=404,
        paragraphs=[t["upd_missing"]], link={"url": PATH, "text": t["upd_back"]},
    )  # fmt: skip


@router.get(PATH, include_in_schema=False)
def updates_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    t = look().texts[language(request)]
    notices = []
    if request.query_params.get("test") == "sent":
        notices.append((t["test_sent"].replace("{email}", me.organiser.email), ""))
    if request.query_params.get("dismissed"):
        notices.append((t["upd_dismissed"], ""))
    return _page(request, ctx, me, notices=notices)


@router.get(PATH + "/{date}/preview/{lang}.{fmt}", include_in_schema=False)
def update_preview(request: Request, ctx: Ctx, date: str, lang: str, fmt: str) -> Response:
    """The pending mail's HTML (framed by the page; no script can run), text or calendar."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    change = change_on(ctx, date)
    if change is None or lang not in LANGUAGES or fmt not in ("html", "txt", "ics"):
        return _nothing_waiting(request, ctx, me)
    try:
        mail = pending_mail(ctx, change, lang)
    except SessionBotError as exc:
        return Response(str(exc), 422, media_type="text/plain; charset=utf-8")
    safe = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if fmt == "html":
        framed = {"Content-Security-Policy": PREVIEW_CSP, "Referrer-Policy": "no-referrer"}
        return HTMLResponse(mail.html, headers=safe | framed)
    if fmt == "txt" or mail.ics is None:
        return Response(mail.text, media_type="text/plain; charset=utf-8", headers=safe)
    name = f"{change.occurrence.series.id}-{date}-{change.kind}-{lang}.ics"
    attachment = {"Content-Disposition": f'attachment; filename="{name}"'}
    return Response(mail.ics, media_type="text/calendar; charset=utf-8", headers=safe | attachment)


@router.get(PATH + "/{date}/send", include_in_schema=False)
def confirm_page(request: Request, ctx: Ctx, date: str) -> Response:
    """The confirmation step: what goes out, to how many."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    change = change_on(ctx, date)
    if change is None:
        return _nothing_waiting(request, ctx, me)
    view = ChangeView(change, differences(change, language(request)), {}, None)
    return render(
        request, ctx, "updates_confirm.html", title_key="upd_confirm_title", me=me, current=PATH,
        view=view, recipients=ctx.store.subscribers.count("confirmed"),
    )  # fmt: skip


def _changed_meanwhile(request: Request, ctx: WebContext, me: ConsoleSession) -> HTMLResponse:
    t = look().texts[language(request)]
    return _page(request, ctx, me, notices=[(t["upd_changed"], "bad")], status=409)


@router.post(PATH + "/{date}/send", include_in_schema=False)
def send_change(
    request: Request,
    ctx: Ctx,
    date: str,
    csrf: Annotated[str, Form()] = "",
    change: Annotated[str, Form()] = "",
) -> Response:
    """Approve the change and ask for the run that mails it."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    if not csrf_ok(me, csrf):
        return expired_form(request, ctx, me, PATH)
    found = change_on(ctx, date)
    if found is None:
        return _nothing_waiting(request, ctx, me)
    if found.digest != change:
        return _changed_meanwhile(request, ctx, me)
    ctx.pending().send(found.key, who(request, ctx, me))
    if ctx.trigger_run is None:
        result: dict[str, Any] = {"later": True}
    else:
        try:
            result = ctx.trigger_run("updates-send")
        except SessionBotError as exc:  # LockBusy: a run holds the lock; the next one mails it
            result = {"ok": False, "error": str(exc)}
    result["kind"] = found.kind
    return _page(request, ctx, me, result=result)


@router.post(PATH + "/{date}/dismiss", include_in_schema=False)
def dismiss_change(
    request: Request,
    ctx: Ctx,
    date: str,
    csrf: Annotated[str, Form()] = "",
    change: Annotated[str, Form()] = "",
) -> Response:
    """Record the change as told, without a mail."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    if not csrf_ok(me, csrf):
        return expired_form(request, ctx, me, PATH)
    found = change_on(ctx, date)
    if found is None:
        return _nothing_waiting(request, ctx, me)
    if found.digest != change:
        return _changed_meanwhile(request, ctx, me)
    try:
        ctx.pending().dismiss(found.key, who(request, ctx, me))
    except NotPending as exc:
        return _page(request, ctx, me, notices=[(str(exc), "bad")], status=409)
    return RedirectResponse(f"{PATH}?dismissed={date}&lang={language(request)}", status_code=303)


@router.post(PATH + "/{date}/test", include_in_schema=False)
def test_change(
    request: Request,
    ctx: Ctx,
    date: str,
    csrf: Annotated[str, Form()] = "",
    mail_lang: Annotated[str, Form()] = "",
) -> Response:
    """The pending mail as a marked test to the signed-in organiser's own address."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    if not csrf_ok(me, csrf):
        return expired_form(request, ctx, me, PATH)
    found = change_on(ctx, date)
    if found is None:
        return _nothing_waiting(request, ctx, me)
    lang = mail_lang if mail_lang in LANGUAGES else found.occurrence.series.language
    now = ctx.clock()
    failure = _send_test(ctx, me, found, lang, now)
    outcome = f"not sent: {failure}" if failure else "sent"
    detail = f"{found.kind} {found.key} ({lang}) to {me.organiser.email}: {outcome}"
    ctx.store.audit.record(now, me.organiser.email, "test-mail", detail, client(request, ctx))
    if failure is None:
        return RedirectResponse(f"{PATH}?test=sent&lang={language(request)}", status_code=303)
    t = look().texts[language(request)]
    text = t["test_failed"].replace("{email}", me.organiser.email).replace("{why}", failure)
    return _page(request, ctx, me, notices=[(text, "bad")])


def _send_test(
    ctx: WebContext, me: ConsoleSession, change: PendingChange, lang: str, now: dt.datetime
) -> str | None:
    """Send the test; None when the server took it, else why not (its answer)."""
    to = me.organiser.email
    try:
        mail = pending_mail(ctx, change, lang, test_send=True)
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
