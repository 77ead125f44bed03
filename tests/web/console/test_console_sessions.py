"""The session page (plain words, meeting, the mail as recipients see it, a test mail to me) and
"run now" (what a run would do, then the run itself), against the real server."""

from __future__ import annotations

import email
import mailbox
from email.policy import default

import httpx
import icalendar
import pytest

from tests.support.console import ORGANISER, Console, csrf_of

SEED = "/admin/sessions/2025-02-26"


def _mails(console: Console) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(console.outbox))
    return [email.message_from_bytes(m.as_bytes(), policy=default) for m in box]


def _run(console: Console, client: httpx.Client) -> httpx.Response:
    page = client.get("/admin/run-now")
    return client.post("/admin/run-now", data={"csrf": csrf_of(page.text)})


def test_the_session_page_tells_the_session_in_words(console: Console) -> None:
    with console.signed_in() as client:
        page = client.get(SEED)
        assert page.status_code == 200, page.text
        text = page.text
        assert "Termin am Mittwoch, 26. Februar 2025" in text
        assert "12:30–13:30 Uhr (Zeitzone Europe/Berlin)" in text
        assert "Akteursübergreifende Zusammenarbeit und" in text
        assert "Anna Lena Hemmer – Koordinatorin Burgenlandkreis, Migrationsagentur" in text
        assert "Dr. Kristian Garthus-Niegel" in text
        assert "Wer mit der Aufnahme und Integration" in text  # the intro
        assert "geplant" in text
        # No meeting before the invitation's run: the page says when it comes.
        assert "Wird bei der Einladung angelegt" in text
        assert "Beispiel-Zugangsdaten" in text
        # The mail: the HTML framed from the preview, the text in <pre>, the .ics to download.
        assert f'src="{SEED}/preview/invitation/de.html"' in text
        assert '<pre class="mail">' in text and "Wir laden herzlich ein zum" in text
        assert f'href="{SEED}/preview/invitation/de.ics"' in text
        assert "Zu diesem Termin ist noch nichts verschickt worden." in text

        english = client.get(SEED, params={"kind": "reminder", "mail_lang": "en"})
        assert f'src="{SEED}/preview/reminder/en.html"' in english.text
        assert "Reminder: Welcome: Online Exchange" in english.text


def test_the_preview_serves_the_mail_without_scripts_and_a_calendar(console: Console) -> None:
    with console.signed_in() as client:
        html = client.get(f"{SEED}/preview/invitation/de.html")
        assert html.status_code == 200
        assert html.headers["content-type"].startswith("text/html")
        assert "Wir laden herzlich ein zum" in html.text and "<html" in html.text.lower()
        csp = html.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "sandbox" in csp and "script-src" not in csp
        page_csp = client.get(SEED).headers["content-security-policy"]
        assert "frame-src 'self'" in page_csp

        ics = client.get(f"{SEED}/preview/invitation/de.ics")
        assert ics.status_code == 200 and ics.headers["content-type"].startswith("text/calendar")
        assert "attachment" in ics.headers["content-disposition"]
        calendar = icalendar.Calendar.from_ical(ics.content)
        events = [c for c in calendar.walk("VEVENT")]
        assert len(events) == 1
        start = events[0].decoded("DTSTART")
        assert start.isoformat().startswith("2025-02-26T12:30")

        assert client.get(f"{SEED}/preview/nonsense/de.html").status_code == 404
        assert client.get(f"{SEED}/preview/invitation/fr.html").status_code == 404


def test_a_date_without_a_session_is_a_page_in_words(console: Console) -> None:
    with console.signed_in() as client:
        for date in ["2025-02-27", "kein-datum"]:
            page = client.get(f"/admin/sessions/{date}")
            assert page.status_code == 404
            assert "gibt es im Plan keinen Termin" in page.text


def test_a_test_mail_goes_to_me_only_and_is_logged(console: Console) -> None:
    with console.signed_in() as client:
        page = client.get(SEED)
        answer = client.post(f"{SEED}/test", data={"csrf": csrf_of(page.text), "mail_lang": "de"})
        assert answer.status_code == 303
        shown = client.get(answer.headers["location"])
        assert f"Eine Testmail wurde an {ORGANISER} geschickt." in shown.text
    mails = _mails(console)
    assert len(mails) == 1
    assert mails[0]["To"].addresses[0].addr_spec == ORGANISER
    assert "Einladung" in mails[0]["Subject"]
    entry = console.store.audit.latest()[0]
    assert (entry.actor, entry.action) == (ORGANISER, "test-mail")
    assert "willkommen/2025-02-26" in entry.detail and entry.detail.endswith("sent")
    # Only a test: no mailing was frozen, the subscribers got nothing.
    row = console.store.sessions.get("willkommen/2025-02-26")
    assert row is None or console.store.mailings.of_session(row.id) == []


def test_a_test_mail_without_the_form_token_is_not_sent(console: Console) -> None:
    with console.signed_in() as client:
        answer = client.post(f"{SEED}/test", data={"csrf": "forged"})
        assert answer.status_code == 400 and "Formular war abgelaufen" in answer.text
    assert _mails(console) == []


def test_run_now_says_what_is_due_and_refuses_without_the_token(console: Console) -> None:
    with console.signed_in() as client:
        page = client.get("/admin/run-now")
        assert page.status_code == 200
        assert "Was ein Lauf jetzt tun würde" in page.text
        assert "Einladung" in page.text and "Die Einladung an 3 Abonnent:innen" in page.text
        assert "Das Zoom-Meeting anlegen." in page.text
        assert 'aria-current="page"' in page.text

        refused = client.post("/admin/run-now", data={"csrf": "forged"})
        assert refused.status_code == 400 and "Formular war abgelaufen" in refused.text
        refused = client.post("/admin/run-now")
        assert refused.status_code == 400
    assert console.store.mailings.open() == []
    assert console.store.sessions.get("willkommen/2025-02-26") is None
    assert _mails(console) == []


def test_run_now_runs_and_the_session_page_shows_the_meeting(console: Console) -> None:
    with console.signed_in() as client:
        done = _run(console, client)
        assert done.status_code == 200, done.text
        assert "Der Lauf ist beendet: erfolgreich." in done.text
        assert "Nachrichten verschickt" in done.text
        # What the run did, in her words: no line of the English log on her page.
        assert "3 Nachrichten verschickt, 1 Aussendung vorbereitet, 1 Zoom-Meeting angelegt." in (
            done.text
        )
        assert "message(s)" not in done.text
        overview = client.get("/admin/")
        assert "3 Nachrichten verschickt, 1 Aussendung vorbereitet" in overview.text
        assert "message(s)" not in overview.text
        assert "Jetzt ist nichts fällig." in done.text
        assert len(_mails(console)) == 3
        assert console.store.audit.latest()[0].action == "run"

        page = client.get(SEED)
        assert "eingeladen" in page.text
        row = console.store.sessions.get("willkommen/2025-02-26")
        assert row is not None and row.meeting_json is not None
        join_url = row.meeting_json["join_url"]
        assert join_url in page.text and "Meeting-ID" in page.text and "Kenncode" in page.text
        assert "Wird bei der Einladung angelegt" not in page.text
        assert "Beispiel-Zugangsdaten" not in page.text
        mailing = console.store.mailings.of_session(row.id)[0]
        assert f'href="/admin/mailings/{mailing.id}"' in page.text
        assert "3 verschickt · 0 ausstehend · 0 fehlgeschlagen · 0 übersprungen" in page.text
        # Once invited, the update can be proof-read too; the mail carries the real meeting.
        assert "?kind=update&amp;mail_lang=de" in page.text
        html = client.get(f"{SEED}/preview/invitation/de.html")
        assert join_url in html.text

        # A second run finds nothing to do and sends nothing again.
        again = _run(console, client)
        assert "erfolgreich" in again.text and "Es war nichts zu tun." in again.text
    assert len(_mails(console)) == 3


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", SEED),
        ("GET", f"{SEED}/preview/invitation/de.html"),
        ("GET", f"{SEED}/preview/invitation/de.ics"),
        ("POST", f"{SEED}/test"),
        ("GET", "/admin/run-now"),
        ("POST", "/admin/run-now"),
    ],
)
def test_strangers_are_sent_to_the_sign_in(console: Console, method: str, path: str) -> None:
    with console.client() as client:
        answer = client.request(method, path, data={"csrf": "x"} if method == "POST" else None)
        assert answer.status_code == 303
        assert answer.headers["location"].startswith("/admin/sign-in?next=")
    assert _mails(console) == []
    assert console.store.mailings.open() == []


def test_sessions_without_topic_or_skipped_say_why_and_send_no_test(console: Console) -> None:
    with console.signed_in() as client:
        waiting = client.get("/admin/sessions/2025-06-25")
        assert waiting.status_code == 200
        assert "(noch kein Thema)" in waiting.text and "wartet auf ein Thema" in waiting.text
        assert "für diesen Termin steht noch kein Thema im Plan" in waiting.text
        refused = client.post(
            "/admin/sessions/2025-06-25/test", data={"csrf": csrf_of(waiting.text)}
        )
        assert refused.status_code == 200
        assert f"Die Testmail an {ORGANISER} ging nicht hinaus" in refused.text

        skipped = client.get("/admin/sessions/2025-08-27", params={"lang": "en"})
        assert skipped.status_code == 200
        assert "skipped" in skipped.text and "no mail goes out for it" in skipped.text
        assert "This session has no meeting." in skipped.text and "<iframe" not in skipped.text
    assert _mails(console) == []
    assert console.store.audit.latest()[0].action == "test-mail"
