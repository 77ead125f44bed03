"""CSV import/export, forgetting and the consent proof, on a real SQLite store and the real CLI."""

from __future__ import annotations

import datetime as dt
import io
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from session_bot.adapters.db.store import Store
from session_bot.app.subscriptions import (
    RequestProof,
    confirm,
    export_csv,
    forget_hash,
    import_csv,
    request_subscription,
)
from session_bot.cli.subscribers import subscribers_app
from session_bot.core.errors import SessionBotError, SubscriberImportError

NOW = dt.datetime(2025, 2, 13, 9, 0, tzinfo=dt.UTC)
KEY = "test-secret-key-0123456789abcdef"
PUNY = "bäckerei-schmidt.de".encode("idna").decode()  # how the domain must go out by SMTP

GERMAN_EXPORT = (
    "\ufeffE-Mail;Vorname;Nachname;Sprache\r\n"
    "anna.mueller@example.org;Anna;Müller;Deutsch\r\n"
    'info@bäckerei-schmidt.de;"Jörg; Bäckermeister";Weiß;\r\n'
    "Max.Groß@example.org;Max;Groß;de\r\n"
    "\r\n"
    "peter.oezdemir@example.net;Peter;Özdemir;Englisch\r\n"
).encode()


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    s.ensure_schema()
    return s


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


def imp(store: Store, path: Path, **kw: bool):  # type: ignore[no-untyped-def]
    return import_csv(store, KEY, path, imported_by="K. Neumann", now=NOW, **kw)


def test_german_spreadsheet_export_with_bom_semicolons_and_umlauts(
    store: Store, tmp_path: Path
) -> None:
    path = write(tmp_path, "Verteiler.csv", GERMAN_EXPORT)
    report = imp(store, path)
    assert report.delimiter == ";"
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (4, "invalid address")  # an umlaut before the @ cannot be mailed without SMTPUTF8
    ]
    assert [(p.line, p.email, p.name, p.language) for p in report.added] == [
        (2, "anna.mueller@example.org", "Anna Müller", "de"),
        (3, f"info@{PUNY}", "Jörg; Bäckermeister Weiß", "de"),
        (6, "peter.oezdemir@example.net", "Peter Özdemir", "en"),
    ]
    row = store.subscribers.get(f"INFO@{PUNY}")
    assert (
        row is not None
        and row["status"] == "confirmed"
        and row["name"] == "Jörg; Bäckermeister Weiß"
    )
    assert row["import_file"] == str(path.resolve()) and row["imported_by"] == "K. Neumann"
    assert store.subscribers.count("confirmed") == 3


def test_comma_delimited_without_bom_and_excel_sep_line(store: Store, tmp_path: Path) -> None:
    plain = write(tmp_path, "a.csv", b'email,name,language\na@example.org,"Doe, Jane",en\n')
    assert [p.name for p in imp(store, plain).added] == ["Doe, Jane"]
    hinted = write(tmp_path, "b.csv", b"sep=;\r\nemail;name\r\nb@example.org;Bea\r\n")
    report = imp(store, hinted)
    assert [(p.line, p.email) for p in report.added] == [(3, "b@example.org")]


def test_duplicates_in_the_file_and_on_the_list(store: Store, tmp_path: Path) -> None:
    store.subscribers.add(
        "known@example.org", name=None, language="de", status="confirmed", now=NOW
    )
    store.subscribers.add(
        "left@example.org", name=None, language="de", status="unsubscribed", now=NOW
    )
    path = write(
        tmp_path,
        "d.csv",
        b"email;name\nneu@example.org;A\nNEU@Example.org;B\nknown@example.org;C\n"
        b"left@example.org;D\n",
    )
    report = imp(store, path)
    assert [p.email for p in report.added] == ["neu@example.org"]
    assert [(r.line, r.reason) for r in report.unchanged] == [(4, "already subscribed")]
    assert [(r.line, r.reason.split(":")[0]) for r in report.rejected] == [
        (3, "duplicate of line 2"),
        (5, "unsubscribed on the list"),
    ]
    assert store.subscribers.get("left@example.org")["status"] == "unsubscribed"  # type: ignore[index]
    assert store.subscribers.get("neu@example.org")["name"] == "A"  # type: ignore[index]


def test_invalid_rows_are_reported_with_line_numbers_and_the_rest_imported(
    store: Store, tmp_path: Path
) -> None:
    path = write(
        tmp_path,
        "i.csv",
        b'email;name;language\nok1@example.org;"Zwei\nZeilen";de\nkein-at;X;de\n'
        b"ok2@example.org;Y;fr\n;nur Name;de\nx@localhost;Z;\nok3@example.org;;en\n",
    )
    report = imp(store, path)
    assert [p.email for p in report.added] == ["ok1@example.org", "ok3@example.org"]
    got = [(r.line, r.text, r.reason.split(":")[0]) for r in report.rejected]
    assert got == [
        (4, "kein-at", "invalid address"),
        (5, "ok2@example.org", "language 'fr' unknown"),
        (6, ";nur Name;de", "invalid address"),
        (7, "x@localhost", "invalid address"),
    ]
    assert store.subscribers.get("ok1@example.org")["name"] == "Zwei Zeilen"  # type: ignore[index]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"PK\x03\x04\x14\x00\x06\x00" + bytes(200), "spreadsheet workbook"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(50), "not a text file"),
        (b"email;name\na@example.org;M\x81ller\n", "line 2: neither UTF-8 nor Windows-1252"),
        (b'{"subscribers": ["a@example.org"]}\n', "no column of e-mail addresses"),
        (b"plan:\n  title: Willkommen\n", "line 1: no column of e-mail addresses"),
        (b"", "is empty"),
    ],
)
def test_a_file_that_is_not_csv_is_a_clear_error_and_imports_nothing(
    store: Store, tmp_path: Path, data: bytes, expected: str
) -> None:
    path = write(tmp_path, "list.csv", data)
    with pytest.raises(SubscriberImportError) as err:
        imp(store, path)
    assert expected in str(err.value) and str(path) in str(err.value)
    assert store.subscribers.count() == 0


def test_headerless_list_of_addresses_is_accepted(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "h.csv", b"a@example.org;Anna\nb@example.org;Ben;en\n")
    assert [(p.line, p.name, p.language) for p in imp(store, path).added] == [
        (1, "Anna", "de"),
        (2, "Ben", "en"),
    ]


def test_dry_run_reports_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    path = write(tmp_path, "Verteiler.csv", GERMAN_EXPORT)
    report = imp(store, path, dry_run=True)
    assert len(report.added) == 3 and report.dry_run and "would add 3" in report.summary()
    assert store.subscribers.count() == 0


def test_status_column_keeps_people_who_left_out(store: Store, tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "s.csv",
        b"email;status\na@example.org;confirmed\nb@example.org;unsubscribed\nc@example.org;\n",
    )
    report = imp(store, path)
    assert [p.email for p in report.added] == ["a@example.org", "c@example.org"]
    assert [(r.line, r.text) for r in report.unchanged] == [(3, "b@example.org")]


def test_forget_erases_personal_data_and_blocks_a_silent_re_import(
    store: Store, tmp_path: Path
) -> None:
    from session_bot.app.subscriptions import consent_proof, forget_subscriber

    path = write(
        tmp_path, "f.csv", b"email;name\nweg@example.org;Wilma Weg\nbleibt@example.org;B\n"
    )
    imp(store, path)
    sid = store.subscribers.get("weg@example.org")["id"]  # type: ignore[index]
    session = store.sessions.ensure("s/2025-02-26", "s", "2025-02-26", NOW, 60, NOW)
    mailing, _ = store.mailings.freeze(session.id, "invitation", 0, NOW)
    assert store.mailings.get(mailing).recipients == 2
    assert forget_subscriber(store, KEY, "WEG@example.org", NOW) is True
    assert store.subscribers.get("weg@example.org") is None
    tombstone = store.subscribers.get_by_id(sid)
    assert tombstone is not None and tombstone["status"] == "forgotten"
    assert {k for k, v in tombstone.items() if v not in (None, "", 0)} == {
        "id", "email_key", "language", "status", "created_at", "updated_at"
    }  # fmt: skip
    assert "weg" not in tombstone["email_key"] and store.subscribers.count() == 1
    assert store.mailings.get(mailing).recipients == 1
    assert store.mailings.delivery_counts(mailing) == {"pending": 1}
    # Nothing readable remains: only a keyed hash.
    assert store.subscribers.forgotten_at(forget_hash(KEY, "weg@example.org")) == NOW
    assert consent_proof(store, KEY, "weg@example.org")[0][1].startswith("erased on request")
    again = imp(store, path)
    assert [(r.line, r.reason.split(" (")[0]) for r in again.rejected] == [(2, "erased on request")]
    assert store.subscribers.get("weg@example.org") is None
    readded = imp(store, path, readd_forgotten=True)
    assert [p.email for p in readded.added] == ["weg@example.org"]
    assert store.subscribers.forgotten_at(forget_hash(KEY, "weg@example.org")) is None


def test_a_forgotten_person_may_subscribe_again_themselves(store: Store) -> None:
    from session_bot.app.subscriptions import forget_subscriber

    proof = RequestProof("192.0.2.1", "Firefox", "https://x.example/subscribe")
    out = request_subscription(
        store, KEY, address="weg@example.org", name=None, language="de",
        consent_version="de-1", proof=proof, now=NOW,
    )  # fmt: skip
    assert out.confirm_token is not None
    confirm(store, KEY, out.confirm_token, proof=proof, now=NOW)
    forget_subscriber(store, KEY, "weg@example.org", NOW)
    later = NOW + dt.timedelta(days=40)
    out = request_subscription(
        store, KEY, address="weg@example.org", name=None, language="de",
        consent_version="de-1", proof=proof, now=later,
    )  # fmt: skip
    assert out.action == "send-confirmation" and out.confirm_token is not None
    assert confirm(store, KEY, out.confirm_token, proof=proof, now=later).just_now
    assert store.subscribers.forgotten_at(forget_hash(KEY, "weg@example.org")) is None


def test_export_reads_back_and_guards_spreadsheet_formulas(store: Store, tmp_path: Path) -> None:
    store.subscribers.add(
        "a@example.org", name="=HYPERLINK(1)", language="de", status="confirmed", now=NOW
    )
    store.subscribers.add(
        "b@example.org", name="Bärbel Groß", language="en", status="confirmed", now=NOW
    )
    store.subscribers.add("c@example.org", name=None, language="de", status="unsubscribed", now=NOW)
    out = io.StringIO()
    assert export_csv(store, out) == 2
    text = out.getvalue()
    assert text.startswith("\ufeffemail;name;language;status;subscribed_at\r\n")
    assert "a@example.org;'=HYPERLINK(1);de;confirmed;" in text
    path = write(tmp_path, "export.csv", text.encode())
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    fresh.ensure_schema()
    report = imp(fresh, path)
    assert [(p.email, p.name, p.language) for p in report.added] == [
        ("a@example.org", "=HYPERLINK(1)", "de"),
        ("b@example.org", "Bärbel Groß", "en"),
    ]
    everyone = io.StringIO()
    assert export_csv(store, everyone, statuses=("confirmed", "unsubscribed")) == 3
    # Re-importing a full export never turns a person who left back into a subscriber.
    full = write(tmp_path, "full.csv", everyone.getvalue().encode())
    other = Store(f"sqlite:///{tmp_path / 'other.sqlite'}")
    other.ensure_schema()
    assert [p.email for p in imp(other, full).added] == ["a@example.org", "b@example.org"]


# --- the command line ------------------------------------------------------------------------


@pytest.fixture
def cli(tmp_path: Path):  # type: ignore[no-untyped-def]
    env = tmp_path / "test.env"
    env.write_text(f"SESSION_BOT_VAR_DIR={tmp_path / 'var'}\nSESSION_BOT_SECRET_KEY={KEY}\n")
    app = typer.Typer()
    app.add_typer(subscribers_app, name="subscribers")
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["subscribers", *args, "--env-file", str(env)], input=input)

    return run


def test_cli_add_list_show_remove_forget(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    r = cli(
        "add",
        "kristina@example.org",
        "--name",
        "Kristina N.",
        "--source",
        "E-Mail vom 3.2.2025",
        "--by",
        "jb",
    )
    assert r.exit_code == 0, r.output
    again = cli("add", "Kristina@example.org")
    assert again.exit_code == 2 and "already on the list" in again.output
    listed = cli("list")
    assert "kristina@example.org\tconfirmed\tde\tKristina N." in listed.stdout
    shown = cli("show", "kristina@example.org")
    assert shown.exit_code == 0
    assert "Imported from:" in shown.stdout and "E-Mail vom 3.2.2025" in shown.stdout
    assert "Imported by:" in shown.stdout and "jb" in shown.stdout
    assert cli("remove", "kristina@example.org").stdout.strip().endswith("unsubscribed")
    assert "Unsubscribed at:" in cli("show", "kristina@example.org").stdout
    refused = cli("forget", "kristina@example.org", input="n\n")
    assert refused.exit_code != 0
    assert "kristina@example.org" in cli("list").stdout
    gone = cli("forget", "kristina@example.org", "--yes")
    assert gone.exit_code == 0 and "erased" in gone.stdout
    assert "kristina@example.org" not in cli("list").stdout
    assert "erased on request" in cli("show", "kristina@example.org").stdout
    blocked = cli("add", "kristina@example.org")
    assert blocked.exit_code == 2 and "--readd-forgotten" in blocked.output
    assert cli("show", "nobody@example.org").exit_code == 2
    # Addresses typed with an umlaut domain find the stored (ASCII) form.
    assert cli("add", "info@bäckerei-schmidt.de").exit_code == 0
    assert cli("remove", "Info@Bäckerei-Schmidt.de").stdout.strip().endswith("unsubscribed")
    assert f"info@{PUNY}\tunsubscribed" in cli("list").stdout


def test_cli_import_dry_run_then_import_then_export(cli, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = write(tmp_path, "Verteiler.csv", GERMAN_EXPORT)
    dry = cli("import", str(path), "--dry-run")
    assert dry.exit_code == 1  # one row rejected
    assert "line 4: rejected" in dry.output and "would add anna.mueller@example.org" in dry.stdout
    assert "nothing changed" in dry.stdout
    assert cli("list").stdout == "E-Mail\tStatus\tSprache\tName\n"
    done = cli("import", str(path), "--by", "jb")
    assert done.exit_code == 1 and "added 3" in done.stdout
    out = tmp_path / "out.csv"
    exported = cli("export", str(out))
    assert exported.exit_code == 0 and "exported 3" in exported.stdout
    data = out.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfemail;name;language;status;subscribed_at_utc\r\n")
    assert "Peter Özdemir;en;confirmed".encode() in data
    broken = cli("import", str(write(tmp_path, "x.xlsx", b"PK\x03\x04" + bytes(10))))
    assert broken.exit_code == 2 and "not a CSV file" in broken.output


def test_names_lose_control_characters(store: Store) -> None:
    proof = RequestProof(None, None, None)
    out = request_subscription(
        store, KEY, address="n@example.org", name="Ann\x00a\x1b  B.\n", language="de",
        consent_version="de-1", proof=proof, now=NOW,
    )  # fmt: skip
    assert out.name == "Anna B." and store.subscribers.get("n@example.org")["name"] == "Anna B."  # type: ignore[index]


def test_add_refuses_an_invalid_address(store: Store) -> None:
    from session_bot.app.subscriptions import add_subscriber

    with pytest.raises(SessionBotError, match="not a valid e-mail address"):
        add_subscriber(
            store,
            KEY,
            address="nobody",
            name=None,
            language="de",
            source="t",
            added_by="t",
            now=NOW,
        )


def test_an_erased_subscribers_old_unsubscribe_link_never_acts_on_someone_else(
    store: Store,
) -> None:
    from session_bot.app.subscriptions import forget_subscriber, unsubscribe

    store.subscribers.add("a@example.org", name=None, language="de", status="confirmed", now=NOW)
    last = store.subscribers.add(
        "b@example.org", name=None, language="de", status="confirmed", now=NOW
    )
    forget_subscriber(store, KEY, "b@example.org", NOW)
    newcomer = store.subscribers.add(
        "c@example.org", name=None, language="de", status="confirmed", now=NOW
    )
    assert newcomer != last  # SQLite would hand out a deleted highest id again
    assert unsubscribe(store, last, NOW) == "unknown"
    assert store.subscribers.get("c@example.org")["status"] == "confirmed"  # type: ignore[index]
