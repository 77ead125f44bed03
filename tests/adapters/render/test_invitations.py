"""Invitations: the seed reproduced line for line, headers, templates, errors, DKIM, SMTP."""

from __future__ import annotations

import base64
import datetime as dt
import re
import smtplib
import subprocess
from pathlib import Path

import dkim
import pytest

from session_bot.adapters.render.invitations import DkimConfig, Recipient
from session_bot.core.errors import TemplateError
from session_bot.core.plan import occurrences
from tests.support.invitations import (
    NOW,
    SEED,
    SEED_JOIN_URL,
    calendar_part,
    html_part,
    meeting,
    occurrence,
    parse,
    plan,
    recipient,
    renderer,
    text_part,
)
from tests.support.smtp_server import SmtpServer

SEED_DAY = dt.date(2025, 2, 26)
SEED_LINES = SEED.read_text(encoding="utf-8").splitlines()


def seed_invitation(name: str | None, **render_kw: object) -> bytes:
    occ = occurrence(SEED_DAY)
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW, **render_kw)  # type: ignore[arg-type]
    return mailing.personalise(recipient(name), message_id="<m1.r1@sb.example.org>", date=NOW)


def split_footer(lines: list[str]) -> tuple[list[str], list[str]]:
    """Body lines and footer lines (from the blank line before the signature separator)."""
    sep = lines.index("-- ")
    assert lines[sep - 1] == "", "footer is separated by a blank line"
    return lines[: sep - 1], lines[sep - 1 :]


# --- the seed --------------------------------------------------------------------------------


def test_plain_text_reproduces_the_seed_line_for_line_without_a_name() -> None:
    body, footer = split_footer(text_part(parse(seed_invitation(None))).splitlines())
    assert body[:2] == ["Guten Tag,", ""]  # the seed after the greeting without a name
    assert body[2:] == SEED_LINES
    assert footer[1:] == [
        "-- ",
        "Sie erhalten diese E-Mail, weil Sie die Veranstaltungsreihe „Willkommen: Online Austausch“ abonniert haben.",
        "Abmelden: https://sb.example.org/unsubscribe/tok1",
    ]


def test_plain_text_with_a_known_name_adds_only_a_salutation() -> None:
    body, _ = split_footer(text_part(parse(seed_invitation("Anna Müller"))).splitlines())
    assert body[:2] == ["Guten Tag Anna Müller,", ""]
    assert body[2:] == SEED_LINES


def test_seed_values_come_from_babel_plan_and_meeting() -> None:
    text = text_part(parse(seed_invitation(None)))
    # the checks the issue names, so a seed edit cannot hide a formatting regression
    for line in (
        "Mittwoch, 26. Februar 2025",
        "von 12:30-13:30 Uhr",
        "Willkommen: Online Austausch –",
        "Welcome-Strukturen zur Integration vor Ort",
        "Meeting-ID: 665 4767 7759, Kenncode: 717531, Schnelleinwahl mobil +496950500952",
        SEED_JOIN_URL,
    ):
        assert line in text.splitlines()


def test_long_paragraphs_are_not_hard_wrapped_but_qp_encoded() -> None:
    raw = seed_invitation(None)
    assert all(len(line) <= 78 for line in raw.split(b"\r\n")), "QP keeps encoded lines short"
    longest = max(text_part(parse(raw)).splitlines(), key=len)
    assert len(longest) > 500, "the intro paragraph stays one line after decoding"


def test_other_dates_and_english_use_babel_formats() -> None:
    occ = occurrence(dt.date(2025, 10, 29))
    de = renderer().render(
        "invitation", occ, meeting(occ), sequence=0, now=NOW, sample_meeting=False
    )
    assert "Mittwoch, 29. Oktober 2025" in de.text.splitlines()
    en = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW, language="en")
    assert "Wednesday, October 29, 2025" in en.text.splitlines()
    # CLDR puts a narrow no-break space before AM/PM.
    assert "from 12:30\u202fPM to 1:30\u202fPM (Central European Standard Time)" in (
        en.text.splitlines()
    )
    # The plan's English texts (series.texts.translations.en) name the series in English.
    assert en.subject.startswith("Invitation: Welcome: Online Exchange")


def test_english_mail_without_translations_keeps_the_plan_texts_and_own_wording() -> None:
    import dataclasses

    from session_bot.core.plan import Texts

    occ = occurrence(dt.date(2025, 2, 26))
    bare = occ.series.model_copy(update={"texts": Texts(closing=occ.series.texts.closing)})
    content = occ.content.model_copy(update={"translations": {}}) if occ.content else None
    occ = dataclasses.replace(occ, series=bare, content=content)
    en = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW, language="en")
    lines = en.text.splitlines()
    assert en.subject.startswith("Invitation: Willkommen: Online Austausch")
    assert "You are warmly invited to" in lines
    assert "Akteursübergreifende Zusammenarbeit und" in lines  # the German topic, untranslated
    assert not any(line.startswith("Wir bieten auch") for line in lines)  # German closing left out


def test_english_translation_of_the_seed_session() -> None:
    occ = occurrence(dt.date(2025, 2, 26))
    en = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW, language="en")
    lines = en.text.splitlines()
    assert "Working together across institutions:" in lines
    assert "welcome structures for local integration" in lines
    assert any(line.startswith("Again this year we hold this exchange") for line in lines)
    de = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    assert "Akteursübergreifende Zusammenarbeit und" in de.text.splitlines()


# --- headers ---------------------------------------------------------------------------------


def test_headers_of_a_bulk_invitation() -> None:
    raw = seed_invitation("Jürgen Groß")
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\n" not in head.replace(b"\r\n", b""), "CRLF line endings only"
    assert head.isascii(), "non-ASCII only as RFC 2047 encoded-words"
    msg = parse(raw)
    assert msg["From"].addresses[0].display_name == "Kristina Neumann"
    assert msg["From"].addresses[0].addr_spec == "kristina.neumann@bertelsmann-stiftung.de"
    assert str(msg["Reply-To"]) == "kristina.neumann@bertelsmann-stiftung.de"
    assert len(msg.get_all("To")) == 1
    assert [a.display_name for a in msg["To"].addresses] == ["Jürgen Groß"]
    assert msg["Subject"] == "Einladung: Willkommen: Online Austausch am 26.02.2025"
    assert msg["Date"].datetime == NOW
    assert msg["Message-ID"] == "<m1.r1@sb.example.org>"
    assert msg["List-Id"] == '"Willkommen: Online Austausch" <willkommen.sb.example.org>'
    assert re.fullmatch(
        r"<https://sb\.example\.org/unsubscribe/tok1>,\s*<mailto:unsubscribe@sb\.example\.org\?subject=unsubscribe-tok1>",
        str(msg["List-Unsubscribe"]),
    )
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert msg.get_content_type() == "multipart/mixed"
    assert 'href="https://sb.example.org/unsubscribe/tok1"' in html_part(msg)


def test_umlaut_subject_is_rfc2047_encoded() -> None:
    occ = occurrence(SEED_DAY)
    mailing = renderer().render("update", occ, meeting(occ), sequence=1, now=NOW)
    raw = mailing.personalise(recipient(), message_id="<u@x>", date=NOW)
    subject_line = re.search(rb"^Subject: .*?(?=\r\n\S)", raw, re.M | re.S)
    assert subject_line is not None and subject_line.group(0).isascii()
    assert parse(raw)["Subject"] == mailing.subject


def test_confirmation_has_no_list_headers_and_no_calendar() -> None:
    mailing = renderer().render_confirmation(
        language="de", confirm_url="https://sb.example.org/confirm/abc?x=1&y=2",
        series_title="Willkommen: Online Austausch", now=NOW,
    )  # fmt: skip
    raw = mailing.personalise(
        Recipient(email="neu@example.org", name=None, language="de"), message_id="<c@x>", date=NOW
    )
    msg = parse(raw)
    for header in ("List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"):
        assert msg[header] is None
    assert msg.get_content_type() == "multipart/alternative"
    assert "https://sb.example.org/confirm/abc?x=1&y=2" in text_part(msg).splitlines()
    assert 'href="https://sb.example.org/confirm/abc?x=1&amp;y=2"' in html_part(msg)
    assert msg["Subject"].startswith("Bitte bestätigen Sie Ihre Anmeldung")


def test_bulk_mail_refuses_a_recipient_without_unsubscribe_link() -> None:
    occ = occurrence(SEED_DAY)
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    with pytest.raises(ValueError, match="unsubscribe"):
        mailing.personalise(Recipient("a@b.de", None, "de"), message_id="<x@y>", date=NOW)


def test_test_send_is_marked_in_the_subject_and_needs_no_unsubscribe_token() -> None:
    occ = occurrence(dt.date(2025, 5, 28))
    mailing = renderer().render(
        "invitation", occ, None, sequence=0, now=NOW, test_send=True, sample_meeting=True
    )
    msg = parse(
        mailing.personalise(
            Recipient("orga@example.org", "Orga", "de"), message_id="<t@x>", date=NOW
        )
    )
    assert msg["Subject"].startswith("[TEST] Einladung:")
    assert msg["List-Unsubscribe"] is None
    text = text_part(msg)
    assert "Beispiel-Zugangsdaten" in text
    assert "https://zoom.example/j/12345678901" in text


@pytest.mark.parametrize(
    "evil",
    [
        "Eve\r\nBcc: victim@example.org",
        "Eve\nSubject: hijacked",
        "Eve\rX-Injected: 1",
        "Eve\u2028Bcc: victim@example.org",
    ],
)
def test_names_and_plan_text_cannot_inject_headers(evil: str) -> None:
    occ = occurrence(SEED_DAY, title=f"Reihe {evil}", organiser={"name": evil, "email": "o@x.de"})
    mailing = renderer(from_name=evil).render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    msg = parse(mailing.personalise(recipient(evil), message_id="<i@x>", date=NOW))
    names = [k.lower() for k in msg]
    assert "bcc" not in names and "x-injected" not in names
    assert names.count("subject") == 1
    assert msg["To"].addresses[0].display_name == " ".join(evil.split())
    assert msg["From"].addresses[0].display_name == " ".join(evil.split())
    assert "\n" not in str(msg["Subject"])


def test_unsafe_header_values_are_refused() -> None:
    occ = occurrence(SEED_DAY)
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    bad = Recipient("a@b.de", None, "de", "https://x/u\r\nBcc: v@x", None)
    with pytest.raises(ValueError):
        mailing.personalise(bad, message_id="<x@y>", date=NOW)
    with pytest.raises(ValueError):
        mailing.personalise(recipient(), message_id="<x@y>\r\nBcc: v@x", date=NOW)
    with pytest.raises(ValueError):
        mailing.personalise(recipient(email_="a@b.de\r\nBcc: v@x"), message_id="<x@y>", date=NOW)


# --- kinds -----------------------------------------------------------------------------------


def test_reminder_update_cancellation_reuse_the_invitation_blocks() -> None:
    occ = occurrence(SEED_DAY)
    r = renderer()
    m = meeting(occ)
    reminder = r.render("reminder", occ, m, sequence=0, now=NOW).text.splitlines()
    update = r.render(
        "update", occ, m, sequence=1, now=NOW, changes=["Neue Uhrzeit"]
    ).text.splitlines()
    cancel = r.render(
        "cancellation", occ, None, sequence=2, now=NOW, reason="Krankheit"
    ).text.splitlines()
    zoom_block = SEED_LINES[17:20]
    event_block = SEED_LINES[4:17]
    for text in (reminder, update):
        assert _contains_run(text, event_block) and _contains_run(text, zoom_block)
    assert _contains_run(cancel, event_block[:1]) and not _contains_run(cancel, zoom_block[:1])
    assert "Grund: Krankheit" in cancel
    assert "- Neue Uhrzeit" in update
    assert reminder[2].startswith("Zur Erinnerung:")  # after "Guten Tag," and a blank line


def test_cancellation_reason_defaults_to_the_plan() -> None:
    data_day = dt.date(2025, 5, 28)
    occ = occurrence(data_day)
    patched = plan()
    series = patched.series[0]
    content = series.sessions[data_day].model_copy(update={"cancelled": True, "reason": "Streik"})
    occ = type(occ)(series=series, date=data_day, content=content)
    text = renderer().render("cancellation", occ, None, sequence=1, now=NOW).text
    assert "Grund: Streik" in text.splitlines()


def test_invitation_without_meeting_is_refused_unless_sample() -> None:
    occ = occurrence(SEED_DAY)
    with pytest.raises(TemplateError, match="meeting"):
        renderer().render("invitation", occ, None, sequence=0, now=NOW)


def _contains_run(lines: list[str], run: list[str]) -> bool:
    return any(lines[i : i + len(run)] == run for i in range(len(lines) - len(run) + 1))


# --- template errors and overrides -----------------------------------------------------------


def _override(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return tmp_path


def test_missing_field_names_template_line_and_field(tmp_path: Path) -> None:
    body = '{% extends "de/_layout.txt" %}\n{% block subject %}S{% endblock %}\n{% block notice %}\nModeration: {{ content.moderator }}\n{% endblock %}\n'
    r = renderer(templates_dir=_override(tmp_path, "de/invitation.txt", body))
    occ = occurrence(SEED_DAY)
    with pytest.raises(TemplateError) as err:
        r.render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    assert err.value.template == "de/invitation.txt"
    assert err.value.line == 4
    assert str(err.value).startswith("de/invitation.txt:4: missing field 'moderator'")
    problems = r.check([occ], NOW)
    assert any(p.startswith("de/invitation.txt:4: missing field 'moderator'") for p in problems)
    assert len([p for p in problems if p.startswith("de/invitation.txt:4")]) == 1


def test_undefined_variable_in_a_shared_layout_is_located(tmp_path: Path) -> None:
    layout = (Path(__file__).parents[3] / "templates/de/_layout.html").read_text(encoding="utf-8")
    lines = layout.splitlines()
    lines.insert(30, "<p>{{ organiser_phone }}</p>")
    r = renderer(templates_dir=_override(tmp_path, "de/_layout.html", "\n".join(lines)))
    occ = occurrence(SEED_DAY)
    with pytest.raises(TemplateError) as err:
        r.render("reminder", occ, meeting(occ), sequence=0, now=NOW)
    assert (err.value.template, err.value.line) == ("de/_layout.html", 31)
    assert "organiser_phone" in str(err.value)


def test_syntax_error_is_reported_with_line(tmp_path: Path) -> None:
    r = renderer(templates_dir=_override(tmp_path, "en/reminder.html", "<p>\n{% if %}\n"))
    problems = r.check([occurrence(SEED_DAY)], NOW)
    assert any(p.startswith("en/reminder.html:2: syntax error") for p in problems)


def test_check_of_default_templates_is_clean_and_finds_a_missing_unsubscribe_link(
    tmp_path: Path,
) -> None:
    p = plan()
    occs = list(occurrences(p.series[0], dt.date(2025, 2, 1), dt.date(2025, 12, 31)))
    assert renderer().check(occs, NOW) == []
    footerless = '{% extends "de/invitation.txt" %}\n{% block subject %}S{% endblock %}\n{% block footer %}{% endblock %}\n'
    r = renderer(templates_dir=_override(tmp_path, "de/reminder.txt", footerless))
    assert r.check(occs[:1], NOW) == [
        "de/reminder.txt: no visible unsubscribe link; keep {{ unsubscribe_url }} (unfiltered) in it, bulk mail must show one"
    ]


def test_override_directory_falls_back_per_file(tmp_path: Path) -> None:
    salutation = "{% if name %}\nHallo {{ name }}!\n\n{% endif %}\n"
    r = renderer(templates_dir=_override(tmp_path, "de/_salutation.txt", salutation))
    occ = occurrence(SEED_DAY)
    raw = r.render("invitation", occ, meeting(occ), sequence=0, now=NOW).personalise(
        recipient("Anna"), message_id="<o@x>", date=NOW
    )
    lines = text_part(parse(raw)).splitlines()
    assert lines[:3] == ["Hallo Anna!", "", SEED_LINES[0]]
    assert '<p style="margin:0 0 16px;">Guten Tag Anna,</p>' in html_part(parse(raw))


# --- DKIM and SMTP ---------------------------------------------------------------------------


def _rsa_key(tmp_path: Path) -> tuple[Path, bytes]:
    key = tmp_path / "dkim.pem"
    subprocess.run(
        ["openssl", "genrsa", "-traditional", "-out", str(key), "2048"],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "rsa", "-in", str(key), "-pubout", "-outform", "DER"],
        check=True,
        capture_output=True,
    ).stdout
    return key, b"v=DKIM1; k=rsa; p=" + base64.b64encode(der)


def test_dkim_signature_covers_from_subject_and_list_unsubscribe(tmp_path: Path) -> None:
    key, txt = _rsa_key(tmp_path)
    cfg = DkimConfig.from_file(key, selector="sb", domain="bertelsmann-stiftung.de")
    occ = occurrence(SEED_DAY)
    mailing = renderer(dkim=cfg).render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    raw = mailing.personalise(recipient("Jürgen"), message_id="<d@x>", date=NOW)
    assert raw.startswith(b"DKIM-Signature:")

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"sb._domainkey.bertelsmann-stiftung.de."
        return txt

    assert dkim.verify(raw, dnsfunc=dns)
    signed = {
        h.strip().lower()
        for h in re.search(rb"\bh=([^;]+);", raw.replace(b"\r\n ", b"")).group(1).split(b":")
    }  # type: ignore[union-attr]
    assert {b"from", b"subject", b"list-unsubscribe", b"list-unsubscribe-post"} <= signed
    tampered = raw.replace(b"unsubscribe/tok1>", b"unsubscribe/tok2>", 1)
    assert not dkim.verify(tampered, dnsfunc=dns)


def test_personalised_bytes_go_through_smtplib_to_a_real_server() -> None:
    occ = occurrence(SEED_DAY)
    mailing = renderer().render("invitation", occ, meeting(occ), sequence=0, now=NOW)
    people = [
        recipient("Ümit Öztürk", "u@example.org", "t1"),
        recipient(None, "v@example.org", "t2"),
    ]
    with SmtpServer() as srv, smtplib.SMTP(srv.host, srv.port, timeout=10) as smtp:
        for i, r in enumerate(people):
            smtp.sendmail(
                "bounce@sb.example.org",
                [r.email],
                mailing.personalise(r, message_id=f"<{i}@x>", date=NOW),
            )
        got = {m.rcpt_tos[0]: m.message() for m in srv.handler.messages}
    assert set(got) == {"u@example.org", "v@example.org"}
    assert text_part(got["u@example.org"]).startswith(
        "Guten Tag Ümit Öztürk,\n\nWer mit der Aufnahme"
    )
    assert text_part(got["v@example.org"]).startswith("Guten Tag,\n\nWer mit der Aufnahme")
    assert "unsubscribe/t2" in html_part(got["v@example.org"])
    _, ics_bytes = calendar_part(got["v@example.org"])
    assert b"METHOD:PUBLISH" in ics_bytes


def test_preview_bytes_and_template_filters(tmp_path: Path) -> None:
    occ = occurrence(dt.date(2025, 4, 30))
    reminder = (
        '{% extends "de/invitation.txt" %}\n{% block subject %}Bald: {{ occ.date|format_date("long") }}'
        '{% endblock %}\n{% block notice %}Beginn {{ occ.start|format_time("HH:mm") }}\n{% endblock %}\n'
    )
    r = renderer(templates_dir=_override(tmp_path, "de/reminder.txt", reminder))
    mailing = r.render("reminder", occ, None, sequence=0, now=NOW, sample_meeting=True)
    msg = parse(mailing.preview_bytes(date=NOW))
    assert msg["Subject"] == "Bald: 30. April 2025"
    assert text_part(msg).startswith("Guten Tag,\n\nBeginn 12:30\n")
    assert str(msg["To"]) == "preview@example.invalid"
    assert "https://sb.example.org/unsubscribe/preview" in text_part(msg)


def test_non_ascii_subject_and_list_id_are_rfc2047_encoded() -> None:
    import datetime as _dt
    import email as _email
    import email.policy as _policy

    from session_bot.adapters.render.invitations import MailConfig as _MC
    from session_bot.adapters.render.invitations import Recipient as _R
    from session_bot.adapters.render.invitations import Renderer as _Renderer
    from session_bot.core.plan import find_occurrence as _find
    from session_bot.core.plan import parse_plan as _parse
    from tests.conftest import EXAMPLE_PLAN as _PLAN

    text = _PLAN.read_text().replace(
        'title: "Willkommen: Online Austausch"', 'title: "Willkommen: Austausch für Kommunen"'
    )
    occ = _find(_parse(text, "p.yaml"), _dt.date(2025, 2, 26))
    config = _MC(public_url="https://x.org", list_id="w.x.org", from_name="Kristina Neumann",
                 from_email="k@x.org", reply_to=None, message_id_domain="x.org")  # fmt: skip
    now = _dt.datetime(2025, 2, 12, 8, tzinfo=_dt.UTC)
    mail = _Renderer(config).render(
        "invitation", occ, None, sequence=0, now=now, sample_meeting=True
    )
    raw = mail.personalise(
        _R("a@b.de", "Jö", "de", "https://x.org/u/1", "mailto:k@x.org"),
        message_id="<1@x>",
        date=now,
    )
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()  # no raw 8-bit header bytes: every client can read them
    msg = _email.message_from_bytes(raw, policy=_policy.default)
    assert str(msg["Subject"]) == "Einladung: Willkommen: Austausch für Kommunen am 26.02.2025"
    assert msg["List-Id"].endswith("<w.x.org>")
