"""Announcements (issue 17): the organiser writes a one-off mail to the whole list — subject and
text in German, optionally in English —, sees it as recipients will, sends it to herself as a
test, and sends it now or at a set time after a confirmation that names how many people get it.

The draft is kept per organiser in ``kv`` (a week), so the preview frame can load it; what goes
out is what was previewed (the confirmation carries the draft's digest). A follow-up after a
session starts from that session's title, topic and materials (``?session=YYYY-MM-DD``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from email.utils import make_msgid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from session_bot import wiring
from session_bot.adapters.render.announcement import AnnouncementRenderer
from session_bot.app import announcements
from session_bot.app.announcements import Announcement
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import SessionBotError
from session_bot.core.languages import LANGUAGES
from session_bot.core.plan import Occurrence, Series, occurrences
from session_bot.core.recipient import Recipient
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
from session_bot.web.console.sessions import PREVIEW_CSP, expired_form, occurrence_on
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()
PATH = "/admin/announcements"
DRAFT_DAYS = 7


def _series(ctx: WebContext) -> Series:
    return ctx.plan().series[0]


def _key(me: ConsoleSession) -> str:
    return f"announcement.draft:{me.organiser.id}"


def _draft(ctx: WebContext, me: ConsoleSession) -> Announcement | None:
    raw = ctx.store.kv.get(_key(me), ctx.clock())
    return Announcement.from_details(json.loads(raw)) if raw else None


def _digest(a: Announcement) -> str:
    return hashlib.sha256(json.dumps(a.to_details(), sort_keys=True).encode()).hexdigest()[:32]


def _from_form(ctx: WebContext, me: ConsoleSession, fields: dict[str, str]) -> Announcement:
    return Announcement(
        series=_series(ctx).id,
        subjects={lang: fields.get(f"subject_{lang}", "").strip() for lang in LANGUAGES},
        texts={lang: fields.get(f"text_{lang}", "").strip() for lang in LANGUAGES},
        by=me.organiser.email,
        about=fields.get("about") or None,
    )


def _follow_up(occ: Occurrence, lang: str) -> tuple[str, str]:
    """Subject and text of a follow-up to ``occ``: its title, topic and materials (if any)."""
    title = occ.series.title
    topic = occ.content.topic_one_line if occ.content else ""
    day = occ.date.strftime("%d.%m.%Y") if lang == "de" else occ.date.isoformat()
    lines = [f"{title} – {topic}" if topic else title, ""]
    materials = getattr(occ.content, "materials", ()) or ()
    if materials:
        lines.append("Unterlagen zum Termin:" if lang == "de" else "Materials of the session:")
        lines += [f"- {getattr(m, 'title', '')}: {getattr(m, 'url', '')}" for m in materials]
    word = "Nachbereitung" if lang == "de" else "Follow-up"
    return f"{word}: {title} ({day})", "\n".join(lines).strip()


def _past(ctx: WebContext) -> list[Occurrence]:
    now = ctx.clock()
    series = _series(ctx)
    held = occurrences(series, now.date() - dt.timedelta(days=180), now.date(), source="")
    return [o for o in held if not o.skip_reason and not o.cancelled and o.start < now][-6:]


def _listed(ctx: WebContext) -> list[dict[str, Any]]:
    rows = [m for m in ctx.store.mailings.summaries() if m["kind"] == announcements.KIND]
    for m in rows:
        details = ctx.store.mailings.details(m["id"])
        a = Announcement.from_details(details)
        m["subject"] = next(iter(a.subjects.values()), "")
        m["send_at"], m["waiting"] = a.send_at, announcements.waiting(details)
    return rows


def _renderer(ctx: WebContext) -> AnnouncementRenderer:
    return AnnouncementRenderer(wiring.renderer_factory(ctx.settings, ctx.store)(_series(ctx)))


def _page(
    request: Request,
    ctx: WebContext,
    me: ConsoleSession,
    notices: list[tuple[str, str]],
    status: int = 200,
    form: Announcement | None = None,
) -> HTMLResponse:
    lang = language(request)
    draft = _draft(ctx, me)
    shown = form or draft
    asked = request.query_params.get("session", "")
    occ = occurrence_on(ctx, asked) if asked and form is None else None
    if occ is not None:
        (sde, tde), (sen, ten) = _follow_up(occ, "de"), _follow_up(occ, "en")
        shown = Announcement(occ.series.id, {"de": sde, "en": sen}, {"de": tde, "en": ten},
                             about=occ.key)  # fmt: skip
    problem = None
    if draft is not None and form is None and occ is None:
        try:
            announcements.render_all(_renderer(ctx), _series(ctx), draft)
        except SessionBotError as exc:
            problem = str(exc)
    return render(
        request, ctx, "announcements.html", title_key="ann_title", me=me, current=PATH,
        notices=notices, status=status, rows=_listed(ctx), form=shown, draft=draft,
        preview=draft is not None and form is None and occ is None, problem=problem,
        languages=LANGUAGES, past=_past(ctx), lang_shown=lang,
        recipients=ctx.store.subscribers.count("confirmed"),
    )  # fmt: skip


@router.get(PATH, include_in_schema=False)
def announcements_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    t = look().texts[language(request)]
    done = request.query_params.get("done", "")
    notices = [(t[f"ann_done_{done}"].replace("{email}", me.organiser.email), "")] if done in (
        "test", "sent", "scheduled") else []  # fmt: skip
    return _page(request, ctx, me, notices)


@router.get(PATH + "/draft/{lang}.{fmt}", include_in_schema=False)
def draft_preview(request: Request, ctx: Ctx, lang: str, fmt: str) -> Response:
    """The draft as recipients will see it: HTML (framed, no script can run) or text."""
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    draft = _draft(ctx, me)
    if draft is None or lang not in LANGUAGES or fmt not in ("html", "txt"):
        return Response("no such preview", 404, media_type="text/plain; charset=utf-8")
    try:
        mail: Any = announcements.render_all(_renderer(ctx), _series(ctx), draft)[lang]
    except SessionBotError as exc:
        return Response(str(exc), 422, media_type="text/plain; charset=utf-8")
    safe = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
    if fmt == "html":
        return HTMLResponse(mail.html, headers=safe | {"Content-Security-Policy": PREVIEW_CSP})
    return Response(mail.text, media_type="text/plain; charset=utf-8", headers=safe)


@router.post(PATH, include_in_schema=False)
async def announcements_post(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    fields = {k: v for k, v in (await request.form()).items() if isinstance(v, str)}
    if not csrf_ok(me, fields.get("csrf")):
        return expired_form(request, ctx, me, PATH)
    action = fields.get("action", "")
    if action == "send":
        return _send(request, ctx, me, fields)
    t = look().texts[language(request)]
    form = _from_form(ctx, me, fields)
    missing = form.problems(_series(ctx).language)
    if missing:
        return _page(request, ctx, me, [(t[k], "bad") for k in missing], 422, form=form)
    now = ctx.clock()
    ctx.store.kv.set(_key(me), json.dumps(form.to_details()), now + dt.timedelta(days=DRAFT_DAYS))
    if action == "test":
        return _test(request, ctx, me, form, fields.get("mail_lang", ""))
    if action == "confirm":
        return _confirm(request, ctx, me, form, fields)
    return RedirectResponse(PATH + "#preview", status_code=303)


def _test(
    request: Request, ctx: WebContext, me: ConsoleSession, a: Announcement, asked: str
) -> Response:
    t = look().texts[language(request)]
    lang = asked if asked in LANGUAGES else _series(ctx).language
    to, now = me.organiser.email, ctx.clock()
    failure: str | None = None
    try:
        mail = announcements.render_all(_renderer(ctx), _series(ctx), a, test_send=True)[lang]
        message = mail.personalise(
            Recipient(email=to, name=me.organiser.name, language=lang),
            message_id=make_msgid("test", to.rpartition("@")[2]), date=now,
        )  # fmt: skip
        transport = ctx.transport()
        try:
            answer = transport.send(wiring.envelope_sender(ctx.settings, ctx.plan()), to, message)
        finally:
            transport.close()
        if answer.outcome != "sent":
            failure = f"{answer.code or ''} {answer.response}".strip() or answer.outcome
    except SessionBotError as exc:
        failure = str(exc)
    outcome = f"not sent: {failure}" if failure else "sent"
    detail = f"{a.subjects.get(lang) or '…'} ({lang}) to {to}: {outcome}"
    ctx.store.audit.record(now, to, "announcement-test", detail, client(request, ctx))
    if failure is None:
        return RedirectResponse(PATH + "?done=test", status_code=303)
    text = t["ann_test_failed"].replace("{email}", to).replace("{why}", failure)
    return _page(request, ctx, me, [(text, "bad")])


def _send_at(ctx: WebContext, fields: dict[str, str]) -> dt.datetime | str | None:
    """None: now; a moment in the series' zone; or a text key of what is wrong with it."""
    if fields.get("when") != "at":
        return None
    try:
        moment = dt.datetime.fromisoformat(fields.get("send_at", "")[:16])
    except ValueError:
        return "ann_bad_moment"
    moment = moment.replace(tzinfo=_series(ctx).zone).astimezone(dt.UTC)
    return moment if moment > ctx.clock() else "ann_past_moment"


def _confirm(
    request: Request, ctx: WebContext, me: ConsoleSession, a: Announcement, fields: dict[str, str]
) -> Response:
    t = look().texts[language(request)]
    send_at = _send_at(ctx, fields)
    if isinstance(send_at, str):
        return _page(request, ctx, me, [(t[send_at], "bad")], 422, form=a)
    return render(
        request, ctx, "announcements.html", title_key="ann_confirm_title", me=me, current=PATH,
        confirm=True, draft=a, digest=_digest(a), send_at=send_at,
        send_at_raw=fields.get("send_at", "") if send_at else "",
        recipients=ctx.store.subscribers.count("confirmed"),
    )  # fmt: skip


def _send(
    request: Request, ctx: WebContext, me: ConsoleSession, fields: dict[str, str]
) -> Response:
    t = look().texts[language(request)]
    draft = _draft(ctx, me)
    if draft is None or fields.get("digest") != _digest(draft):
        return _page(request, ctx, me, [(t["ann_changed"], "bad")], 409)
    send_at = _send_at(ctx, fields)
    if isinstance(send_at, str):
        return _page(request, ctx, me, [(t[send_at], "bad")], 422)
    now = ctx.clock()
    a = Announcement(draft.series, draft.subjects, draft.texts, send_at, me.organiser.email,
                     draft.about)  # fmt: skip
    try:
        announcements.render_all(_renderer(ctx), _series(ctx), a)  # a template error stops it
    except SessionBotError as exc:
        return _page(request, ctx, me, [(str(exc), "bad")], 422)
    mailing_id, number = announcements.create(ctx.store, a, now)
    ctx.store.kv.take(_key(me))
    action = "announcement-scheduled" if send_at else "announcement-sent"
    when = f" at {send_at.isoformat()}" if send_at else ""
    detail = f"#{number} (mailing {mailing_id}) {draft.subjects.get('de') or '…'}{when}"
    ctx.store.audit.record(now, me.organiser.email, action, detail, client(request, ctx))
    if send_at is None and ctx.trigger_run is not None:
        # A run in progress or the next tick delivers it: it is recorded either way.
        with contextlib.suppress(SessionBotError):
            ctx.trigger_run("console")
    return RedirectResponse(f"{PATH}?done={'scheduled' if send_at else 'sent'}", status_code=303)
