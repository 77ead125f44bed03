"""The series' public home (``/`` German, ``/en/`` English) and its calendar feeds.

The page shows the series' description and upcoming sessions, links to the subscribe form, the
calendar feed and the organiser's imprint and privacy notice. The feed ``/calendar.ics`` lists
every session with the UID and SEQUENCE of the mailed calendar files; the join link only where
``SESSION_BOT_FEED_JOIN_LINKS`` allows it, else in each confirmed subscriber's private feed
``/calendar/<token>.ics``. Everything here is a GET that changes nothing, served with an ETag
and ``max-age=300``, so a proxy or the browser answers most requests.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlsplit

from babel.dates import format_date, format_time, get_timezone_name
from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response

from session_bot import wiring
from session_bot.adapters.render.feed import FeedEvent, build_feed, content_tag
from session_bot.core.meeting import Meeting
from session_bot.core.plan import Occurrence, Series, SessionContent, localize, occurrences
from session_bot.core.timeline import upcoming
from session_bot.core.tokens import make_token, read_token
from session_bot.web.deps import Ctx, WebContext
from session_bot.web.pages import pages, render_page, series_title, style_hash, texts

router = APIRouter()

FEED_PURPOSE = "feed"
CACHE = "public, max-age=300"
_FEED_BACK = dt.timedelta(days=90)
_FEED_AHEAD = dt.timedelta(days=400)
_PAGE_DAYS = 365
_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,200}\.[A-Za-z0-9_-]{1,100}")
_CALENDAR_TYPE = "text/calendar; charset=utf-8"
_PAGE_CSS = (
    ".home-logo img { max-width: 100%; height: 4rem; width: auto; } "
    ".home-sessions { padding-left: 1.25rem; } .home-sessions > li { margin-bottom: 1.25rem; } "
    ".home-sessions p { margin: .25rem 0; } h2 { font-size: 1.2rem; margin: 2rem 0 .5rem; }"
)


# --- the page --------------------------------------------------------------------------------


@router.get("/", response_class=Response)
def home_de(request: Request, ctx: Ctx, lang: str | None = None) -> Response:
    if lang == "en":  # the layout's language switch links to ?lang=
        return RedirectResponse("/en/", status_code=303)
    return home_page(request, ctx, "de")


@router.get("/en/", response_class=Response)
def home_en(request: Request, ctx: Ctx, lang: str | None = None) -> Response:
    if lang == "de":
        return RedirectResponse("/", status_code=303)
    return home_page(request, ctx, "en")


def home_page(request: Request, ctx: WebContext, lang: str) -> Response:
    settings = ctx.settings
    plan = ctx.plan()
    series = plan.series[0]
    localized, _, has_texts = localize(series, SessionContent.model_validate({}), lang)
    style = _PAGE_CSS + (_brand_css(settings.brand_colour) if settings.brand_colour else "")
    response = render_page(
        request,
        ctx,
        "home.html",
        lang,
        title_key="home_title",
        title=series_title(ctx, lang),
        extra_headers={"Content-Security-Policy": page_csp(style, settings.brand_logo_url)},
        page_style=style,
        logo_url=settings.brand_logo_url,
        description=list(localized.texts.closing),
        description_lang=lang if has_texts else series.language,
        sessions=[_session_view(o, lang) for o in upcoming(ctx.clock(), plan, _PAGE_DAYS)],
        subscribe_url="/subscribe" if lang == "de" else f"/subscribe?lang={lang}",
        archive_url="/archive" if lang == "de" else f"/{lang}/archive",
        values={"email": "", "name": "", "language": lang},
        errors={},
        consent_text=texts(lang)["consent"],
        feed=feed_links(settings.public_url, series_title(ctx, lang)),
        feed_has_links=settings.feed_join_links,
        imprint_url=settings.imprint_url,
        privacy_url=settings.privacy_url,
    )
    return cached(request, bytes(response.body), response.headers, response.media_type)


def page_csp(style: str, logo_url: str | None) -> str:
    """The pages' policy plus this page's own style block and the logo's origin."""
    directives = [d.strip() for d in pages().csp.split(";") if d.strip()]
    out = []
    for d in directives:
        if d.startswith("style-src "):
            d += f" {style_hash(style)}"
        elif d.startswith("img-src ") and logo_url:
            parts = urlsplit(logo_url)
            d += f" {parts.scheme}://{parts.netloc}"
        out.append(d)
    return "; ".join(out)


def _brand_css(colour: str) -> str:
    # The colour is checked against white (settings); the dark scheme keeps its own accent.
    return (
        f" @media (prefers-color-scheme: light) {{ :root {{ --accent: {colour}; "
        "--accent-fg: #ffffff; } main { border-top: 6px solid var(--accent); } }"
    )


def feed_links(public_url: str, title: str) -> dict[str, str]:
    """The feed's address as https, webcal and the calendar services' "add" links."""
    https = public_url.rstrip("/") + "/calendar.ics"
    webcal = "webcal://" + https.split("://", 1)[1]
    return {
        "https": https,
        "webcal": webcal,
        "google": "https://calendar.google.com/calendar/r?cid=" + quote(webcal, safe=""),
        "outlook": "https://outlook.live.com/calendar/0/addfromweb?url="
        + quote(https, safe="")
        + "&name="
        + quote(title, safe=""),
        "apple": webcal,
    }


def _session_view(occ: Occurrence, lang: str) -> dict[str, Any]:
    t = texts(lang)
    zone = occ.series.zone
    view: dict[str, Any] = {
        "iso": occ.start.isoformat(timespec="minutes"),
        "date": format_date(occ.date, "full", locale=lang),
        "time": t["home_time"]
        .replace("{start}", format_time(occ.start, "short", tzinfo=zone, locale=lang))
        .replace("{end}", format_time(occ.end, "short", tzinfo=zone, locale=lang))
        .replace("{zone}", get_timezone_name(occ.start, "long", locale=lang)),
        "skipped": _skip_reason(occ, t) if occ.skip_reason else None,
    }
    original = occ.content or SessionContent.model_validate({})
    _, content, _ = localize(occ.series, original, lang)
    own = original.translations.get(lang)  # type: ignore[call-overload]
    fallback = occ.series.language
    view["topic"] = content.topic_one_line
    view["topic_lang"] = lang if lang == fallback or (own and own.topic) else fallback
    view["cancelled"] = (content.reason or "").strip() if occ.cancelled else None
    view["reason_lang"] = lang if lang == fallback or (own and own.reason) else fallback
    view["speakers"] = [
        ", ".join(p for p in (s.name, s.role, s.organisation) if p) for s in content.speakers
    ]
    return view


def _skip_reason(occ: Occurrence, t: Mapping[str, str]) -> str:
    """Why there is no session on the day, in the page's language (the plan says it in code)."""
    reason = occ.skip_reason or ""
    if occ.date in occ.series.exceptions:
        return t["home_skip_exception"]
    if occ.date.month in occ.series.breaks:
        return t["home_skip_break"]
    if reason.startswith("public holiday: "):
        return t["home_skip_holiday"].replace("{name}", reason.removeprefix("public holiday: "))
    return reason


# --- the feeds -------------------------------------------------------------------------------


@router.get("/calendar.ics", response_class=Response)
def public_feed(request: Request, ctx: Ctx) -> Response:
    body = feed_body(ctx, join_links=ctx.settings.feed_join_links)
    return cached(request, body, {}, _CALENDAR_TYPE)


@router.get("/calendar/{token}.ics", response_class=Response)
def private_feed(request: Request, ctx: Ctx, token: str) -> Response:
    """A confirmed subscriber's feed, with the join links; 404 for anything else (a forged
    token, an unsubscribed or erased person), saying nothing about which it was."""
    subject = read_token(ctx.secret_key, FEED_PURPOSE, token) if _TOKEN.fullmatch(token) else None
    subscriber = (
        ctx.store.subscribers.get_by_id(int(subject)) if subject and subject.isdigit() else None
    )
    if subscriber is None or subscriber.get("status") != "confirmed":
        return Response("not found\n", 404, media_type="text/plain; charset=utf-8")
    body = feed_body(ctx, join_links=True)
    headers = {"Referrer-Policy": "no-referrer"}
    return cached(request, body, headers, _CALENDAR_TYPE, "private, max-age=300")


def private_feed_url(public_url: str, secret_key: str, subscriber_id: int) -> str:
    """The address of a subscriber's private feed (signed like the unsubscribe links)."""
    token = make_token(secret_key, FEED_PURPOSE, str(subscriber_id))
    return f"{public_url.rstrip('/')}/calendar/{token}.ics"


def feed_body(ctx: WebContext, *, join_links: bool) -> bytes:
    """Every held session of the plan's series from 90 days back to 400 ahead."""
    plan = ctx.plan()
    now = ctx.clock()
    rows = {row.key: row for row in ctx.store.sessions.all()}
    events: list[FeedEvent] = []
    for series in plan.series:
        domain = _uid_domain(ctx, series)
        today = now.astimezone(series.zone).date()
        for occ in occurrences(series, today - _FEED_BACK, today + _FEED_AHEAD, source=plan.source):
            if occ.skip_reason:
                continue
            row = rows.get(occ.key)
            cancelled = occ.cancelled or (row is not None and row.cancelled_at is not None)
            join = None
            if join_links and not cancelled and row is not None and row.meeting_json:
                join = Meeting.from_json(row.meeting_json).join_url
            sequence = row.sequence if row is not None else 0
            events.append(FeedEvent(occ, domain, sequence, cancelled, join))
    events.sort(key=lambda e: e.occurrence.start)
    return build_feed(events, name=series_title(ctx), now=now)


def _uid_domain(ctx: WebContext, series: Series) -> str:
    """The domain of the mailed UIDs: stored at the series' first mailing, else today's."""
    current = wiring.mail_config(ctx.settings, series).message_id_domain
    return wiring.calendar_domain(ctx.store, series, current, fix=False)


# --- caching ---------------------------------------------------------------------------------


def cached(
    request: Request,
    body: bytes,
    headers: Mapping[str, str],
    media_type: str | None,
    cache: str = CACHE,
) -> Response:
    """``body`` with an ETag (a hash of it), or 304 when the client already has it."""
    tag = content_tag(body)
    drop = ("content-length", "content-type", "cache-control")
    keep = {k: v for k, v in headers.items() if k.lower() not in drop}
    keep["Cache-Control"] = cache
    keep["ETag"] = tag
    if _matches(request.headers.get("if-none-match"), tag):
        return Response(status_code=304, headers=keep)
    return Response(body, 200, headers=keep, media_type=media_type)


def _matches(header: str | None, tag: str) -> bool:
    if not header:
        return False
    offered = [part.strip().removeprefix("W/") for part in header.split(",")]
    return "*" in offered or tag in offered
