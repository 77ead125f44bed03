"""The subscriber list in the organiser's words and files (issue 19): Excel's Windows-1252 CSV
with German headers, a German export she opens with a double-click, a `list` with a header and
no blank rows for erased people, and `forget` that asks (or, with nobody to ask, refuses)."""

from __future__ import annotations

import datetime as dt
import io
import os
import select
import subprocess
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import typer
from typer.testing import CliRunner

from session_bot.adapters.db.store import Store
from session_bot.app.subscriptions import export_csv, import_csv
from session_bot.cli.subscribers import subscribers_app
from session_bot.core.errors import SubscriberImportError
from tests.conftest import EXAMPLE_PLAN

NOW = dt.datetime(2025, 2, 13, 9, 0, tzinfo=dt.UTC)
KEY = "test-secret-key-0123456789abcdef"
# Excel on German Windows, "CSV (Trennzeichen-getrennt)": Windows-1252, no BOM, semicolons.
EXCEL_1252 = (
    "Vorname;Nachname;E-Mail;Sprache\r\n"
    "Jörg;Weiß;joerg.weiss@example.org;Deutsch\r\n"
    "Bärbel;Müller-Lüdenscheidt;baerbel@example.org;Englisch\r\n"
    "Zoë;Ångström;zoe@example.org;\r\n"
).encode("cp1252")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    s.ensure_schema()
    return s


def imp(store: Store, path: Path):  # type: ignore[no-untyped-def]
    return import_csv(store, KEY, path, imported_by="K. Neumann", now=NOW)


def write(tmp_path: Path, name: str, data: bytes) -> Path:
    path = tmp_path / name
    path.write_bytes(data)
    return path


# --- import: encodings and German headers ------------------------------------------------------


def test_excels_windows_1252_export_with_german_headers(store: Store, tmp_path: Path) -> None:
    report = imp(store, write(tmp_path, "Verteiler.csv", EXCEL_1252))
    assert report.rejected == [] and report.encoding == "Windows-1252"
    assert [(p.email, p.name, p.language) for p in report.added] == [
        ("joerg.weiss@example.org", "Jörg Weiß", "de"),
        ("baerbel@example.org", "Bärbel Müller-Lüdenscheidt", "en"),
        ("zoe@example.org", "Zoë Ångström", "de"),
    ]
    assert report.summary().endswith("rejected 0 (gelesen als Windows-1252)")
    assert store.subscribers.get("joerg.weiss@example.org")["name"] == "Jörg Weiß"  # type: ignore[index]


def test_utf8_with_bom_and_english_headers_still_works(store: Store, tmp_path: Path) -> None:
    data = "\ufeffemail,name,language\r\nanna@example.org,Anna Groß,en\r\n".encode()
    report = imp(store, write(tmp_path, "list.csv", data))
    assert [(p.email, p.name, p.language) for p in report.added] == [
        ("anna@example.org", "Anna Groß", "en")
    ]
    assert report.encoding == "UTF-8 mit BOM" and "(gelesen als UTF-8 mit BOM)" in report.summary()
    plain = imp(store, write(tmp_path, "b.csv", "email;name\nbea@example.org;Béa\n".encode()))
    assert [p.name for p in plain.added] == ["Béa"] and plain.encoding == "UTF-8"


@pytest.mark.parametrize("header", ["E-Mail", "E-Mail-Adresse", "Email", "Mail", "e-mail "])
def test_the_address_column_under_its_german_names(
    store: Store, tmp_path: Path, header: str
) -> None:
    data = f"Name;{header};Sprache\r\nKarl Groß;karl@example.org;en\r\n".encode("cp1252")
    report = imp(store, write(tmp_path, "k.csv", data))
    assert [(p.email, p.name, p.language) for p in report.added] == [
        ("karl@example.org", "Karl Groß", "en")
    ]


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        # Bytes Windows-1252 leaves undefined: no text file of either kind.
        (b"email;name\r\na@example.org;\x81\x8d\x90\r\n", "line 2: neither UTF-8 nor Windows-1252"),
        # Control characters in the middle: a binary file, not a list.
        (b"email;name\r\na@example.org;\xe4\r\n\x02\x03\xff\r\n", "line 3: neither UTF-8"),
        (b"PK\x03\x04" + bytes(30), "spreadsheet workbook (.xlsx/.ods), not a CSV file"),
    ],
)
def test_a_file_that_is_no_text_is_still_refused(
    store: Store, tmp_path: Path, data: bytes, expected: str
) -> None:
    with pytest.raises(SubscriberImportError) as err:
        imp(store, write(tmp_path, "x.csv", data))
    assert expected in str(err.value)
    assert store.subscribers.count() == 0


# --- export ------------------------------------------------------------------------------------


def test_german_export_in_local_time_reads_back(store: Store, tmp_path: Path) -> None:
    store.subscribers.add(
        "jw@example.org", name="Jörg Weiß", language="de", status="confirmed", now=NOW,
        confirmed_at=NOW + dt.timedelta(hours=1),
    )  # fmt: skip
    store.subscribers.add("en@example.org", name="=1+1", language="en", status="confirmed", now=NOW)
    out = io.StringIO()
    assert export_csv(store, out, headers="de", zone=ZoneInfo("Europe/Berlin")) == 2
    lines = out.getvalue().split("\r\n")
    assert lines[0] == (
        "\ufeffE-Mail;Name;Sprache;Status;Angemeldet seit (Europe/Berlin);"
        "Bestätigt am (Europe/Berlin)"
    )
    # 09:00 UTC in February is 10:00 in Berlin.
    assert (
        lines[1] == "jw@example.org;Jörg Weiß;Deutsch;bestätigt;13.02.2025 10:00;13.02.2025 11:00"
    )
    assert lines[2] == "en@example.org;'=1+1;Englisch;bestätigt;13.02.2025 10:00;"
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    fresh.ensure_schema()
    back = imp(fresh, write(tmp_path, "de.csv", out.getvalue().encode()))
    assert back.rejected == [] and back.unchanged == []
    assert [(p.email, p.name, p.language) for p in back.added] == [
        ("jw@example.org", "Jörg Weiß", "de"),
        ("en@example.org", "=1+1", "en"),
    ]


def test_the_default_export_says_its_times_are_utc(store: Store) -> None:
    store.subscribers.add("a@example.org", name=None, language="de", status="confirmed", now=NOW)
    out = io.StringIO()
    export_csv(store, out, headers="utc")
    assert out.getvalue() == (
        "\ufeffemail;name;language;status;subscribed_at_utc\r\n"
        "a@example.org;;de;confirmed;2025-02-13 09:00:00\r\n"
    )


# --- the command line --------------------------------------------------------------------------


@pytest.fixture
def env_file(tmp_path: Path) -> Path:
    env = tmp_path / "test.env"
    env.write_text(f"SESSION_BOT_VAR_DIR={tmp_path / 'var'}\nSESSION_BOT_SECRET_KEY={KEY}\n")
    return env


@pytest.fixture
def cli(env_file: Path):  # type: ignore[no-untyped-def]
    app = typer.Typer()
    app.add_typer(subscribers_app, name="subscribers")
    runner = CliRunner()

    def run(*args: str, input: str | None = None):  # type: ignore[no-untyped-def]
        return runner.invoke(app, ["subscribers", *args, "--env-file", str(env_file)], input=input)

    return run


def test_cli_import_names_the_encoding_and_export_german_reads_back(  # type: ignore[no-untyped-def]
    cli, tmp_path: Path
) -> None:
    done = cli("import", str(write(tmp_path, "Verteiler.csv", EXCEL_1252)))
    assert done.exit_code == 0, done.output
    assert "added 3, unchanged 0, rejected 0 (gelesen als Windows-1252)" in done.stdout
    out = tmp_path / "Abonnenten.csv"
    exported = cli("export", str(out), "--german", "--plan", str(EXAMPLE_PLAN))
    assert exported.exit_code == 0, exported.output
    assert "exported 3" in exported.stdout
    data = out.read_bytes()
    assert data.startswith(
        "\ufeffE-Mail;Name;Sprache;Status;Angemeldet seit (Europe/Berlin);".encode()
    )
    assert "joerg.weiss@example.org;Jörg Weiß;Deutsch;bestätigt;".encode() in data
    same = cli("export", str(tmp_path / "b.csv"), "--headers", "de", "--plan", str(EXAMPLE_PLAN))
    assert same.exit_code == 0 and (tmp_path / "b.csv").read_bytes() == data
    # Without a plan the times are UTC, and the header and a note say so.
    no_plan = cli("export", str(tmp_path / "u.csv"), "--german", "--plan", "missing.yaml")
    assert no_plan.exit_code == 0 and "Zeiten in UTC" in no_plan.output
    assert "Angemeldet seit (UTC)" in (tmp_path / "u.csv").read_text("utf-8-sig")
    # Reads back into another list through the import.
    other = tmp_path / "other.env"
    other.write_text(f"SESSION_BOT_VAR_DIR={tmp_path / 'var2'}\nSESSION_BOT_SECRET_KEY={KEY}\n")
    app = typer.Typer()
    app.add_typer(subscribers_app, name="subscribers")
    back = CliRunner().invoke(app, ["subscribers", "import", str(out), "--env-file", str(other)])
    assert back.exit_code == 0, back.output
    assert "added 3, unchanged 0, rejected 0 (gelesen als UTF-8 mit BOM)" in back.stdout
    listed = CliRunner().invoke(app, ["subscribers", "list", "--env-file", str(other)])
    assert "baerbel@example.org\tconfirmed\ten\tBärbel Müller-Lüdenscheidt" in listed.stdout


def test_list_has_a_header_and_no_blank_rows_for_erased_people(cli) -> None:  # type: ignore[no-untyped-def]
    for address in ("a@example.org", "b@example.org", "c@example.org"):
        assert cli("add", address, "--name", "X").exit_code == 0
    assert cli("forget", "a@example.org", "--yes").exit_code == 0
    assert cli("forget", "b@example.org", "--yes").exit_code == 0
    listed = cli("list")
    assert listed.stdout.splitlines() == [
        "E-Mail\tStatus\tSprache\tName",
        "c@example.org\tconfirmed\tde\tX",
    ]
    erased = cli("list", "--status", "forgotten")
    assert erased.exit_code == 0
    lines = erased.stdout.splitlines()
    assert lines[0] == "E-Mail\tStatus\tSprache\tName"
    assert lines[1:] == [
        "(gelöscht) 2 gelöschte Einträge nicht gezeigt: auf Wunsch gelöscht (DSGVO Art. 17), "
        "keine Adresse mehr gespeichert"
    ]
    assert not [ln for ln in lines if ln.startswith("\t")]
    assert cli("list", "--status", "gone").exit_code == 2


def test_forget_without_yes_and_nobody_to_ask_refuses(cli) -> None:  # type: ignore[no-untyped-def]
    assert cli("add", "weg@example.org").exit_code == 0
    refused = cli("forget", "weg@example.org")  # the test runner's stdin is no terminal
    assert refused.exit_code == 2
    assert "nicht gelöscht" in refused.output and "--yes" in refused.output
    assert "weg@example.org\tconfirmed" in cli("list").stdout
    gone = cli("forget", "weg@example.org", "--yes")
    assert gone.exit_code == 0 and "erased" in gone.stdout
    assert "weg@example.org" not in cli("list").stdout


def _on_a_terminal(env_file: Path, answer: str, *args: str) -> tuple[int, str]:
    """Run the real CLI with a terminal as its stdin and output; answer its question."""
    main, child = os.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    command = [sys.executable, "-m", "session_bot.cli", "subscribers", *args]
    proc = subprocess.Popen(
        [*command, "--env-file", str(env_file)],
        stdin=child, stdout=child, stderr=child, env=env, close_fds=True,
    )  # fmt: skip
    os.close(child)
    seen = b""
    deadline = time.monotonic() + 60
    answered = False
    while time.monotonic() < deadline:
        ready, _, _ = select.select([main], [], [], 0.2)
        if ready:
            try:
                chunk = os.read(main, 4096)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            seen += chunk
        if not answered and b"[j/N]" in seen:
            os.write(main, answer.encode() + b"\n")
            answered = True
        if proc.poll() is not None and not ready:
            break
    code = proc.wait(timeout=30)
    os.close(main)
    return code, seen.decode(errors="replace")


def test_forget_on_a_terminal_asks_in_german(cli, env_file: Path) -> None:  # type: ignore[no-untyped-def]
    assert cli("add", "weg@example.org").exit_code == 0
    code, shown = _on_a_terminal(env_file, "n", "forget", "weg@example.org")
    assert "Wirklich löschen? [j/N]" in shown and "nichts gelöscht" in shown
    assert code == 1 and "weg@example.org\tconfirmed" in cli("list").stdout
    code, shown = _on_a_terminal(env_file, "j", "forget", "weg@example.org")
    assert code == 0 and "erased" in shown, shown
    assert "weg@example.org" not in cli("list").stdout
