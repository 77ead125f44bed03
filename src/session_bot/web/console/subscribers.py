"""Subscribers in the console: list and search, add (by confirmation mail, or confirmed with the
consent's source), one subscriber's proof and mails, remove, forget, CSV import and export. Every
change goes through the CLI's and the public form's use cases and leaves an audit entry; an
upload waits for its commit in ``kv`` (30 minutes, for its organiser only), never in the browser.
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import secrets
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from session_bot.app import subscriptions as subs
from session_bot.core.console import ConsoleSession
from session_bot.core.errors import SessionBotError, SubscriberImportError
from session_bot.web.console import base
from session_bot.web.console.audit import record as _audit
from session_bot.web.console.base import client, render
from session_bot.web.deps import Ctx, WebContext
from session_bot.web.pages import consent_version

router = APIRouter()

PAGE = 50
IMPORT_VALID = dt.timedelta(minutes=30)
# The organiser adds people one by one from one address; the public form's per-client limit
# would stop her after ten. The per-address limit still protects the addressee.
CONSOLE_LIMITS = subs.RateLimits(per_client=10_000)
_IMPORT_KEY = re.compile(r"console\.import:[A-Za-z0-9_-]{24}")
_DONE = ("added", "mailed", "mail-failed", "removed", "already", "forgotten")
Form_ = Annotated[str, Form()]
_EMPTY = {"email": "", "name": "", "language": "de", "how": "mail", "source": "", "readd": ""}


def _t(request: Request) -> Mapping[str, str]:
    return base.look().texts[base.language(request)]


def _me(request: Request, ctx: WebContext, csrf: str | None = None) -> ConsoleSession | Response:
    """The signed-in organiser; else the answer: the sign-in for a stranger, for a form without
    this session's token the 400 page (nothing changed)."""
    me = base.signed_in(request, ctx)
    if me is None:
        return base.to_sign_in(request)
    if csrf is not None and not base.csrf_ok(me, csrf):
        return expired(request, ctx, me)
    return me


def expired(request: Request, ctx: WebContext, me: ConsoleSession) -> HTMLResponse:
    """The 400 page for a form sent without this session's token: nothing changed."""
    t = _t(request)
    return render(
        request, ctx, "message.html", title_key="subs_expired_title", me=me, status=400,
        paragraphs=[t["form_expired"]],
        link={"url": "/admin/subscribers", "text": t["nav_subscribers"]},
    )  # fmt: skip


# --- the list, the search and the add form ---------------------------------------------------


@router.get("/admin/subscribers", include_in_schema=False)
def list_page(
    request: Request, ctx: Ctx, q: str = "", status: str = "", page: str = "1", done: str = ""
) -> Response:
    me = _me(request, ctx)
    if isinstance(me, Response):
        return me
    notices = [(_t(request)[f"subs_done_{done}"], "")] if done in _DONE else []
    number = int(page) if page.isdigit() else 1
    return _list(request, ctx, me, q=q, status=status, page=number, notices=notices)


def _list(request: Request, ctx: WebContext, me: ConsoleSession, **v: Any) -> HTMLResponse:
    """The list page; ``v`` may hold q, status, page, form, errors, code and notices."""
    q, status, page = str(v.get("q", "")), str(v.get("status", "")), int(v.get("page", 1))
    wanted = q.strip().casefold()
    status = status if status in subs.STATUSES else ""
    found = [
        {**r, "since": r["confirmed_at"] or r["created_at"]}
        for r in ctx.store.subscribers.iter([status] if status else None)
        if not wanted or wanted in r["email"].casefold() or wanted in (r["name"] or "").casefold()
    ]
    found.reverse()  # the newest first
    pages = max(1, -(-len(found) // PAGE))
    page = min(max(page, 1), pages)
    return render(
        request, ctx, "subscribers.html", title_key="subs_title", me=me, status=v.get("code", 200),
        notices=v.get("notices"), current="/admin/subscribers", q=q, status_filter=status,
        statuses=subs.STATUSES, counts={s: ctx.store.subscribers.count(s) for s in subs.STATUSES},
        rows=found[(page - 1) * PAGE : page * PAGE], total=len(found), page=page, pages=pages,
        languages=subs.LANGUAGES, errors=dict(v.get("errors") or {}),
        form=dict(v.get("form") or _EMPTY),
    )  # fmt: skip


@router.post("/admin/subscribers/add", include_in_schema=False)
def add(
    request: Request, ctx: Ctx, csrf: Form_ = "", email: Form_ = "", name: Form_ = "",
    lang: Annotated[str, Form(alias="language")] = "de", how: Form_ = "", source: Form_ = "",
    readd: Form_ = "",
) -> Response:  # fmt: skip
    me = _me(request, ctx, csrf)
    if isinstance(me, Response):
        return me
    t = _t(request)
    lang = lang if lang in subs.LANGUAGES else "de"
    form = {"email": email[:320], "name": name[:200], "language": lang, "how": how,
            "source": source[:500], "readd": "yes" if readd else ""}  # fmt: skip
    errors, address = _check_add(ctx, t, form)
    sid: int | None = None
    done, detail = "added", ""
    if not errors and how == "confirmed":
        try:
            sid = subs.add_subscriber(
                ctx.store, ctx.secret_key, address=address, name=name, language=lang,
                source=form["source"].strip(), added_by=me.organiser.email, now=ctx.clock(),
                readd_forgotten=bool(readd),
            )  # fmt: skip
        except SessionBotError as exc:  # a concurrent add got there first
            errors["email"] = str(exc)
        detail = f"{address} (confirmed; source: {form['source'].strip()})"
    elif not errors:
        sid, done = _request_confirmation(request, ctx, address, form)
        if sid is None:
            errors["email"] = t["subs_email_limited"]
        detail = f"{address} (confirmation mail)"
    if errors or sid is None:
        return _list(request, ctx, me, form=form, errors=errors, code=400)
    _audit(request, ctx, me, "subscriber-added", detail)
    return RedirectResponse(f"/admin/subscribers/{sid}?done={done}", status_code=303)


def _check_add(
    ctx: WebContext, t: Mapping[str, str], form: Mapping[str, str]
) -> tuple[dict[str, str], str]:
    """Messages next to the fields (German or English), and the address in its normal form."""
    errors: dict[str, str] = {}
    address = ""
    try:
        address = subs.normalise_address(form["email"])
    except subs.InvalidAddress:
        errors["email"] = t["subs_email_missing" if not form["email"].strip() else "subs_email_bad"]
    if form["how"] not in ("mail", "confirmed"):
        errors["how"] = t["subs_how_missing"]
    if form["how"] == "confirmed" and not form["source"].strip():
        errors["source"] = t["subs_source_missing"]
    if errors:
        return errors, address
    row = ctx.store.subscribers.get(address)
    if row is not None and (form["how"] == "confirmed" or row["status"] == "confirmed"):
        shown = t[f"subs_status_{row['status']}"]
        errors["email"] = t["subs_email_known"].replace("{status}", shown)
    elif form["how"] == "confirmed" and not form["readd"]:
        when = ctx.store.subscribers.forgotten_at(subs.forget_hash(ctx.secret_key, address))
        if when is not None:
            errors["email"] = t["subs_email_erased"].replace("{date}", f"{when:%d.%m.%Y}")
    return errors, address


def _request_confirmation(
    request: Request, ctx: WebContext, address: str, form: Mapping[str, str]
) -> tuple[int | None, str]:
    """The public form's path: a pending request whose confirmation mail goes out now."""
    now = ctx.clock()
    outcome = subs.request_subscription(
        ctx.store, ctx.secret_key, address=address, name=form["name"], language=form["language"],
        consent_version=consent_version(form["language"]), now=now, limits=CONSOLE_LIMITS,
        proof=subs.RequestProof(
            ip=client(request, ctx), user_agent=request.headers.get("user-agent"),
            url=ctx.settings.public_url.rstrip("/") + "/admin/subscribers/add",
        ),
    )  # fmt: skip
    if outcome.action != "send-confirmation" or outcome.subscriber_id is None:
        return None, ""
    try:
        transport = ctx.transport()
        try:
            answer = subs.mail_confirmation(ctx.consent_mail(), transport, outcome, now)
        finally:
            transport.close()
    except SessionBotError:
        return outcome.subscriber_id, "mail-failed"
    return outcome.subscriber_id, "mailed" if answer.outcome == "sent" else "mail-failed"


# --- export and import (before /{sid}: their paths are no numbers) ---------------------------


@router.get("/admin/subscribers/export.csv", include_in_schema=False)
def export(request: Request, ctx: Ctx, status: str = "confirmed") -> Response:
    me = _me(request, ctx)
    if isinstance(me, Response):
        return me
    chosen = list(subs.STATUSES) if status == "all" else [status]
    chosen = chosen if set(chosen) <= set(subs.STATUSES) else ["confirmed"]
    out = io.StringIO()
    n = subs.export_csv(ctx.store, out, statuses=chosen)
    _audit(request, ctx, me, "export", f"{n} subscriber(s), {', '.join(chosen)}")
    name = f"subscribers-{ctx.clock():%Y-%m-%d}.csv"
    return Response(
        out.getvalue().encode("utf-8"),
        media_type="text/csv; charset=utf-8",
        headers={**base.headers(base.language(request)),
                 "Content-Disposition": f'attachment; filename="{name}"'},
    )  # fmt: skip


@router.get("/admin/subscribers/import", include_in_schema=False)
def import_form(request: Request, ctx: Ctx) -> Response:
    me = _me(request, ctx)
    if isinstance(me, Response):
        return me
    return _import_page(request, ctx, me, "upload")


def _import_page(
    request: Request, ctx: WebContext, me: ConsoleSession, stage: str, code: int = 200, **v: Any
) -> HTMLResponse:
    v.setdefault("error", None)
    if "report" in v:
        v["report"] = _shown(request, v["report"])
    return render(
        request, ctx, "import.html", title_key="imp_title", me=me, status=code,
        current="/admin/subscribers", stage=stage, limit_kb=ctx.settings.max_body_bytes // 1024,
        **v,
    )  # fmt: skip


@router.post("/admin/subscribers/import", include_in_schema=False)
def import_preview(
    request: Request, ctx: Ctx, file: Annotated[UploadFile | None, File()] = None, csrf: Form_ = ""
) -> Response:
    # The file is optional for FastAPI so that a stranger is sent to the sign-in, not a 422.
    me = _me(request, ctx, csrf)
    if isinstance(me, Response):
        return me
    if file is None:
        return _import_page(request, ctx, me, "upload", 400, error=_t(request)["imp_no_file"])
    name = _safe_name(file.filename)
    data = file.file.read()
    try:
        report = _import(ctx, me.organiser.email, name, data, True)
    except SubscriberImportError as exc:
        return _import_page(request, ctx, me, "upload", 400, error=str(exc))
    key = f"console.import:{secrets.token_urlsafe(18)}"
    stored = {"by": me.organiser.id, "name": name, "data": base64.b64encode(data).decode()}
    ctx.store.kv.set(key, json.dumps(stored), ctx.clock() + IMPORT_VALID)
    return _import_page(request, ctx, me, "preview", name=name, key=key, report=report)


@router.post("/admin/subscribers/import/commit", include_in_schema=False)
def import_commit(request: Request, ctx: Ctx, csrf: Form_ = "", key: Form_ = "") -> Response:
    me = _me(request, ctx, csrf)
    if isinstance(me, Response):
        return me
    waiting = ctx.store.kv.get(key, ctx.clock()) if _IMPORT_KEY.fullmatch(key) else None
    stored = json.loads(waiting) if waiting else None
    if stored is None or stored["by"] != me.organiser.id or ctx.store.kv.take(key) is None:
        return _import_page(request, ctx, me, "upload", 410, error=_t(request)["imp_gone"])
    data = base64.b64decode(stored["data"])
    report = _import(ctx, me.organiser.email, stored["name"], data, False)
    _audit(request, ctx, me, "import", report.summary().replace(report.file, stored["name"]))
    return _import_page(request, ctx, me, "done", name=stored["name"], report=report)


def _safe_name(filename: str | None) -> str:
    plain = re.sub(r"[^A-Za-z0-9._-]+", "_", (filename or "").replace("\\", "/").split("/")[-1])
    return plain.strip("._")[:80] or "upload.csv"


def _import(ctx: WebContext, by: str, name: str, data: bytes, dry_run: bool) -> subs.ImportReport:
    """The CLI's import use case over the uploaded bytes; the file lives only for this call."""
    with tempfile.TemporaryDirectory(prefix="session-bot-console-upload-") as folder:
        path = Path(folder) / name
        path.write_bytes(data)
        try:
            return subs.import_csv(
                ctx.store, ctx.secret_key, path, imported_by=by,
                now=ctx.clock(), dry_run=dry_run,
            )  # fmt: skip
        except SubscriberImportError as exc:
            raise SubscriberImportError(str(exc).replace(str(path), name)) from None


_REASONS = [
    (re.compile(r"invalid address: (?P<x>.*)"), "imp_r_invalid"),
    (re.compile(r"duplicate of line (?P<x>\d+)"), "imp_r_duplicate"),
    (re.compile(r"already subscribed"), "imp_r_subscribed"),
    (re.compile(r"awaiting confirmation"), "imp_r_pending"),
    (re.compile(r"(?P<x>\w+) on the list:"), "imp_r_left"),
    (re.compile(r"erased on request"), "imp_r_erased"),
    (re.compile(r"status (?P<x>.*) in the file"), "imp_r_status"),
    (re.compile(r"language (?P<x>.*) unknown"), "imp_r_language"),
    (re.compile(r"name longer than (?P<x>\d+)"), "imp_r_name"),
]


def _reason(t: Mapping[str, str], reason: str) -> str:
    """The parser's and the import's reasons in the page's language."""
    for pattern, key in _REASONS:
        if m := pattern.match(reason):
            x = m.groupdict().get("x") or ""
            return t[key].replace("{x}", t.get(f"subs_status_{x}", x))
    return reason


def _shown(request: Request, report: subs.ImportReport) -> dict[str, Any]:
    t = _t(request)
    rows = [[{"line": r.line, "text": r.text, "reason": _reason(t, r.reason)} for r in items]
            for items in (report.unchanged, report.rejected)]  # fmt: skip
    return {"added": report.added, "unchanged": rows[0], "rejected": rows[1]}


# --- one subscriber ----------------------------------------------------------------------------


@router.get("/admin/subscribers/{sid}", include_in_schema=False)
def detail(request: Request, ctx: Ctx, sid: int, done: str = "") -> Response:
    me = _me(request, ctx)
    if isinstance(me, Response):
        return me
    notices = [(_t(request)[f"subs_done_{done}"], "")] if done in _DONE else []
    return _detail(request, ctx, me, sid, notices=notices)


def _detail(request: Request, ctx: WebContext, me: ConsoleSession, sid: int, **v: Any) -> Response:
    """One subscriber's page; ``v`` may hold ask_forget (the question first) and notices."""
    row = ctx.store.subscribers.get_by_id(sid)
    if row is None or row["status"] == "forgotten":
        t = _t(request)
        return render(
            request, ctx, "message.html", title_key="subs_unknown_title", me=me, status=404,
            paragraphs=[t["subs_unknown"]],
            link={"url": "/admin/subscribers", "text": t["nav_subscribers"]},
        )  # fmt: skip
    proof = [
        (col, row[col], isinstance(row[col], dt.datetime))
        for col, _ in subs.PROOF_FIELDS
        if row[col] not in (None, "") and not (col == "hard_bounces" and not row[col])
    ]
    return render(
        request, ctx, "subscriber.html", title_key="subs_one_title", me=me,
        notices=v.get("notices"), current="/admin/subscribers", row=row, proof=proof,
        mails=_mails(ctx, sid), ask_forget=v.get("ask_forget", False),
    )  # fmt: skip


def _mails(ctx: WebContext, sid: int) -> list[dict[str, Any]]:
    """What this person was sent: their delivery row in every mailing, the newest first."""
    out = []
    for session in ctx.store.sessions.all():
        for mailing in ctx.store.mailings.of_session(session.id):
            for d in ctx.store.mailings.delivery_log(mailing.id):
                if d["subscriber_id"] == sid:
                    out.append({**d, "kind": mailing.kind, "date": session.date,
                                "created_at": mailing.created_at})  # fmt: skip
    return sorted(out, key=lambda d: d["created_at"], reverse=True)


@router.post("/admin/subscribers/{sid}/remove", include_in_schema=False)
def remove(request: Request, ctx: Ctx, sid: int, csrf: Form_ = "") -> Response:
    me = _me(request, ctx, csrf)
    if isinstance(me, Response):
        return me
    row = ctx.store.subscribers.get_by_id(sid)
    if row is None or row["status"] == "forgotten":
        return _detail(request, ctx, me, sid)
    result = subs.remove_subscriber(ctx.store, row["email"], ctx.clock())
    if result == "unsubscribed":
        _audit(request, ctx, me, "subscriber-removed", row["email"])
    done = "removed" if result == "unsubscribed" else "already"
    return RedirectResponse(f"/admin/subscribers/{sid}?done={done}", status_code=303)


@router.post("/admin/subscribers/{sid}/forget", include_in_schema=False)
def forget(request: Request, ctx: Ctx, sid: int, csrf: Form_ = "", really: Form_ = "") -> Response:
    me = _me(request, ctx, csrf)
    if isinstance(me, Response):
        return me
    row = ctx.store.subscribers.get_by_id(sid)
    if row is None or row["status"] == "forgotten" or really != "yes":
        return _detail(request, ctx, me, sid, ask_forget=True)  # "wirklich löschen?"
    subs.forget_subscriber(ctx.store, ctx.secret_key, row["email"], ctx.clock())
    # Not the address: the audit log must not keep what was erased.
    _audit(request, ctx, me, "subscriber-forgotten", f"#{sid}")
    return RedirectResponse("/admin/subscribers?done=forgotten", status_code=303)
