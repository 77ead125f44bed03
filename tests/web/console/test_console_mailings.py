"""The console's mailings: the list with counts, one mailing's recipients (filtered, paged) and
everything one address got — after a real run into the Maildir outbox."""

from __future__ import annotations

import re

import httpx
import yaml
from sqlalchemy import update

from session_bot import wiring
from session_bot.adapters.db.schema import deliveries, subscribers
from session_bot.adapters.mail import MaildirTransport
from session_bot.adapters.render.invitations import default_templates_dir
from session_bot.app import announcements
from session_bot.app.announcements import Announcement
from session_bot.core.plan import Plan
from tests.support.console import Console

PAGES = ["/admin/mailings", "/admin/mailings/1", "/admin/mailings/recipient?q=a@example.org"]


def run_once(console: Console, example_plan: Plan) -> None:
    settings = console.settings
    zoom = wiring.sandbox_zoom(settings, console.store, console.clock, console.sandbox)
    runner = wiring.build_runner(
        settings,
        example_plan,
        console.store,
        zoom,
        console.clock,
        transport=MaildirTransport(console.outbox),
    )
    runner.run("test")


def invitation_id(console: Console) -> int:
    [mailing] = console.store.mailings.summaries()
    assert mailing["kind"] == "invitation"
    return int(mailing["id"])


def fail(
    console: Console, address: str, code: int = 550, answer: str = "5.1.1 no such user"
) -> None:
    with console.store.db.begin() as c:
        c.execute(
            update(deliveries)
            .where(deliveries.c.email == address)
            .values(status="failed", last_code=code, last_response=answer, sent_at=None)
        )


def cells(html: str) -> list[list[str]]:
    """The table's body rows as lists of cell texts (tags dropped)."""
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", r, re.S)]
        for r in rows
    ]


def test_strangers_are_sent_to_the_sign_in(console: Console) -> None:
    with console.client() as client:
        for path in PAGES:
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/admin/sign-in?next=%2Fadmin%2Fmailings")


def test_no_mailing_yet(console: Console) -> None:
    with console.signed_in() as client:
        page = client.get("/admin/mailings")
        assert page.status_code == 200
        assert "Noch keine Aussendung." in page.text
        assert 'action="/admin/mailings/recipient"' in page.text
        assert client.get("/admin/mailings/99").status_code == 404
        assert client.get(f"/admin/mailings/{10**20}").status_code == 404


def test_after_a_run_the_invitation_is_listed_with_its_recipients(
    console: Console, example_plan: Plan
) -> None:
    run_once(console, example_plan)
    mailing = invitation_id(console)
    with console.signed_in() as client:
        page = client.get("/admin/mailings")
        assert page.status_code == 200
        [row] = cells(page.text)
        # session, kind, sequence, frozen at, recipients, sent, pending, failed, bounced, skipped
        assert row[0].startswith("Mittwoch, 26. Februar 2025")
        assert row[1] == "Einladung" and row[4:10] == ["3", "3", "0", "0", "0", "0"]
        assert row[10] == "abgeschlossen"
        assert f'href="/admin/mailings/{mailing}"' in page.text
        assert '<div class="table">' in page.text

        detail = client.get(f"/admin/mailings/{mailing}")
        assert detail.status_code == 200
        assert "Einladung zum Termin am Mittwoch, 26. Februar 2025" in detail.text
        rows = cells(detail.text)
        assert sorted(r[0] for r in rows) == [f"person{n}@example.org" for n in range(3)]
        assert all(r[1] == "gesendet" and r[3] == "1" for r in rows)
        assert all(r[4].startswith("250 written to outbox") for r in rows)
        assert all(r[2].startswith("Mittwoch, 12. Februar 2025") for r in rows)

        english = client.get(f"/admin/mailings/{mailing}?lang=en")
        assert "Invitation for the session on Wednesday, 26 February 2025" in english.text
        assert "Server&#39;s answer" in english.text and "sent" in english.text


def test_an_announcement_is_named_by_its_subject_not_by_a_session(
    console: Console, example_plan: Plan
) -> None:
    run_once(console, example_plan)
    invitation = invitation_id(console)
    written = Announcement(
        "willkommen",
        {"de": "Im August kein Termin", "en": "No session in August"},
        {"de": "Im August pausieren wir.", "en": "We pause in August."},
        by="kristina@example.org",
    )
    mailing, _ = announcements.create(console.store, written, console.clock())
    with console.signed_in() as client:
        page = client.get("/admin/mailings")
        rows = {r[1]: r for r in cells(page.text)}
        assert rows["Mitteilung"][0] == "Mitteilung: Im August kein Termin"
        assert rows["Mitteilung"][4] == "3"  # frozen with the three confirmed subscribers
        assert rows["Einladung"][0].startswith("Mittwoch, 26. Februar 2025")
        assert f'href="/admin/announcements#announcement-{mailing}"' in page.text

        detail = client.get(f"/admin/mailings/{mailing}")
        assert detail.status_code == 200
        assert "<h1>Mitteilung: Im August kein Termin</h1>" in detail.text
        assert "zum Termin am" not in detail.text
        assert f'<a href="/admin/announcements#announcement-{mailing}">' in detail.text
        assert "/admin/sessions/" not in detail.text.split("<main", 1)[1]
        english = client.get(f"/admin/mailings/{mailing}?lang=en")
        assert "<h1>Announcement: No session in August</h1>" in english.text

        session = client.get(f"/admin/mailings/{invitation}", params={"lang": "de"})
        assert '<a href="/admin/sessions/2025-02-26">' in session.text
        listed = client.get("/admin/announcements")
        assert f'id="announcement-{mailing}"' in listed.text

        found = client.get("/admin/mailings/recipient", params={"q": "person1@example.org"})
        kinds = {r[1].split(" (")[0]: r[0] for r in cells(found.text)}
        assert kinds["Mitteilung"] == "Mitteilung: Im August kein Termin"
        assert kinds["Einladung"].startswith("Mittwoch, 26. Februar 2025")


def test_a_failed_row_shows_as_failed_with_the_answer_and_is_counted(
    console: Console, example_plan: Plan
) -> None:
    run_once(console, example_plan)
    mailing = invitation_id(console)
    fail(console, "person1@example.org")
    with console.signed_in() as client:
        [row] = cells(client.get("/admin/mailings").text)
        assert row[5:10] == ["2", "0", "1", "1", "0"]  # sent, pending, failed, bounced, skipped

        detail = client.get(f"/admin/mailings/{mailing}")
        failed = next(r for r in cells(detail.text) if r[0] == "person1@example.org")
        assert failed[1] == "unzustellbar (fehlgeschlagen)"
        assert failed[4] == "550 5.1.1 no such user"
        assert "fehlgeschlagen (1)" in detail.text and "gesendet (2)" in detail.text

        only_failed = client.get(f"/admin/mailings/{mailing}", params={"state": "failed"})
        assert [r[0] for r in cells(only_failed.text)] == ["person1@example.org"]
        only_sent = client.get(f"/admin/mailings/{mailing}", params={"state": "sent"})
        assert sorted(r[0] for r in cells(only_sent.text)) == [
            "person0@example.org",
            "person2@example.org",
        ]
        none_skipped = client.get(f"/admin/mailings/{mailing}", params={"state": "skipped"})
        assert "Keine Empfänger:innen in diesem Stand." in none_skipped.text
        # An unknown state shows every row rather than failing.
        odd = client.get(f"/admin/mailings/{mailing}", params={"state": "<x>"})
        assert odd.status_code == 200 and len(cells(odd.text)) == 3


def test_a_soft_failure_is_failed_but_not_bounced_unless_the_subscriber_bounced(
    console: Console, example_plan: Plan
) -> None:
    run_once(console, example_plan)
    mailing = invitation_id(console)
    fail(console, "person2@example.org", code=452, answer="4.2.2 mailbox full")
    [summary] = console.store.mailings.summaries(mailing)
    assert (summary["failed"], summary["bounced"]) == (1, 0)
    with console.store.db.begin() as c:
        c.execute(
            update(subscribers)
            .where(subscribers.c.email == "person2@example.org")
            .values(status="bounced")
        )
    [summary] = console.store.mailings.summaries(mailing)
    assert (summary["failed"], summary["bounced"]) == (1, 1)
    with console.signed_in() as client:
        bounced = client.get(f"/admin/mailings/{mailing}?state=bounced")
        [row] = cells(bounced.text)
        assert row[0] == "person2@example.org" and row[4] == "452 4.2.2 mailbox full"


def test_the_recipient_search_finds_every_mail_of_an_address(
    console: Console, example_plan: Plan
) -> None:
    run_once(console, example_plan)
    mailing = invitation_id(console)
    with console.signed_in() as client:
        found = client.get("/admin/mailings/recipient", params={"q": " Person1@Example.ORG "})
        assert found.status_code == 200
        [row] = cells(found.text)
        assert row[0].startswith("Mittwoch, 26. Februar 2025")
        assert row[1].startswith("Einladung") and row[2] == "person1@example.org"
        assert row[3] == "gesendet" and row[6].startswith("250 ")
        assert f'href="/admin/mailings/{mailing}"' in found.text
        assert 'value="Person1@Example.ORG"' in found.text

        nobody = client.get("/admin/mailings/recipient", params={"q": "nobody@example.org"})
        assert "keine Nachricht verzeichnet" in nobody.text
        empty = client.get("/admin/mailings/recipient")
        assert empty.status_code == 200 and "<table>" not in empty.text


def test_a_large_mailing_is_paged(console: Console, example_plan: Plan) -> None:
    now = console.clock()
    for n in range(3, 205):
        console.store.subscribers.add(
            f"person{n}@example.org", name=None, language="de", status="confirmed",
            now=now, confirmed_at=now,
        )  # fmt: skip
    run_once(console, example_plan)
    mailing = invitation_id(console)
    with console.signed_in() as client:
        first = client.get(f"/admin/mailings/{mailing}")
        assert len(cells(first.text)) == 100
        assert "Seite 1 von 3" in first.text and "Zeilen 1–100 von 205" in first.text
        last = client.get(f"/admin/mailings/{mailing}", params={"page": 3})
        assert len(cells(last.text)) == 5 and "Zeilen 201–205 von 205" in last.text
        beyond = client.get(f"/admin/mailings/{mailing}", params={"page": 99})
        assert "Seite 3 von 3" in beyond.text and len(cells(beyond.text)) == 5
        shown = {r[0] for p in (1, 2, 3) for r in cells(client.get(
            f"/admin/mailings/{mailing}", params={"page": p}).text)}  # fmt: skip
        assert len(shown) == 205


def test_a_stale_session_cookie_is_told_it_expired(console: Console) -> None:
    answer = httpx.get(f"{console.url}/admin/mailings", cookies={"sb_console": "forged"})
    assert answer.status_code == 303 and "expired=1" in answer.headers["location"]


def test_the_mailings_texts_are_not_overridden_by_another_texts_file() -> None:
    folder = default_templates_dir() / "console"
    mine = yaml.safe_load((folder / "texts_mailings.yaml").read_text("utf-8"))
    for other in sorted(folder.glob("texts*.yaml")):
        if other.name != "texts_mailings.yaml":
            theirs = yaml.safe_load(other.read_text("utf-8"))
            assert not set(mine["de"]) & set(theirs["de"]), other.name
