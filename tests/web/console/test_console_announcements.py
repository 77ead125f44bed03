"""The announcements page against the real server: write, preview as recipients see it, a test
to herself (the outbox), then send after a confirmation naming the recipients — every POST with
its CSRF token, every step in the audit log."""

from __future__ import annotations

import email
import mailbox
from email.message import EmailMessage
from email.policy import default

from tests.support.console import ORGANISER, Console, csrf_of

PATH = "/admin/announcements"
TEXTS = {
    "subject_de": "Im August kein Termin",
    "text_de": "Liebe Community,\n\nim August pausieren wir.",
    "subject_en": "",
    "text_en": "",
}


def _mails(console: Console) -> list[EmailMessage]:
    box = mailbox.Maildir(str(console.outbox))
    return [email.message_from_bytes(m.as_bytes(), policy=default) for m in box]  # type: ignore[misc]


def test_write_preview_test_and_send(console: Console) -> None:
    with console.signed_in() as client:
        page = client.get(PATH)
        assert page.status_code == 200, page.text
        assert "Neue Mitteilung" in page.text and 'href="/admin/announcements"' in page.text
        csrf = csrf_of(page.text)

        refused = client.post(
            PATH, follow_redirects=True, data={**TEXTS, "action": "preview", "csrf": "wrong"}
        )
        assert refused.status_code == 400
        missing = client.post(
            PATH,
            follow_redirects=True,
            data={**TEXTS, "text_de": "", "action": "preview", "csrf": csrf},
        )
        assert missing.status_code == 422 and "Bitte Betreff und Text" in missing.text

        shown = client.post(
            PATH, follow_redirects=True, data={**TEXTS, "action": "preview", "csrf": csrf}
        )
        assert shown.status_code == 200, shown.text  # after the redirect
        assert 'src="/admin/announcements/draft/de.html"' in shown.text
        html = client.get(f"{PATH}/draft/de.html")
        assert html.status_code == 200 and "im August pausieren wir." in html.text
        assert "sandbox" in html.headers["content-security-policy"]
        text = client.get(f"{PATH}/draft/en.txt")  # no English text: the German mail
        assert "im August pausieren wir." in text.text and "Guten Tag," in text.text

        tested = client.post(
            PATH,
            follow_redirects=True,
            data={**TEXTS, "action": "test", "mail_lang": "de", "csrf": csrf},
        )
        assert "Der Test ist an" in tested.text
        mails = _mails(console)
        assert [m["To"] for m in mails] == [f"Kristina Neumann <{ORGANISER}>"]
        assert mails[0]["Subject"] == "[TEST] Im August kein Termin"

        confirm = client.post(
            PATH,
            follow_redirects=True,
            data={**TEXTS, "action": "confirm", "when": "now", "csrf": csrf},
        )
        assert "jetzt an 3 Empfänger:innen" in confirm.text
        digest = confirm.text.split('name="digest" value="')[1].split('"')[0]
        sent = client.post(
            PATH,
            follow_redirects=True,
            data={"action": "send", "when": "now", "digest": digest, "csrf": csrf},
        )
        assert "Die Mitteilung ist festgelegt" in sent.text
        assert "#1 Im August kein Termin" in sent.text
        again = client.post(
            PATH,
            follow_redirects=True,
            data={"action": "send", "when": "now", "digest": digest, "csrf": csrf},
        )
        assert again.status_code == 409  # the draft is gone: no second copy

        audit = client.get("/admin/audit").text
        assert "announcement-test" in audit and "announcement-sent" in audit
        mailing = [m for m in console.store.mailings.summaries() if m["kind"] == "announcement"]
        assert len(mailing) == 1 and mailing[0]["recipients"] == 3
        detail = client.get(f"/admin/mailings/{mailing[0]['id']}")
        assert detail.status_code == 200 and "Mitteilung" in detail.text


def test_schedule_and_follow_up(console: Console) -> None:
    with console.signed_in() as client:
        page = client.get(PATH, params={"session": "2025-02-26"})
        assert "Nachbereitung: Willkommen: Online Austausch (26.02.2025)" in page.text
        csrf = csrf_of(page.text)
        client.post(PATH, follow_redirects=True, data={**TEXTS, "action": "preview", "csrf": csrf})
        past = client.post(
            PATH,
            follow_redirects=True,
            data={**TEXTS, "action": "confirm", "when": "at", "send_at": "2020-01-01T10:00",
                  "csrf": csrf},
        )  # fmt: skip
        assert past.status_code == 422 and "Vergangenheit" in past.text
        confirm = client.post(
            PATH,
            follow_redirects=True,
            data={**TEXTS, "action": "confirm", "when": "at", "send_at": "2025-03-03T10:00",
                  "csrf": csrf},
        )  # fmt: skip
        assert "am Montag, 3. März 2025, 10:00 Uhr" in confirm.text
        digest = confirm.text.split('name="digest" value="')[1].split('"')[0]
        done = client.post(
            PATH,
            follow_redirects=True,
            data={"action": "send", "when": "at", "send_at": "2025-03-03T10:00",
                  "digest": digest, "csrf": csrf},
        )  # fmt: skip
        assert "Die Mitteilung ist geplant." in done.text
        assert "geplant für Montag, 3. März 2025, 10:00 Uhr" in done.text
        assert "announcement-scheduled" in client.get("/admin/audit").text
