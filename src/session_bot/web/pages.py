"""The subscriber pages' rendering: Jinja2 templates in ``templates/web/``, texts in German and
English from its ``texts.yaml``, and the headers every page carries.

Pages use no external assets; the one stylesheet is inlined and allowed by its hash in the
Content-Security-Policy.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2
import yaml
from fastapi import Request
from fastapi.responses import HTMLResponse
from markupsafe import escape

from session_bot.adapters.render.invitations import default_templates_dir
from session_bot.core.errors import SessionBotError
from session_bot.core.languages import LANGUAGES
from session_bot.core.plan.localize import localized_title
from session_bot.web.deps import WebContext

LANGS = LANGUAGES  # the pages offer exactly the languages of the series


@dataclass(frozen=True)
class Pages:
    env: jinja2.Environment
    texts: Mapping[str, Mapping[str, str]]
    css: str
    csp: str
    consent_versions: Mapping[str, str]


@functools.cache
def pages() -> Pages:
    """The templates, texts and stylesheet, loaded once."""
    folder = default_templates_dir() / "web"
    env = page_environment(folder)
    texts = merged_texts(folder)
    css = (folder / "style.css").read_text("utf-8")
    csp = (
        f"default-src 'none'; style-src {style_hash(css)}; img-src data:; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    versions = {
        lang: f"{lang}-{hashlib.sha256(' '.join(t['consent'].split()).encode()).hexdigest()[:12]}"
        for lang, t in texts.items()
    }
    return Pages(env, texts, css, csp, versions)


def page_environment(folder: Path) -> jinja2.Environment:
    """The Jinja2 environment of a folder of pages (the subscriber pages, the console)."""
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(folder)),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Read once per process, as the texts and the stylesheet are: no stat() of each
        # template file on every page (a tenth of a busy /subscribe's time, issue 18).
        auto_reload=False,
    )


def merged_texts(folder: Path) -> dict[str, dict[str, str]]:
    """texts.yaml and one texts_<area>.yaml per group of pages, merged; every key in de and en."""
    texts: dict[str, dict[str, str]] = {"de": {}, "en": {}}
    for file in sorted(folder.glob("texts*.yaml")):
        part: dict[str, dict[str, str]] = yaml.safe_load(file.read_text("utf-8"))
        missing = set(part.get("de", {})) ^ set(part.get("en", {}))
        if missing or set(part) != {"de", "en"}:
            raise SessionBotError(
                f"{file}: keys {sorted(missing)} exist in one language only; "
                "give every text in de and en"
            )
        for lang in ("de", "en"):
            texts[lang].update(part[lang])
    return texts


def style_hash(css: str) -> str:
    """The CSP source that allows exactly this inlined stylesheet."""
    return f"'sha256-{base64.b64encode(hashlib.sha256(css.encode()).digest()).decode()}'"


def texts(lang: str) -> Mapping[str, str]:
    return pages().texts[lang]


def consent_version(lang: str) -> str:
    """The version of the consent text shown in ``lang`` (changes whenever its wording does)."""
    return pages().consent_versions[lang]


def _headers(p: Pages, lang: str) -> dict[str, str]:
    return {
        "Content-Security-Policy": p.csp,
        "X-Content-Type-Options": "nosniff",
        "X-Frame-Options": "DENY",
        # Token URLs must not leak to anywhere through a Referer.
        "Referrer-Policy": "no-referrer",
        "Cache-Control": "no-store",
        "Content-Language": lang,
    }


def render_page(
    request: Request,
    ctx: WebContext,
    template: str,
    lang: str,
    *,
    title_key: str,
    status: int = 200,
    extra_headers: Mapping[str, str] | None = None,
    title: str | None = None,
    **values: Any,
) -> HTMLResponse:
    """``title`` replaces the text of ``title_key`` (for pages whose texts live in code)."""
    p = pages()
    t = p.texts[lang]
    other = "en" if lang == "de" else "de"
    html = p.env.get_template(template).render(
        lang=lang,
        t=t,
        css=p.css,
        title=title if title is not None else t[title_key],
        series_title=series_title(ctx, lang),
        other_lang=other,
        other_lang_url=f"{request.url.path}?lang={other}",
        action=f"{request.url.path}?lang={lang}",
        **values,
    )
    return HTMLResponse(html, status, headers={**_headers(p, lang), **(extra_headers or {})})


def message_page(
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
    feed: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page of text paragraphs (``{title}``, ``{email}`` … filled in), with an optional
    button that POSTs back to the same URL or a link; ``feed`` (``https``, ``webcal``): a
    subscriber's private calendar feed, offered below."""
    t = texts(lang)
    fill = {"title": series_title(ctx, lang), **(fill or {})}
    paragraphs = []
    for key in paragraph_keys:
        text = t[key]
        for name, value in fill.items():
            text = text.replace("{" + name + "}", value)
        paragraphs.append(text)
    return render_page(
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
        feed=feed,
    )


# Stands in for the value of a slotted page; escaping leaves it as it is, and no text has it.
_SLOT = "\x00slot\x00"
# Every character escaping changes, and a "{title}" that must stay what it is.
_PROBE = '"Ä&<b>\'{title}"@example.org'
_slotted: dict[tuple[str, ...], tuple[str, ...] | None] = {}


def slotted_message_page(
    request: Request,
    ctx: WebContext,
    lang: str,
    title_key: str,
    *paragraph_keys: str,
    slot: str,
    value: str,
) -> HTMLResponse:
    """``message_page(..., fill={slot: value})``, rendered once per language, path and series
    title with the value left as a slot, then filled in per request (the page after a sign-up:
    ≈ 8 % of its interpreter time, issue 18). Before a rendering is kept, filling it in is checked
    against a full rendering of a probe value; where the two differ, every request renders in
    full."""
    key = (lang, request.url.path, series_title(ctx, lang), title_key, slot, *paragraph_keys)
    if key not in _slotted:
        if len(_slotted) >= 64:  # only a new series title makes new keys: rare
            _slotted.clear()
        _slotted[key] = _slots(request, ctx, lang, title_key, paragraph_keys, slot)
    parts = _slotted[key]
    if parts is None:
        return message_page(request, ctx, lang, title_key, *paragraph_keys, fill={slot: value})
    return HTMLResponse(str(escape(value)).join(parts), 200, headers=_headers(pages(), lang))


def _slots(
    request: Request,
    ctx: WebContext,
    lang: str,
    title_key: str,
    paragraph_keys: tuple[str, ...],
    slot: str,
) -> tuple[str, ...] | None:
    """The page split where the value goes; None if filling it in would not give the page."""
    parts = tuple(_body(request, ctx, lang, title_key, paragraph_keys, {slot: _SLOT}).split(_SLOT))
    probe = _body(request, ctx, lang, title_key, paragraph_keys, {slot: _PROBE})
    return parts if str(escape(_PROBE)).join(parts) == probe else None


def _body(
    request: Request,
    ctx: WebContext,
    lang: str,
    title_key: str,
    paragraph_keys: tuple[str, ...],
    fill: Mapping[str, str],
) -> str:
    page = message_page(request, ctx, lang, title_key, *paragraph_keys, fill=fill)
    return bytes(page.body).decode("utf-8")


def invalid_page() -> HTMLResponse:
    """The answer to a forged, altered or retired link (both languages on one page)."""
    p = pages()
    html = p.env.get_template("invalid.html").render(css=p.css)
    return HTMLResponse(html, 400, headers=_headers(p, "de"))


def series_title(ctx: WebContext, lang: str | None = None) -> str:
    """The series' title in the page's language (the plan's English title on English pages)."""
    try:
        return localized_title(ctx.plan().series[0], lang)
    except (SessionBotError, IndexError):
        return "session-bot"


def page_language(request: Request, requested: str | None, preferred: str | None = None) -> str:
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
