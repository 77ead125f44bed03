"""Invitations, reminders, updates, cancellations and confirmations as complete mail messages.

``Renderer.render`` turns templates (Jinja2, StrictUndefined, autoescaped HTML), Babel dates and an
iCalendar attachment into a :class:`RenderedMailing` once per mailing and language; its
``personalise`` fills in one recipient (To, salutation, unsubscribe links, Message-ID, ATTENDEE)
by joining pre-encoded bytes (see ``personalise.py``), so a large mailing costs one render.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import re
import traceback
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import policy
from email.header import Header
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import quote

import jinja2
from babel.dates import format_date, format_time, get_timezone_name
from markupsafe import Markup, escape

from session_bot.adapters.render import ics
from session_bot.adapters.render.personalise import (
    Segment,
    Slot,
    clean_line,
    fill_tokens,
    format_address,
    join,
    qp_encode,
    safe_header_value,
    slot_names,
    split_slots,
    token,
)
from session_bot.core.errors import ConfigError, TemplateError
from session_bot.core.plan import Occurrence, SessionContent, localize

KINDS = ("invitation", "reminder", "update", "cancellation")
LANGUAGES = ("de", "en")
_PERSONAL = ("salutation", "unsubscribe_url")
_DKIM_HEADERS = (
    b"from", b"to", b"subject", b"date", b"message-id", b"reply-to", b"list-id",
    b"list-unsubscribe", b"list-unsubscribe-post", b"mime-version", b"content-type",
)  # fmt: skip
_CALENDAR_FILE = {
    ("de", False): "einladung.ics",
    ("de", True): "absage.ics",
    ("en", False): "invitation.ics",
    ("en", True): "cancellation.ics",
}
_TEST_PREFIX = "[TEST] "
_PREVIEW_UNSUBSCRIBE = "/unsubscribe/preview"


# --- inputs ----------------------------------------------------------------------------------


class DialInLike(Protocol):
    @property
    def number(self) -> str: ...


class MeetingLike(Protocol):
    """What a mail needs of ``session_bot.adapters.zoom.Meeting``."""

    @property
    def join_url(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def display_id(self) -> str: ...
    @property
    def primary_dial_in(self) -> DialInLike | None: ...
    def one_tap(self) -> str: ...


@dataclass(frozen=True)
class Recipient:
    email: str
    name: str | None
    language: str
    unsubscribe_url: str | None = None  # https…/unsubscribe/<token>; None for confirmation/test
    unsubscribe_mailto: str | None = None  # mailto:…?subject=unsubscribe-<token>


@dataclass(frozen=True)
class DkimConfig:
    selector: str
    domain: str
    private_key: bytes  # PEM

    @classmethod
    def from_file(cls, path: Path, *, selector: str, domain: str) -> DkimConfig:
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"SESSION_BOT_DKIM_KEY_FILE: cannot read {path} ({exc.strerror}); point it at the "
                "PEM private key whose public half is published at "
                f"{selector}._domainkey.{domain}"
            ) from None
        return cls(selector=selector, domain=domain, private_key=key)


@dataclass(frozen=True)
class MailConfig:
    public_url: str
    list_id: str  # e.g. "willkommen.session-bot.example.org"
    from_name: str
    from_email: str
    reply_to: str | None
    message_id_domain: str
    templates_dir: Path | None = None  # organiser's overrides; defaults fill in per file
    dkim: DkimConfig | None = None


@dataclass(frozen=True)
class MeetingView:
    """The join details as templates see them."""

    join_url: str
    display_id: str
    password: str
    dial_in: str | None
    one_tap: str | None
    sample: bool = False

    @property
    def tel_url(self) -> str | None:
        # RFC 3966: "#" would start a fragment, so it is percent-encoded; "," and "*" are pauses/keys
        return "tel:" + quote(self.one_tap, safe="+,*") if self.one_tap else None

    @classmethod
    def of(cls, meeting: MeetingLike) -> MeetingView:
        dial_in = meeting.primary_dial_in
        return cls(
            join_url=meeting.join_url,
            display_id=meeting.display_id,
            password=meeting.password,
            # digits only, as Zoom's one-tap and the hand-written invitations show it
            dial_in=re.sub(r"[^\d+]", "", dial_in.number) if dial_in else None,
            one_tap=meeting.one_tap() if dial_in else None,
        )


SAMPLE_MEETING = MeetingView(
    join_url="https://zoom.example/j/12345678901",
    display_id="123 4567 8901",
    password="000000",
    dial_in="+490000000000",
    one_tap="+490000000000,,12345678901#,,,,*000000#",
    sample=True,
)


# --- output ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailParts:
    """Rendered parts of one message."""

    subject: str
    text: str
    html: str
    ics: bytes | None
    calendar_method: str | None = None
    calendar_filename: str | None = None


@dataclass(frozen=True)
class _Salutation:
    text_named: str  # contains token("name")
    text_anonymous: str
    html_named: str
    html_anonymous: str


@dataclass
class RenderedMailing:
    """One mailing in one language, rendered once; ``personalise`` per recipient."""

    kind: str
    language: str
    subject: str
    text: str  # generic parts for preview (no salutation, preview unsubscribe link)
    html: str
    ics: bytes | None
    bulk: bool
    test_send: bool
    _config: MailConfig
    _segments: list[Segment]
    _salutation: _Salutation
    _ics_halves: tuple[bytes, bytes] | None = None  # REQUEST: calendar around the ATTENDEE line
    _slots: frozenset[Slot] = field(default_factory=frozenset)

    def personalise(self, recipient: Recipient, *, message_id: str, date: dt.datetime) -> bytes:
        """The complete RFC 5322 message for ``recipient`` (CRLF line ends), DKIM-signed if set up."""
        message = self._fill(recipient, message_id, date)
        dkim = self._config.dkim
        return _dkim_sign(message, dkim) + message if dkim else message

    def preview_bytes(self, *, date: dt.datetime, message_id: str = "<preview@localhost>") -> bytes:
        """The message as an anonymous test recipient would get it (``preview --format eml``)."""
        preview_url = self._config.public_url + _PREVIEW_UNSUBSCRIBE
        to = Recipient("preview@example.invalid", None, self.language, preview_url)
        return self._fill(to, message_id, date)

    def _fill(self, recipient: Recipient, message_id: str, date: dt.datetime) -> bytes:
        name = clean_line(recipient.name or "") or None
        url = recipient.unsubscribe_url
        if url is None and self.bulk and not self.test_send:
            raise ValueError(f"{self.kind} mail to {recipient.email} needs an unsubscribe link")
        shown_url = url or self._config.public_url + _PREVIEW_UNSUBSCRIBE
        values: dict[Slot, bytes] = {
            Slot("headers", "personal"): self._headers(recipient, message_id, date)
        }
        sal = self._salutation
        for slot in self._slots:
            if slot.part == "text" and slot.name == "salutation":
                text = sal.text_named.replace(token("name"), name) if name else sal.text_anonymous
                values[slot] = qp_encode(text)
            elif slot.part == "html" and slot.name == "salutation":
                html = (
                    sal.html_named.replace(token("name"), str(escape(name)))
                    if name
                    else sal.html_anonymous
                )
                values[slot] = qp_encode(html)
            elif slot.name == "unsubscribe_url":
                values[slot] = qp_encode(
                    str(escape(shown_url)) if slot.part == "html" else shown_url
                )
            elif slot.part == "ics" and self._ics_halves:
                head, tail = self._ics_halves
                cal = head + ics.attendee_line(name, recipient.email) + tail
                values[slot] = base64.encodebytes(cal).replace(b"\n", b"\r\n")
        return join(self._segments, values)

    def _headers(self, r: Recipient, message_id: str, date: dt.datetime) -> bytes:
        if date.tzinfo is None:
            raise ValueError("Date header needs an aware datetime")
        mid = safe_header_value(
            message_id.strip().removeprefix("<").removesuffix(">"), "Message-ID"
        )
        lines = [
            f"To: {format_address(r.name, r.email)}",
            f"Date: {format_datetime(date)}",
            f"Message-ID: <{mid}>",
        ]
        if self.bulk and r.unsubscribe_url:
            links = [f"<{safe_header_value(r.unsubscribe_url, 'unsubscribe URL')}>"]
            if r.unsubscribe_mailto:
                links.append(f"<{safe_header_value(r.unsubscribe_mailto, 'unsubscribe mailto')}>")
            lines.append("List-Unsubscribe: " + ",\r\n ".join(links))
            lines.append("List-Unsubscribe-Post: List-Unsubscribe=One-Click")
        return ("\r\n".join(lines) + "\r\n").encode("utf-8")


def _dkim_sign(message: bytes, cfg: DkimConfig) -> bytes:
    import dkim  # optional dependency (extra "dkim"); only needed when a key is configured

    head = message.split(b"\r\n\r\n", 1)[0].lower()
    present = [h for h in _DKIM_HEADERS if head.startswith(h + b":") or b"\r\n" + h + b":" in head]
    try:
        return bytes(
            dkim.sign(
                message,
                cfg.selector.encode(),
                cfg.domain.encode(),
                cfg.private_key,
                canonicalize=(b"relaxed", b"relaxed"),
                include_headers=present,
                linesep=b"\r\n",
            )
        )
    except dkim.DKIMException as exc:
        raise ConfigError(
            f"DKIM signing failed ({exc}); SESSION_BOT_DKIM_KEY_FILE must be an unencrypted PEM "
            "RSA private key, SESSION_BOT_DKIM_SELECTOR and SESSION_BOT_DKIM_DOMAIN plain names"
        ) from None


# --- the renderer ----------------------------------------------------------------------------


def default_templates_dir() -> Path:
    """``templates/`` inside the wheel, else the source checkout's top-level ``templates/``."""
    package = Path(__file__).resolve().parents[2]  # session_bot/
    packaged = package / "templates"
    return packaged if packaged.is_dir() else package.parents[1] / "templates"


def _fold_encoded(name: str, value: str) -> str:
    """A folded header line, RFC 2047-encoded when not ASCII (policy.SMTP leaves short ones raw)."""
    if value.isascii():
        return str(policy.SMTP.fold(name, value))
    encoded = Header(value, "utf-8", maxlinelen=76, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}\r\n"


class Renderer:
    """Renders every kind of mail of one series configuration."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config
        dirs = [config.templates_dir] if config.templates_dir else []
        self._dirs = [d.resolve() for d in [*dirs, default_templates_dir()]]
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(d) for d in self._dirs]),
            undefined=jinja2.StrictUndefined,
            autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default=False),
            trim_blocks=True,
            lstrip_blocks=True,
            keep_trailing_newline=True,
            auto_reload=False,
        )
        self.env.filters["format_date"] = _filter_date
        self.env.filters["format_time"] = _filter_time
        if config.dkim:
            _dkim_sign(b"From: a@b.example\r\nSubject: key check\r\n\r\nx\r\n", config.dkim)

    # -- public API --

    def render(
        self,
        kind: str,
        occ: Occurrence,
        meeting: MeetingLike | None,
        *,
        sequence: int,
        now: dt.datetime,
        language: str | None = None,
        reason: str | None = None,
        changes: list[str] | None = None,
        test_send: bool = False,
        sample_meeting: bool = False,
    ) -> RenderedMailing:
        lang = language or occ.series.language
        parts = self.render_parts(
            kind, occ, meeting, sequence=sequence, now=now, language=lang, reason=reason,
            changes=changes, test_send=test_send, sample_meeting=sample_meeting,
        )  # fmt: skip
        return self._assemble(
            kind, lang, parts, self._salutation(lang), occ.series.title, test_send=test_send
        )

    def render_confirmation(
        self, *, language: str, confirm_url: str, series_title: str, now: dt.datetime
    ) -> RenderedMailing:
        """The double-opt-in mail: no unsubscribe headers, no calendar."""
        parts = self.confirmation_parts(
            language=language, confirm_url=confirm_url, series_title=series_title
        )
        return self._assemble(
            "confirmation", language, parts, self._salutation(language), series_title
        )

    def render_parts(
        self,
        kind: str,
        occ: Occurrence,
        meeting: MeetingLike | None,
        *,
        sequence: int,
        now: dt.datetime,
        language: str,
        reason: str | None = None,
        changes: list[str] | None = None,
        test_send: bool = False,
        sample_meeting: bool = False,
        recipient: Recipient | None = None,
    ) -> MailParts:
        """Subject, text, HTML and .ics of one mail; personal values as slots unless ``recipient``.

        With a recipient this is the slow, straightforward rendering that tests hold the fast
        ``personalise`` against.
        """
        if kind not in KINDS:
            raise ValueError(f"unknown mail kind {kind!r}; one of {', '.join(KINDS)}")
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
        if meeting is not None:
            view: MeetingView | None = MeetingView.of(meeting)
        elif sample_meeting:
            view = SAMPLE_MEETING
        elif kind == "cancellation":
            view = None
        else:
            raise ValueError(
                f"{kind} for {occ.key} needs the session's meeting (or sample_meeting)"
            )
        series, content, has_texts = localize(
            occ.series, occ.content or SessionContent.model_validate({}), language
        )
        ctx: dict[str, Any] = {
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
            "public_url": self.config.public_url,
            "_zone": occ.series.zone,
        }
        subject, text, html = self._render_kind(kind, language, ctx, recipient)
        cal_name = f"{language}/calendar.txt"
        summary = clean_line(self._block(cal_name, "summary", ctx))
        description = self._block(cal_name, "description", ctx)
        calendar = self._series_method(occ, kind)
        event = ics.CalendarEvent(
            uid=f"{occ.series.id}-{occ.date.isoformat()}@{self.config.message_id_domain}",
            summary=summary,
            description=description.strip(),
            start=occ.start,
            end=occ.end,
            organiser_name=clean_line(occ.series.organiser.name),
            organiser_email=occ.series.organiser.email,
            sequence=sequence,
            url=view.join_url if view and kind != "cancellation" else None,
        )
        attendee: tuple[str | None, str] | str | None = None
        if calendar != "PUBLISH":
            if recipient is None:
                attendee = "slot"
            else:
                attendee = (clean_line(recipient.name or "") or None, recipient.email)
        data = ics.build_calendar(event, method=calendar, now=now, attendee=attendee)  # type: ignore[arg-type]
        return MailParts(
            subject=(_TEST_PREFIX if test_send else "") + subject,
            text=text,
            html=html,
            ics=data,
            calendar_method=calendar,
            calendar_filename=_CALENDAR_FILE[(language, kind == "cancellation")],
        )

    def confirmation_parts(
        self,
        *,
        language: str,
        confirm_url: str,
        series_title: str,
        recipient: Recipient | None = None,
    ) -> MailParts:
        if language not in LANGUAGES:
            raise ValueError(f"unknown language {language!r}; one of {', '.join(LANGUAGES)}")
        ctx: dict[str, Any] = {
            "kind": "confirmation",
            "language": language,
            "series_title": series_title,
            "confirm_url": confirm_url,
            "public_url": self.config.public_url,
        }
        subject, text, html = self._render_kind("confirmation", language, ctx, recipient)
        return MailParts(subject=subject, text=text, html=html, ics=None)

    def check(self, occurrences: Iterable[Occurrence], now: dt.datetime) -> list[str]:
        """Render every template against every session (sample meeting); list the problems.

        Each problem reads ``template:line: message (rendering …)``; one per template problem.
        """
        problems: list[str] = []

        def note(exc: TemplateError, what: str) -> None:
            if not any(p.startswith(str(exc)) for p in problems):
                problems.append(f"{exc} (rendering {what})")

        for lang in LANGUAGES:
            try:
                self._salutation(lang)
                self.confirmation_parts(
                    language=lang, confirm_url="https://example.invalid/confirm", series_title="…"
                )
            except TemplateError as exc:
                note(exc, f"{lang}/confirmation")
        for occ in occurrences:
            if occ.skip_reason:
                continue
            reason = (occ.content.reason if occ.content else None) or "(Beispielgrund)"
            for kind in KINDS:
                for lang in LANGUAGES:
                    try:
                        parts = self.render_parts(
                            kind, occ, None, sequence=0, now=now, language=lang,
                            sample_meeting=True, reason=reason, changes=["(Beispieländerung)"],
                        )  # fmt: skip
                    except TemplateError as exc:
                        note(exc, f"{kind} in {lang} for {occ.key}")
                        continue
                    for ext, body in (("txt", parts.text), ("html", parts.html)):
                        problem = (
                            f"{lang}/{kind}.{ext}: no visible unsubscribe link; keep "
                            "{{ unsubscribe_url }} (unfiltered) in it, bulk mail must show one"
                        )
                        if "unsubscribe_url" not in slot_names(body) and problem not in problems:
                            problems.append(problem)
        return problems

    # -- internals --

    @staticmethod
    def _series_method(occ: Occurrence, kind: str) -> str:
        if kind == "cancellation":
            return "CANCEL"
        return "REQUEST" if occ.series.calendar_method == "request" else "PUBLISH"

    def _render_kind(
        self, kind: str, lang: str, ctx: dict[str, Any], recipient: Recipient | None
    ) -> tuple[str, str, str]:
        if recipient is None:
            personal_text = {n: token(n) for n in _PERSONAL}
            personal_html = dict(personal_text)
        else:
            name = clean_line(recipient.name or "") or None
            url = recipient.unsubscribe_url or self.config.public_url + _PREVIEW_UNSUBSCRIBE
            personal_text = {
                "salutation": self._render(f"{lang}/_salutation.txt", {"name": name}),
                "unsubscribe_url": url,
            }
            personal_html = {
                "salutation": Markup(self._render(f"{lang}/_salutation.html", {"name": name})),
                "unsubscribe_url": url,
            }
        txt_name = f"{lang}/{kind}.txt"
        subject = clean_line(self._block(txt_name, "subject", ctx))
        text = _one_trailing_newline(self._render(txt_name, {**ctx, **personal_text}))
        html = _one_trailing_newline(
            self._render(f"{lang}/{kind}.html", {**ctx, **personal_html, "subject": subject})
        )
        return subject, text, html

    def _salutation(self, lang: str) -> _Salutation:
        txt, html = f"{lang}/_salutation.txt", f"{lang}/_salutation.html"
        s = _Salutation(
            text_named=self._render(txt, {"name": token("name")}),
            text_anonymous=self._render(txt, {"name": None}),
            html_named=self._render(html, {"name": token("name")}),
            html_anonymous=self._render(html, {"name": None}),
        )
        for name, body in ((txt, s.text_named), (html, s.html_named)):
            if token("name") not in body:
                raise TemplateError(
                    "must output {{ name }} unfiltered (it is filled per recipient)", template=name
                )
        return s

    def _render(self, name: str, ctx: dict[str, Any]) -> str:
        with self._template_errors(name):
            return self.env.get_template(name).render(ctx)
        raise AssertionError("unreachable")

    def _block(self, name: str, block: str, ctx: dict[str, Any]) -> str:
        with self._template_errors(name):
            tmpl = self.env.get_template(name)
            render = tmpl.blocks.get(block)
            if render is None:
                raise TemplateError(
                    f"must define {{% block {block} %}}…{{% endblock %}}", template=name
                )
            try:
                return "".join(render(tmpl.new_context(ctx)))
            except Exception:  # Jinja's own idiom: re-raised with template file and line
                self.env.handle_exception()
        raise AssertionError("unreachable")

    @contextmanager
    def _template_errors(self, name: str) -> Iterator[None]:
        """Translate Jinja errors into ``TemplateError`` naming template, line and field."""
        try:
            yield
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                f"syntax error: {exc.message}; see https://jinja.palletsprojects.com/templates/",
                template=exc.name or name,
                line=exc.lineno,
            ) from None
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(
                f"template {exc.name} not found in {', '.join(map(str, self._dirs))}; "
                "restore it or remove the override directory setting",
                template=name,
            ) from None
        except jinja2.UndefinedError as exc:
            where, line = self._locate(exc, name)
            field_name = _missing_field(exc.message or "")
            raise TemplateError(
                f"missing field {field_name} ({exc.message}); use a field listed in "
                "templates/README.md or guard it with {% if … is defined %}",
                template=where,
                line=line,
            ) from None
        except jinja2.TemplateError as exc:
            where, line = self._locate(exc, name)
            raise TemplateError(f"{exc.message}", template=where, line=line) from None

    def _locate(self, exc: BaseException, fallback: str) -> tuple[str, int | None]:
        for frame in reversed(traceback.extract_tb(exc.__traceback__)):
            path = Path(frame.filename)
            for d in self._dirs:
                if path.is_relative_to(d):
                    return path.relative_to(d).as_posix(), frame.lineno
        return fallback, None

    def _assemble(
        self,
        kind: str,
        lang: str,
        parts: MailParts,
        salutation: _Salutation,
        list_name: str,
        test_send: bool = False,
    ) -> RenderedMailing:
        bulk = kind != "confirmation"
        digest = hashlib.sha256((parts.text + parts.html).encode() + (parts.ics or b"")).hexdigest()
        outer, inner = f"=_sb_{digest[:24]}_m", f"=_sb_{digest[:24]}_a"
        qp_head = 'Content-Type: text/{}; charset="utf-8"\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n'
        alternative: list[Segment] = [
            f'Content-Type: multipart/alternative;\r\n boundary="{inner}"\r\n\r\n'.encode(),
            f"--{inner}\r\n{qp_head.format('plain')}".encode(),
            *split_slots(parts.text, "text"),
            f"\r\n--{inner}\r\n{qp_head.format('html')}".encode(),
            *split_slots(parts.html, "html"),
            f"\r\n--{inner}--\r\n".encode(),
        ]
        ics_halves: tuple[bytes, bytes] | None = None
        if parts.ics is None:
            body = alternative
        else:
            fname, method = parts.calendar_filename, parts.calendar_method
            if ics.ATTENDEE_SLOT in parts.ics:
                head, tail = parts.ics.split(ics.ATTENDEE_SLOT)
                ics_halves = (head, tail)
                cal: Segment = Slot("ics", "attendee")
            else:
                cal = base64.encodebytes(parts.ics).replace(b"\n", b"\r\n")
            body = [
                f'Content-Type: multipart/mixed;\r\n boundary="{outer}"\r\n\r\n--{outer}\r\n'.encode(),
                *alternative,
                (
                    f"\r\n--{outer}\r\n"
                    f'Content-Type: text/calendar; charset="utf-8"; method={method};\r\n name="{fname}"\r\n'
                    f'Content-Disposition: attachment; filename="{fname}"\r\n'
                    "Content-Transfer-Encoding: base64\r\n\r\n"
                ).encode(),
                cal,
                f"\r\n--{outer}--\r\n".encode(),
            ]
        segments: list[Segment] = [
            Slot("headers", "personal"),
            self._static_headers(parts, lang, bulk, list_name),
            *body,
        ]
        preview = {
            "salutation": "",
            "unsubscribe_url": self.config.public_url + _PREVIEW_UNSUBSCRIBE,
        }
        generic_ics = parts.ics.replace(ics.ATTENDEE_SLOT, b"") if parts.ics else None
        return RenderedMailing(
            kind=kind,
            language=lang,
            subject=parts.subject,
            text=fill_tokens(parts.text, preview),
            html=fill_tokens(parts.html, preview),
            ics=generic_ics,
            bulk=bulk,
            test_send=test_send,
            _config=self.config,
            _segments=segments,
            _salutation=salutation,
            _ics_halves=ics_halves,
            _slots=frozenset(s for s in segments if isinstance(s, Slot)),
        )

    def _static_headers(self, parts: MailParts, lang: str, bulk: bool, list_name: str) -> bytes:
        c = self.config
        fold = _fold_encoded
        out = [
            f"From: {format_address(c.from_name, c.from_email, 'From')}\r\n",
            f"Reply-To: {format_address(None, c.reply_to, 'Reply-To')}\r\n" if c.reply_to else "",
            fold("Subject", clean_line(parts.subject)),
            "MIME-Version: 1.0\r\n",
            f"Content-Language: {lang}\r\n",
        ]
        if bulk:
            list_id = safe_header_value(c.list_id, "List-Id")
            name = clean_line(list_name)
            phrase = _phrase(name) if name.isascii() else Header(name, "utf-8").encode()
            out.append(f"List-Id: {phrase} <{list_id}>\r\n")
        return "".join(out).encode("utf-8")


# --- helpers ---------------------------------------------------------------------------------


def _phrase(name: str) -> str:
    name = clean_line(name).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{name}"'


def _one_trailing_newline(s: str) -> str:
    return s.rstrip() + "\n"


def _missing_field(message: str) -> str:
    m = re.search(r"has no attribute '([^']+)'", message) or re.search(
        r"'([^']+)' is undefined", message
    )
    return repr(m.group(1)) if m else "?"


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


@jinja2.pass_context
def _filter_date(ctx: jinja2.runtime.Context, value: dt.date, fmt: str = "full") -> str:
    return format_date(value, fmt, locale=ctx["language"])


@jinja2.pass_context
def _filter_time(ctx: jinja2.runtime.Context, value: dt.datetime, fmt: str = "short") -> str:
    return format_time(value, fmt, tzinfo=ctx.get("_zone"), locale=ctx["language"])
