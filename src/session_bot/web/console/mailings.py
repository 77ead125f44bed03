"""The console's mailings: every mailing with its counts, one mailing's recipients (filtered by
state, 100 to a page) with the server's answers, and everything one address got or was due to get.

A session's mailing names its session (date, link to the session page); an announcement has no
session, so its subject and a link to the announcements page stand in for one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from babel.dates import format_date
from fastapi import APIRouter, Request
from fastapi.responses import Response

from session_bot.app import announcements
from session_bot.app.announcements import Announcement
from session_bot.web.console.base import (
    SESSION_COOKIE,
    language,
    look,
    render,
    signed_in,
    to_sign_in,
)
from session_bot.web.deps import Ctx, WebContext

router = APIRouter()

PAGE_SIZE = 100
# The states a list can be filtered by: ``pending`` includes rows being sent; ``bounced`` is the
# part of ``failed`` that bounced hard.
STATES = ("sent", "pending", "failed", "bounced", "skipped")
CURRENT = "/admin/mailings"
ANNOUNCEMENTS = "/admin/announcements"


@dataclass(frozen=True)
class Paging:
    page: int
    pages: int
    total: int
    first: int  # 1-based number of the first row shown (0 when none)
    last: int
    prev_url: str | None
    next_url: str | None


Fetch = Callable[[int, int], tuple[int, list[dict[str, Any]]]]  # (offset, limit) → total, rows


def paged(
    fetch: Fetch, path: str, params: dict[str, str], page: int
) -> tuple[Paging, list[dict[str, Any]]]:
    """The asked page of rows (the last one if asked beyond it) and the links around it."""
    total, rows = fetch((page - 1) * PAGE_SIZE, PAGE_SIZE)
    pages = max(1, -(-total // PAGE_SIZE))
    if page > pages:
        page = pages
        total, rows = fetch((page - 1) * PAGE_SIZE, PAGE_SIZE)

    def url(n: int) -> str:
        return f"{path}?{urlencode({**params, 'page': str(n)})}"

    first = (page - 1) * PAGE_SIZE + 1 if rows else 0
    pager = Paging(
        page, pages, total, first, first + len(rows) - 1 if rows else 0,
        url(page - 1) if page > 1 else None, url(page + 1) if page < pages else None,
    )  # fmt: skip
    return pager, rows_view(rows)


def page_number(request: Request) -> int:
    raw = request.query_params.get("page", "1")
    return max(1, min(int(raw), 1_000_000)) if raw.isdigit() and len(raw) < 8 else 1


def answer_of(row: dict[str, Any]) -> str:
    return f"{row['last_code'] or ''} {row['last_response'] or ''}".strip()


def row_state(row: dict[str, Any]) -> str:
    return "bounced" if row["hard"] else str(row["status"])


def rows_view(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "state": row_state(r), "answer": answer_of(r)} for r in rows]


def session_day(date: str, lang: str) -> str:
    pattern = "EEEE, d. MMMM yyyy" if lang == "de" else "EEEE, d MMMM yyyy"
    return format_date(dt.date.fromisoformat(date), pattern, locale=lang)


def kind_word(t: Mapping[str, str], kind: str) -> str:
    return str(t.get(f"kind_{kind}", kind))


def with_subjects(
    ctx: WebContext, rows: list[dict[str, Any]], lang: str, id_key: str = "id"
) -> list[dict[str, Any]]:
    """Each row with ``subject`` (an announcement's, in the page's language if written in it;
    None for a session's mailing) and ``about_url``: the announcement or the session page."""
    subjects: dict[int, str] = {}
    for row in rows:
        mailing_id = int(row[id_key])
        if row["kind"] != announcements.KIND:
            row["subject"] = None
            row["about_url"] = f"/admin/sessions/{row['session_date']}"
            continue
        if mailing_id not in subjects:
            a = Announcement.from_details(ctx.store.mailings.details(mailing_id))
            subjects[mailing_id] = a.subjects.get(lang) or next(iter(a.subjects.values()), "…")
        row["subject"] = subjects[mailing_id]
        row["about_url"] = f"{ANNOUNCEMENTS}#announcement-{mailing_id}"
    return rows


@router.get("/admin/mailings", include_in_schema=False)
def mailings_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    mailings = with_subjects(ctx, ctx.store.mailings.summaries(), language(request))
    return render(
        request, ctx, "mailings.html", title_key="ml_mailings_title", me=me, current=CURRENT,
        mailings=mailings, kind_word=kind_word,
    )  # fmt: skip


@router.get("/admin/mailings/recipient", include_in_schema=False)
def recipient_page(request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    q = request.query_params.get("q", "").strip()[:320]
    rows: list[dict[str, Any]] = []
    pager = None
    if q:
        pager, rows = paged(
            lambda offset, limit: ctx.store.mailings.delivery_page(
                email=q, offset=offset, limit=limit
            ),
            "/admin/mailings/recipient", {"q": q}, page_number(request),
        )  # fmt: skip
    rows = with_subjects(ctx, rows, language(request), id_key="mailing_id")
    return render(
        request, ctx, "recipient.html", title_key="ml_recipient_title", me=me, current=CURRENT,
        q=q, rows=rows, pager=pager, kind_word=kind_word,
    )  # fmt: skip


@router.get("/admin/mailings/{mailing_id}", include_in_schema=False)
def mailing_page(mailing_id: int, request: Request, ctx: Ctx) -> Response:
    me = signed_in(request, ctx)
    if me is None:
        return to_sign_in(request, expired=SESSION_COOKIE in request.cookies)
    lang = language(request)
    t = look().texts[lang]
    found = ctx.store.mailings.summaries(mailing_id) if 0 < mailing_id < 2**31 else []
    if not found:
        return render(
            request, ctx, "message.html", title_key="ml_mailing_missing", me=me, status=404,
            current=CURRENT, paragraphs=[t["ml_mailing_missing_text"]],
            link={"url": CURRENT, "text": t["ml_mailings_back"]},
        )  # fmt: skip
    mailing = with_subjects(ctx, found, lang)[0]
    asked = request.query_params.get("state")
    state = asked if asked in STATES else None
    path = f"/admin/mailings/{mailing_id}"
    pager, rows = paged(
        lambda offset, limit: ctx.store.mailings.delivery_page(
            mailing_id=mailing_id, state=state, offset=offset, limit=limit
        ),
        path, {"state": state} if state else {}, page_number(request),
    )  # fmt: skip
    if mailing["subject"] is not None:
        title = t["ml_announcement_title"].replace("{subject}", mailing["subject"])
    else:
        title = (
            t["ml_mailing_title"]
            .replace("{kind}", kind_word(t, mailing["kind"]))
            .replace("{date}", session_day(mailing["session_date"], lang))
        )
        title = title[:1].upper() + title[1:]  # "invitation for …" in English
    return render(
        request, ctx, "mailing.html", title_key="ml_mailing_title", me=me, current=CURRENT,
        title=title, mailing=mailing, state=state, states=STATES, rows=rows, pager=pager,
        path=path, kind_word=kind_word,
    )  # fmt: skip
