"""Properties of reading the plan file: every error points at the line and field at fault."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from session_bot.core.errors import PlanError
from session_bot.core.plan.file import load_plan, parse_plan
from session_bot.core.plan.model import Series

SOME = settings(max_examples=60, deadline=None)


def series_lines(series_id: str) -> list[str]:
    return [
        f"  - id: {series_id}",
        '    title: "Test"',
        '    rrule: "FREQ=MONTHLY;BYDAY=-1WE"',
        "    starts_on: 2024-01-01",
        '    start: "12:30"',
        "    organiser: {name: Org, email: org@example.org}",
    ]


unknown_keys = st.from_regex(r"[a-z][a-z_]{2,12}", fullmatch=True).filter(
    lambda k: k not in Series.model_fields
)


@SOME
@given(st.integers(1, 3), st.data(), unknown_keys)
def test_an_unknown_key_is_reported_at_its_line_in_its_series(
    n_series: int, data: st.DataObject, key: str
) -> None:
    blocks = [series_lines(f"s{i}") for i in range(n_series)]
    bad = data.draw(st.integers(0, n_series - 1), label="series with the typo")
    # After the `- id:` line, anywhere among the series' keys.
    at = data.draw(st.integers(1, len(blocks[bad])), label="position")
    blocks[bad].insert(at, f"    {key}: 1")
    lines = ["series:", *(line for block in blocks for line in block)]
    expected_line = 1 + sum(len(b) for b in blocks[:bad]) + at + 1
    assert lines[expected_line - 1] == f"    {key}: 1"
    with pytest.raises(PlanError) as info:
        parse_plan("\n".join(lines) + "\n", "plan.yaml")
    err = info.value
    assert (err.file, err.line, err.field) == ("plan.yaml", expected_line, f"series[s{bad}].{key}")
    assert "unbekanntes Feld" in str(err)


@SOME
@given(
    st.lists(
        st.dates(dt.date(2000, 1, 1), dt.date(2099, 12, 31)), min_size=1, max_size=5, unique=True
    ),
    st.data(),
)
def test_a_bad_session_value_is_reported_at_its_line_under_its_date(
    dates: list[dt.date], data: st.DataObject
) -> None:
    bad = data.draw(st.sampled_from(dates), label="session with the bad duration")
    lines = ["series:", *series_lines("test"), "    sessions:"]
    expected_line = 0
    for d in dates:
        lines += [f"      {d.isoformat()}:", '        topic: "Thema"']
        lines.append(f"        duration: {3 if d == bad else 60}")
        if d == bad:
            expected_line = len(lines)
    with pytest.raises(PlanError) as info:
        parse_plan("\n".join(lines) + "\n", "plan.yaml")
    err = info.value
    # Dates are spelt as in the file, not as pydantic's ``datetime.date(…)``.
    assert err.field == f"series[test].sessions.{bad.isoformat()}.duration"
    assert err.line == expected_line
    assert "mindestens 5 Minuten" in str(err)


def test_a_valid_file_round_trips_its_dates_and_source(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    text = "\n".join(["series:", *series_lines("test"), "    sessions:"])
    path.write_text(text + "\n      2025-02-26: {topic: Thema}\n", encoding="utf-8")
    plan = load_plan(path)
    assert plan.source == str(path)
    (series,) = plan.series
    assert series.starts_on == dt.date(2024, 1, 1)
    assert list(series.sessions) == [dt.date(2025, 2, 26)]


def test_a_file_that_is_not_utf8_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "plan.yaml"
    path.write_bytes("series: [Übung]\n".encode("latin-1"))
    with pytest.raises(PlanError, match="UTF-8") as info:
        load_plan(path)
    assert info.value.file == str(path)
