"""What one mail says: its template context, subject, text, HTML, salutation and calendar.

Personal values (salutation, unsubscribe link, ATTENDEE) come out as tokens or slots unless a
recipient is given; ``mailing.py`` fills them per recipient.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any, Literal

from babel.dates import format_date, format_time, get_timezone_name
from markupsafe import Markup

from session_bot.adapters.render import ics
from session_bot.adapters.render.mailing import Salutation
from session_bot.adapters.render.personalise import clean_line, token
from session_bot.adapters.render.templates import Templates
from session_bot.adapters.render.values import KINDS, SAMPLE_MEETING, MeetingLike, MeetingView
from session_bot.core.errors import TemplateError
from session_bot.core.languages import LANGUAGES, Language, is_language
from session_bot.core.plan import Occurrence, Series, SessionContent, localize
from session_bot.core.recipient import Recipient

_PERSONAL = ("salutation", "unsubscribe_url")
_TEST_PREFIX = "[TEST] "
_CALENDAR_FILE: dict[tuple[Language, bool], str] = {  # (language, cancelled)
    ("de", False): "einladung.ics",
    ("de", True): "absage.ics",
    ("en", False): "invitation.ics",
    ("en", True): "cancellation.ics",
}

_Attendee = tuple[str | None, str] | Literal["slot"] | None


def require_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown mail kind {kind!r}; one of {', '.join(KINDS)}")


def require_language(language: str) -> Language:
    if not is_language(language):
        raise ValueError(f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
    return language


def meeting_view(
    kind: str, occ: Occurrence, meeting: MeetingLike | None, sample_meeting: bool
) -> MeetingView | None:
    if meeting is not None:
        return MeetingView.of(meeting)
    if sample_meeting:
        return SAMPLE_MEETING
    if kind == "cancellation":
        return None
    raise TemplateError(
        f"the {kind} of {occ.key} needs the session's Zoom meeting, and it has none"
    )


def session_context(
    kind: str,
    occ: Occurrence,
    language: str,
    view: MeetingView | None,
    *,
    reason: str | None,
    changes: list[str] | None,
    test_send: bool,
    public_url: str,
) -> dict[str, Any]:
    """The fields a session's templates see (templates/README.md lists them for organisers)."""
    series, content, has_texts = localize(
        occ.series, occ.content or SessionContent.model_validate({}), language
    )
    return {
        "kind": kind,
        "language": language,
        "series": series,
        "occ": occ,
        "content": content,
        "own_language": has_texts,
        "when": _when(occ, language),
        "meeting": view,
        "reason": reason if reason is not None else content.reason,
        "changes": list(changes or []),
        "test_send": test_send,
        "public_url": public_url,
        "subscribe_url": subscribe_url(public_url),
        "signature": signature(occ.series, language),
        "_zone": occ.series.zone,  # for the format_time filter
    }


def subscribe_url(public_url: str) -> str:
    """The subscribe page's address, ``{{ subscribe_url }}`` in every mail template."""
    return public_url.rstrip("/") + "/subscribe"


def with_subscribe_url(ctx: dict[str, Any]) -> dict[str, Any]:
    """``ctx`` with ``subscribe_url`` from its ``public_url`` (the confirmation's and an
    announcement's contexts are built elsewhere; every mail template sees the variable)."""
    if "subscribe_url" in ctx or not isinstance(ctx.get("public_url"), str):
        return ctx
    return {**ctx, "subscribe_url": subscribe_url(ctx["public_url"])}


def signature(series: Series, language: str) -> str | None:
    """The plan's ``signature:`` under every mail (its translation in ``language`` if the plan
    has one), or None: then the mail ends with the texts, as the hand-written invitations did."""
    translation = series.texts.translations.get(language)  # type: ignore[call-overload]
    text = getattr(translation, "signature", None) or getattr(series, "signature", None)
    if not isinstance(text, str):
        return None
    lines = [line.rstrip() for line in text.strip().splitlines()]
    return "\n".join(lines) or None


def subject_with_prefix(subject: str, test_send: bool) -> str:
    return (_TEST_PREFIX if test_send else "") + subject


def calendar_filename(language: Language, kind: str) -> str:
    return _CALENDAR_FILE[(language, kind == "cancellation")]


def render_texts(
    templates: Templates,
    kind: str,
    lang: str,
    ctx: dict[str, Any],
    recipient: Recipient | None,
    preview_url: str,
) -> tuple[str, str, str]:
    """Subject, text and HTML; personal values as tokens unless ``recipient`` is given."""
    personal_text, personal_html = _personal_values(templates, lang, recipient, preview_url)
    ctx = with_subscribe_url(ctx)
    txt_name = f"{lang}/{kind}.txt"
    subject = clean_line(templates.block(txt_name, "subject", ctx))
    text = _one_trailing_newline(templates.render(txt_name, {**ctx, **personal_text}))
    html = _one_trailing_newline(
        templates.render(f"{lang}/{kind}.html", {**ctx, **personal_html, "subject": subject})
    )
    return subject, text, html


def _personal_values(
    templates: Templates, lang: str, recipient: Recipient | None, preview_url: str
) -> tuple[dict[str, str], dict[str, str]]:
    if recipient is None:
        personal_text = {n: token(n) for n in _PERSONAL}
        return personal_text, dict(personal_text)
    name = clean_line(recipient.name or "") or None
    url = recipient.unsubscribe_url or preview_url
    personal_text = {
        "salutation": templates.render(f"{lang}/_salutation.txt", {"name": name}),
        "unsubscribe_url": url,
    }
    personal_html = {
        "salutation": Markup(templates.render(f"{lang}/_salutation.html", {"name": name})),
        "unsubscribe_url": url,
    }
    return personal_text, personal_html


def render_salutation(templates: Templates, lang: str) -> Salutation:
    txt, html = f"{lang}/_salutation.txt", f"{lang}/_salutation.html"
    s = Salutation(
        text_named=templates.render(txt, {"name": token("name")}),
        text_anonymous=templates.render(txt, {"name": None}),
        html_named=templates.render(html, {"name": token("name")}),
        html_anonymous=templates.render(html, {"name": None}),
    )
    for name, body in ((txt, s.text_named), (html, s.html_named)):
        if token("name") not in body:
            raise TemplateError(
                "must output {{ name }} unfiltered (it is filled per recipient)", template=name
            )
    return s


def calendar_method(occ: Occurrence, kind: str) -> ics.Method:
    if kind == "cancellation":
        return "CANCEL"
    return "REQUEST" if occ.series.calendar_method == "request" else "PUBLISH"


def render_calendar(
    templates: Templates,
    kind: str,
    lang: str,
    occ: Occurrence,
    ctx: dict[str, Any],
    *,
    method: ics.Method,
    view: MeetingView | None,
    sequence: int,
    now: dt.datetime,
    uid_domain: str,
    recipient: Recipient | None,
) -> bytes:
    """The .ics; a REQUEST has the recipient as ATTENDEE, or a slot for them."""
    cal_name = f"{lang}/calendar.txt"
    summary = clean_line(templates.block(cal_name, "summary", ctx))
    description = templates.block(cal_name, "description", ctx)
    event = ics.CalendarEvent(
        uid=f"{occ.series.id}-{occ.date.isoformat()}@{uid_domain}",
        summary=summary,
        description=description.strip(),
        start=occ.start,
        end=occ.end,
        organiser_name=clean_line(occ.series.organiser.name),
        organiser_email=occ.series.organiser.email,
        sequence=sequence,
        url=view.join_url if view and kind != "cancellation" else None,
    )
    attendee: _Attendee = None
    if method != "PUBLISH":
        if recipient is None:
            attendee = "slot"
        else:
            attendee = (clean_line(recipient.name or "") or None, recipient.email)
    return ics.build_calendar(event, method=method, now=now, attendee=attendee)


# --- helpers ---------------------------------------------------------------------------------


def _one_trailing_newline(s: str) -> str:
    return s.rstrip() + "\n"


@dataclass(frozen=True)
class _When:
    date: str  # "Mittwoch, 26. Februar 2025"
    date_medium: str  # "26.02.2025"
    start: str  # "12:30"
    end: str
    zone: str  # "Mitteleuropäische Normalzeit"


def _when(occ: Occurrence, lang: str) -> _When:
    zone = occ.series.zone
    return _When(
        date=format_date(occ.date, "full", locale=lang),
        date_medium=format_date(occ.date, "medium", locale=lang),
        start=format_time(occ.start, "short", tzinfo=zone, locale=lang),
        end=format_time(occ.end, "short", tzinfo=zone, locale=lang),
        zone=get_timezone_name(occ.start, "long", locale=lang),
    )
