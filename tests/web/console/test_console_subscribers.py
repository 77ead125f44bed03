"""The subscriber pages and the audit log of the console, against a real server: list and
search, adding (double opt-in or confirmed with a consent source), remove, forget, CSV import
with preview, export, and the audit entries every change leaves."""

from __future__ import annotations

import mailbox
import re

import httpx

from tests.support.console import ORGANISER, Console

NEW = "neu@example.org"


def _add(client: httpx.Client, token: str, **fields: str) -> httpx.Response:
    form = {"csrf": token, "name": "", "language": "de", "how": "mail", "source": "", **fields}
    return client.post("/admin/subscribers/add", data=form)


def _mails_to(console: Console, address: str) -> list[mailbox.MaildirMessage]:
    return [m for m in mailbox.Maildir(str(console.outbox)) if address in str(m["To"])]


def _id_of(answer: httpx.Response) -> int:
    m = re.fullmatch(r"/admin/subscribers/(\d+)\?done=\w[\w-]*", answer.headers["location"])
    assert m is not None, answer.headers["location"]
    return int(m.group(1))


def test_the_list_counts_searches_and_pages(console: Console) -> None:
    for n in range(3, 60):
        console.store.subscribers.add(
            f"person{n}@example.org", name=f"Name {n}", language="en", status="confirmed",
            now=console.clock(), confirmed_at=console.clock(),
        )  # fmt: skip
    with console.signed_in() as client:
        page = client.get("/admin/subscribers")
        assert page.status_code == 200
        assert "bestätigt: <strong>60</strong>" in page.text and "60 Treffer" in page.text
        assert "person59<wbr>@example.org" in page.text and "person0<wbr>@" not in page.text
        assert "Seite 1 von 2" in page.text
        second = client.get("/admin/subscribers", params={"page": "2"})
        assert "person0<wbr>@" in second.text and "person59<wbr>@" not in second.text
        found = client.get("/admin/subscribers", params={"q": "PERSON1@"})
        assert "1 Treffer" in found.text and "person1<wbr>@example.org" in found.text
        by_name = client.get("/admin/subscribers", params={"q": "name 42"})
        assert "person42<wbr>@example.org" in by_name.text and "1 Treffer" in by_name.text
        none = client.get("/admin/subscribers", params={"q": "x", "status": "pending"})
        assert "Keine Abonnent:innen gefunden." in none.text
        english = client.get("/admin/subscribers", params={"lang": "en"})
        assert "Subscribers" in english.text and "confirmed: <strong>60</strong>" in english.text


def test_adding_with_a_confirmation_mail_takes_the_public_path(console: Console) -> None:
    with console.signed_in() as client:
        answer = _add(client, console.csrf(client), email=NEW, name="Lena Schäfer", how="mail")
        assert answer.status_code == 303
        sid = _id_of(answer)
        assert answer.headers["location"].endswith("done=mailed")
        page = client.get(answer.headers["location"])
        assert "Die Bestätigungsmail ist verschickt." in page.text
        assert "wartet auf Bestätigung" in page.text
    row = console.store.subscribers.get(NEW)
    assert row is not None and row["id"] == sid and row["status"] == "pending"
    assert row["request_url"].endswith("/admin/subscribers/add") and row["consent_version"]
    [mail] = _mails_to(console, NEW)
    assert "/confirm/" in mail.as_string()


def test_adding_as_confirmed_needs_the_source_of_the_consent(console: Console) -> None:
    with console.signed_in() as client:
        token = console.csrf(client)
        missing = _add(client, token, email=NEW, how="confirmed", source="  ")
        assert missing.status_code == 400
        assert 'id="e-source"' in missing.text and "woher die Einwilligung stammt" in missing.text
        assert f'value="{NEW}"' in missing.text  # the form keeps what was typed
        assert console.store.subscribers.get(NEW) is None
        bad = _add(client, token, email="kein-at-zeichen", how="confirmed", source="Liste")
        assert bad.status_code == 400 and "keine gültige E-Mail-Adresse" in bad.text
        known = _add(client, token, email="person0@example.org", how="mail")
        assert known.status_code == 400 and "steht schon auf der Liste (bestätigt)" in known.text

        source = "Anmeldeliste Fachtag 3.3.2025"
        added = _add(client, token, email=NEW, how="confirmed", source=source, language="en")
        assert added.status_code == 303
        page = client.get(added.headers["location"])
        assert source in page.text and ORGANISER in page.text and "Eingetragen von" in page.text
    row = console.store.subscribers.get(NEW)
    assert row is not None and row["status"] == "confirmed" and row["language"] == "en"
    assert row["import_file"] == source and row["imported_by"] == ORGANISER
    assert _mails_to(console, NEW) == []


def test_the_detail_page_shows_the_mails_the_person_got(console: Console) -> None:
    now = console.clock()
    session = console.store.sessions.ensure("s:2025-03-05", "s", "2025-03-05", now, 60, now)
    console.store.mailings.freeze(session.id, "invitation", 0, now)
    row = console.store.subscribers.get("person1@example.org")
    assert row is not None
    with console.signed_in() as client:
        page = client.get(f"/admin/subscribers/{row['id']}")
        assert page.status_code == 200 and "Einladung" in page.text and "2025-03-05" in page.text
        assert "Einwilligungsnachweis" in page.text and "Bestätigt" in page.text
        assert client.get("/admin/subscribers/99999").status_code == 404


def test_remove_and_forget(console: Console) -> None:
    row = console.store.subscribers.get("person1@example.org")
    assert row is not None
    base = f"/admin/subscribers/{row['id']}"
    with console.signed_in() as client:
        token = console.csrf(client)
        removed = client.post(f"{base}/remove", data={"csrf": token})
        assert removed.status_code == 303 and removed.headers["location"].endswith("done=removed")
        assert "Abgemeldet." in client.get(removed.headers["location"]).text
        after = console.store.subscribers.get("person1@example.org")
        assert after is not None and after["status"] == "unsubscribed"

        # Forgetting asks first; only the second step erases.
        asked = client.post(f"{base}/forget", data={"csrf": token})
        assert asked.status_code == 200 and "Wirklich löschen?" in asked.text
        assert 'name="really" value="yes"' in asked.text
        assert console.store.subscribers.get("person1@example.org") is not None
        gone = client.post(f"{base}/forget", data={"csrf": token, "really": "yes"})
        assert gone.status_code == 303 and gone.headers["location"].endswith("done=forgotten")
        assert "Gelöscht." in client.get(gone.headers["location"]).text
        assert client.get(base).status_code == 404
    assert console.store.subscribers.get("person1@example.org") is None
    forgotten = [e for e in console.store.audit.latest() if e.action == "subscriber-forgotten"]
    assert forgotten and "person1" not in forgotten[0].detail  # the log keeps no erased address


CSV = (
    b"E-Mail;Vorname;Nachname;Sprache\r\n"
    b"neu1@example.org;Neu;Eins;de\r\n"
    b"kaputt-adresse;X;Y;de\r\n"
    b"person0@example.org;;;de\r\n"
    b"neu2@example.org;;;englisch\r\n"
)


def test_import_previews_then_commits(console: Console) -> None:
    with console.signed_in() as client:
        token = console.csrf(client)
        form = client.get("/admin/subscribers/import")
        assert form.status_code == 200 and 'enctype="multipart/form-data"' in form.text
        files = {"file": ("liste.csv", CSV, "text/csv")}
        preview = client.post("/admin/subscribers/import", data={"csrf": token}, files=files)
        assert preview.status_code == 200, preview.text
        assert "Würde eingetragen: 2" in preview.text and "Abgelehnte Zeilen: 1" in preview.text
        assert "<td>3</td><td>kaputt-adresse</td><td>ungültige Adresse" in preview.text
        assert "<td>4</td><td>person0@example.org</td><td>schon angemeldet" in preview.text
        assert console.store.subscribers.get("neu1@example.org") is None  # nothing yet
        key = re.search(r'name="key" value="([^"]+)"', preview.text)
        assert key is not None

        forged = client.post("/admin/subscribers/import/commit", data={"key": key.group(1)})
        assert forged.status_code == 400
        assert console.store.subscribers.get("neu1@example.org") is None

        done = client.post(
            "/admin/subscribers/import/commit", data={"csrf": token, "key": key.group(1)}
        )
        assert done.status_code == 200 and "Eingetragen: 2" in done.text
        again = client.post(
            "/admin/subscribers/import/commit", data={"csrf": token, "key": key.group(1)}
        )
        assert again.status_code == 410 and "nicht mehr da" in again.text
    first = console.store.subscribers.get("neu1@example.org")
    second = console.store.subscribers.get("neu2@example.org")
    assert first is not None and first["status"] == "confirmed" and first["name"] == "Neu Eins"
    assert second is not None and second["language"] == "en"
    assert first["imported_by"] == ORGANISER and first["import_file"].endswith("liste.csv")
    assert console.store.subscribers.get("kaputt-adresse") is None


def test_an_upload_waits_only_for_its_organiser_and_half_an_hour(console: Console) -> None:
    with console.signed_in() as client:
        token = console.csrf(client)
        files = {"file": ("liste.csv", CSV, "text/csv")}
        preview = client.post("/admin/subscribers/import", data={"csrf": token}, files=files)
        key = re.search(r'name="key" value="([^"]+)"', preview.text)
        assert key is not None
        console.clock.advance(minutes=31)
        client.get("/admin/")  # the session itself stays alive
        token = console.csrf(client)
        late = client.post(
            "/admin/subscribers/import/commit", data={"csrf": token, "key": key.group(1)}
        )
        assert late.status_code == 410
        workbook = {"file": ("liste.xlsx", b"PK\x03\x04rest", "application/octet-stream")}
        refused = client.post("/admin/subscribers/import", data={"csrf": token}, files=workbook)
        assert refused.status_code == 400 and "liste.xlsx is a spreadsheet workbook" in refused.text
        assert "session-bot-console-upload" not in refused.text
    assert console.store.subscribers.get("neu1@example.org") is None


def test_export_gives_the_cli_csv_with_formulas_guarded(console: Console) -> None:
    console.store.subscribers.add(
        "formel@example.org", name="=HYPERLINK(1)", language="de", status="confirmed",
        now=console.clock(), confirmed_at=console.clock(),
    )  # fmt: skip
    with console.signed_in() as client:
        answer = client.get("/admin/subscribers/export.csv")
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/csv")
    assert "attachment" in answer.headers["content-disposition"]
    text = answer.content.decode("utf-8")
    assert text.startswith("\ufeffemail;name;language;status;subscribed_at\r\n")
    assert "person0@example.org;;de;confirmed;" in text
    assert "formel@example.org;'=HYPERLINK(1);de;confirmed;" in text


def test_every_change_is_in_the_audit_log(console: Console) -> None:
    with console.signed_in() as client:
        token = console.csrf(client)
        added = _add(client, token, email=NEW, how="confirmed", source="Visitenkarte")
        sid = _id_of(added)
        client.post(f"/admin/subscribers/{sid}/remove", data={"csrf": token})
        client.post(f"/admin/subscribers/{sid}/forget", data={"csrf": token, "really": "yes"})
        files = {"file": ("liste.csv", CSV, "text/csv")}
        preview = client.post("/admin/subscribers/import", data={"csrf": token}, files=files)
        key = re.search(r'name="key" value="([^"]+)"', preview.text)
        assert key is not None
        client.post("/admin/subscribers/import/commit", data={"csrf": token, "key": key.group(1)})
        client.get("/admin/subscribers/export.csv")
        page = client.get("/admin/audit")
    assert page.status_code == 200
    for words in ["Abonnent:in eingetragen", "Abonnent:in abgemeldet", "Abonnent:in gelöscht",
                  "CSV importiert", "CSV exportiert", "angemeldet", ORGANISER, "127.0.0.1"]:  # fmt: skip
        assert words in page.text, words
    assert "liste.csv: added 2, unchanged 1, rejected 1" in page.text
    # In the series' zone (Europe/Berlin): the clock's 08:00 UTC is 09:00 there.
    assert "Mittwoch, 12. Februar 2025, 09:00 Uhr" in page.text
    actions = [e.action for e in console.store.audit.latest()]
    assert actions[:5] == [
        "export", "import", "subscriber-forgotten", "subscriber-removed", "subscriber-added",
    ]  # fmt: skip


def test_posts_without_the_form_token_change_nothing(console: Console) -> None:
    row = console.store.subscribers.get("person0@example.org")
    assert row is not None
    before = console.store.subscribers.count()
    files = {"file": ("liste.csv", CSV, "text/csv")}
    with console.signed_in() as client:
        posts = [
            client.post("/admin/subscribers/add", data={"email": NEW, "how": "mail"}),
            client.post("/admin/subscribers/add", data={"email": NEW, "how": "mail", "csrf": "x"}),
            client.post(f"/admin/subscribers/{row['id']}/remove", data={"csrf": "x"}),
            client.post(f"/admin/subscribers/{row['id']}/forget", data={"really": "yes"}),
            client.post("/admin/subscribers/import", data={"csrf": "x"}, files=files),
            client.post("/admin/subscribers/import/commit", data={"key": "console.import:x"}),
        ]
    for answer in posts:
        assert answer.status_code == 400 and "Das Formular war abgelaufen" in answer.text
    after = console.store.subscribers.get("person0@example.org")
    assert after is not None and after["status"] == "confirmed"
    assert console.store.subscribers.count() == before and _mails_to(console, NEW) == []
    mine = {"subscriber-added", "subscriber-removed", "subscriber-forgotten", "import", "export"}
    assert not [e for e in console.store.audit.latest() if e.action in mine]


def test_strangers_are_sent_to_the_sign_in(console: Console) -> None:
    row = console.store.subscribers.get("person0@example.org")
    assert row is not None
    paths = ["/admin/subscribers", "/admin/subscribers?q=person", "/admin/audit",
             f"/admin/subscribers/{row['id']}", "/admin/subscribers/import",
             "/admin/subscribers/export.csv"]  # fmt: skip
    with console.client() as client:
        for path in paths:
            answer = client.get(path)
            assert answer.status_code == 303, path
            assert answer.headers["location"].startswith("/admin/sign-in?next="), path
        for path in ["/admin/subscribers/add", f"/admin/subscribers/{row['id']}/forget"]:
            answer = client.post(path, data={"email": NEW, "how": "mail", "really": "yes"})
            assert answer.status_code == 303, path
    assert console.store.subscribers.get(NEW) is None
    assert console.store.subscribers.get("person0@example.org") is not None
