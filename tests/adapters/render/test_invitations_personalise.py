"""Fast personalisation (byte slots) against the slow way (full render + EmailMessage).

For a few hundred awkward recipients both messages must parse to the same headers and the same
decoded parts. The slow message renders the templates with the real values and lets the standard
library do all encoding, so it shares nothing with the fast path but the templates.
"""

from __future__ import annotations

import datetime as dt
import email
import itertools
import re
from email import policy
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.message import EmailMessage

import pytest
from icalendar import Calendar

from session_bot.adapters.render.invitations import MailConfig, MailParts, Recipient, Renderer
from session_bot.core.plan import Occurrence
from session_bot.core.plan.localize import localized_title
from tests.support.invitations import NOW, config, meeting, occurrence, parse

NAMES = [
    None,
    "",
    "Anna Müller",
    "Jürgen Groß-Übel",
    'Karl "Kalle" O\'Neill',
    "<script>alert('x')</script>",
    "Eve\r\nBcc: victim@example.org",
    "Mallory\nSubject: hijacked",
    "Zoë & Søren <zs@example.org>",
    "Dr. Anna-Lena von Hohenzollern-Sigmaringen-Müller-Lüdenscheidt-Überlingen",
    "李小龙",
    "Tab\tName, Jr.",
    "=?utf-8?q?not_really?=",
    "Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé Ünïcödé",
    "a" * 120,
]
URL_TOKENS = ["abc", "x-y_z.1", "A%20B", "q?a=1&b=<2>", "tok'en\"s"]


def recipients(count: int) -> list[Recipient]:
    out = []
    for i, (name, tok) in enumerate(
        itertools.islice(itertools.cycle(itertools.product(NAMES, URL_TOKENS)), count)
    ):
        safe_tok = tok.replace("<", "%3C").replace(">", "%3E").replace('"', "%22")
        out.append(
            Recipient(
                email=f"user{i}@example.org",
                name=name,
                language="de",
                unsubscribe_url=f"https://sb.example.org/unsubscribe/{safe_tok}",
                unsubscribe_mailto=f"mailto:unsubscribe@sb.example.org?subject=unsubscribe-{i}",
            )
        )
    return out


def slow_message(
    cfg: MailConfig, parts: MailParts, r: Recipient, *, list_title: str | None, mid: str, lang: str
) -> bytes:
    msg = EmailMessage(policy=policy.SMTP)
    msg["To"] = Address(display_name=" ".join((r.name or "").split()), addr_spec=r.email)
    msg["Date"] = NOW
    msg["Message-ID"] = mid
    if list_title is not None and r.unsubscribe_url:
        msg["List-Unsubscribe"] = f"<{r.unsubscribe_url}>, <{r.unsubscribe_mailto}>"
        msg["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    msg["From"] = Address(display_name=cfg.from_name, addr_spec=cfg.from_email)
    if cfg.reply_to:
        msg["Reply-To"] = cfg.reply_to
    msg["Subject"] = parts.subject
    if list_title is not None:
        msg["List-Id"] = f'"{list_title}" <{cfg.list_id}>'
    msg.set_content(parts.text, cte="quoted-printable")
    msg.add_alternative(parts.html, subtype="html", cte="quoted-printable")
    if parts.ics is not None:
        msg.add_attachment(
            parts.ics, maintype="text", subtype="calendar", filename=parts.calendar_filename,
            params={"method": parts.calendar_method, "charset": "utf-8"},
        )  # fmt: skip
    msg["Content-Language"] = lang  # set last: set_content/make_mixed move Content-* headers
    return msg.as_bytes()


def summary(raw: bytes) -> tuple[list[tuple[str, str]], list[tuple[str, object]]]:
    """Headers (decoded, boundary removed) and leaf parts (type, params, decoded content)."""
    msg = parse(raw)
    raw_headers = email.message_from_bytes(raw, policy=policy.compat32)
    headers = []
    for name, value in msg.items():
        if name.lower() == "content-type":
            value = msg.get_content_type()
        elif name.lower() in ("to", "from"):
            value = _address(raw_headers[name])
        headers.append((name.lower(), str(value)))
    leaves: list[tuple[str, object]] = []
    for part in msg.walk():
        if part.is_multipart():
            leaves.append((part.get_content_type(), None))
            continue
        ctype = part.get_content_type()
        params = (part.get_param("method"), part.get_filename(), part.get_content_disposition())
        if ctype == "text/calendar":
            payload = part.get_payload(decode=True)
            assert isinstance(payload, bytes)
            content: object = _calendar_lines(payload)
        else:
            content = str(part.get_content()).replace("\r\n", "\n")
        leaves.append((ctype, (params, content)))
    return sorted(headers), leaves


def _address(raw: str) -> tuple[str, str]:
    """RFC 2047-correct reading of ``name <addr>``.

    CPython's modern parser inserts a space between adjacent encoded-words of a display name
    (RFC 2047 says to drop the whitespace), so it cannot judge where a long name was split.
    """
    raw = re.sub(r"\r?\n(?=[ \t])", "", raw)
    name, _, addr = raw.rpartition("<")
    if not name:
        return "", raw.strip()
    name = str(make_header(decode_header(name.strip())))
    if len(name) >= 2 and name[0] == name[-1] == '"':
        name = re.sub(r"\\(.)", r"\1", name[1:-1])
    return name, addr.rstrip(">").strip()


def _calendar_lines(data: bytes) -> list[str]:
    """Unfolded content lines, sorted: property order inside a component carries no meaning."""
    Calendar.from_ical(data)  # parses
    return sorted(data.decode().replace("\r\n ", "").splitlines())


CASES = [
    ("invitation", dt.date(2025, 2, 26), {}),
    ("reminder", dt.date(2025, 3, 26), {"language": "en"}),
    ("update", dt.date(2025, 4, 30), {"calendar_method": "request"}),
    ("cancellation", dt.date(2025, 5, 28), {"calendar_method": "request"}),
]


@pytest.mark.parametrize(("kind", "day", "variant"), CASES)
def test_fast_personalisation_equals_the_slow_way(
    kind: str, day: dt.date, variant: dict[str, str]
) -> None:
    lang = variant.get("language", "de")
    series_changes = {k: v for k, v in variant.items() if k != "language"}
    occ: Occurrence = occurrence(day, **series_changes)
    cfg = config()
    renderer = Renderer(cfg)
    m = None if kind == "cancellation" else meeting(occ, 81234567890, "246810")
    kw = {
        "sequence": 3,
        "now": NOW,
        "language": lang,
        "changes": ["Neue Uhrzeit: 13:00 <b>"],
        "reason": "Sturm & Regen",
    }
    mailing = renderer.render(kind, occ, m, **kw)  # type: ignore[arg-type]
    method = mailing.ics and (b"METHOD:REQUEST" in mailing.ics or b"METHOD:CANCEL" in mailing.ics)
    assert method is not None
    for i, r in enumerate(recipients(240)):
        mid = f"<{i}.{kind}@sb.example.org>"
        fast = mailing.personalise(r, message_id=mid, date=NOW)
        parts = renderer.render_parts(kind, occ, m, recipient=r, **kw)  # type: ignore[arg-type]
        slow = slow_message(
            cfg, parts, r, list_title=localized_title(occ.series, lang), mid=mid, lang=lang
        )
        assert summary(fast) == summary(slow), f"recipient {i}: {r.name!r}"
        assert b"\n" not in fast.replace(b"\r\n", b""), "CRLF only"
        head, body = fast.split(b"\r\n\r\n", 1)
        assert max(len(line) for line in body.split(b"\r\n")) <= 78
        assert max(len(line) for line in head.split(b"\r\n")) <= (
            78 if r.name != "a" * 120 else 998
        )


def test_fast_confirmation_equals_the_slow_way() -> None:
    cfg = config()
    renderer = Renderer(cfg)
    kw = {
        "language": "de",
        "confirm_url": "https://sb.example.org/confirm/a?b=1&c=2",
        "series_title": "Willkommen",
    }
    mailing = renderer.render_confirmation(now=NOW, **kw)
    for i, r in enumerate(recipients(60)):
        r = Recipient(r.email, r.name, "de")
        fast = mailing.personalise(r, message_id=f"<c{i}@x>", date=NOW)
        slow = slow_message(
            cfg,
            renderer.confirmation_parts(recipient=r, **kw),
            r,
            list_title=None,
            mid=f"<c{i}@x>",
            lang="de",
        )
        assert summary(fast) == summary(slow)


def test_html_escaping_of_personal_values() -> None:
    occ = occurrence(dt.date(2025, 2, 26))
    mailing = Renderer(config()).render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    r = Recipient(
        "x@example.org",
        "<script>alert('x')</script>",
        "de",
        "https://sb.example.org/u/a?b=1&c=2",
        None,
    )
    html = str(
        parse(mailing.personalise(r, message_id="<h@x>", date=NOW))
        .get_body(("html",))
        .get_content()
    )  # type: ignore[union-attr]
    assert "<script>" not in html
    assert "Guten Tag &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;," in html
    assert 'href="https://sb.example.org/u/a?b=1&amp;c=2"' in html
