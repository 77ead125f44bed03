"""The CSV export keeps spreadsheets from running cells as formulas and reads back unchanged
(issue 14, finding 14)."""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path

import pytest

from session_bot.adapters.db.store import Store
from session_bot.app.subscriptions import export_csv, import_csv

NOW = dt.datetime(2025, 2, 13, 9, 0, tzinfo=dt.UTC)
KEY = "test-secret-key-0123456789abcdef"
# Valid addresses a spreadsheet would take for formulas, with names that would be too.
PEOPLE = [
    ("=1+2@example.org", '=HYPERLINK("https://evil.example";"Klick")'),
    ("+4930123@example.org", "+49 30 123"),
    ("-x@example.org", "-2+3"),
    ("plain@example.org", "@SUMME(A1:A9)"),
    ("'quote@example.org", "'t Hooft"),
]


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    s.ensure_schema()
    return s


def exported(store: Store) -> str:
    for email, name in PEOPLE:
        store.subscribers.add(email, name=name, language="de", status="confirmed", now=NOW)
    out = io.StringIO()
    assert export_csv(store, out) == len(PEOPLE)
    return out.getvalue()


def test_no_exported_cell_starts_with_a_formula_character(store: Store) -> None:
    rows = list(csv.reader(io.StringIO(exported(store).lstrip("\ufeff")), delimiter=";"))
    cells = [cell for row in rows[1:] for cell in row[:2]]
    assert not [c for c in cells if c.startswith(("=", "+", "-", "@", "\t", "\r"))]
    assert rows[1][:2] == ["'=1+2@example.org", '\'=HYPERLINK("https://evil.example";"Klick")']
    assert rows[5][:2] == ["'quote@example.org", "'t Hooft"]  # no formula: as it is


def test_an_export_imports_back_to_the_same_addresses_and_names(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "export.csv"
    path.write_text(exported(store), "utf-8")
    fresh = Store(f"sqlite:///{tmp_path / 'fresh.sqlite'}")
    fresh.ensure_schema()
    report = import_csv(fresh, KEY, path, imported_by="K. Neumann", now=NOW)
    assert report.rejected == []
    assert [(p.email, p.name) for p in report.added] == PEOPLE
    assert fresh.subscribers.get("=1+2@example.org") is not None


def test_a_guarded_and_an_unguarded_spelling_of_one_address_are_duplicates(
    store: Store, tmp_path: Path
) -> None:
    path = tmp_path / "list.csv"
    path.write_text("email;name\r\n'-x@example.org;A\r\n-x@example.org;B\r\n", "utf-8")
    report = import_csv(store, KEY, path, imported_by="K. Neumann", now=NOW)
    assert [(p.line, p.email) for p in report.added] == [(2, "-x@example.org")]
    assert [(r.line, r.reason) for r in report.rejected] == [(3, "duplicate of line 2")]
