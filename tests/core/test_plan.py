"""The plan file: validation with file/line/field, recurrence, skips, DST."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from session_bot.core.errors import PlanError
from session_bot.core.plan import find_occurrence, load_plan, occurrences, parse_plan

EXAMPLE = Path(__file__).parents[2] / "examples" / "willkommen.yaml"

MINIMAL = """\
series:
  - id: test
    title: "Test"
    rrule: "FREQ=MONTHLY;BYDAY=-1WE"
    starts_on: 2024-01-01
    start: "12:30"
    organiser: {name: Org, email: org@example.org}
"""


def test_example_plan_has_the_seed_session() -> None:
    plan = load_plan(EXAMPLE)
    occ = find_occurrence(plan, dt.date(2025, 2, 26))
    assert occ.content is not None
    assert occ.content.topic_lines == [
        "Akteursübergreifende Zusammenarbeit und",
        "Welcome-Strukturen zur Integration vor Ort",
    ]
    assert [s.name for s in occ.content.speakers] == [
        "Anna Lena Hemmer",
        "Dr. Kristian Garthus-Niegel",
    ]
    assert occ.start == dt.datetime(2025, 2, 26, 11, 30, tzinfo=dt.UTC)
    assert occ.end.astimezone(dt.UTC) == dt.datetime(2025, 2, 26, 12, 30, tzinfo=dt.UTC)
    assert occ.invitation_at == dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)


def test_last_wednesday_recurrence_and_skips() -> None:
    plan = load_plan(EXAMPLE)
    occs = list(occurrences(plan.series[0], dt.date(2025, 1, 1), dt.date(2025, 12, 31)))
    assert [o.date.isoformat() for o in occs][:4] == [
        "2025-02-26",
        "2025-03-26",
        "2025-04-30",
        "2025-05-28",
    ]
    assert all(o.date.weekday() == 2 for o in occs)
    skipped = {o.date.isoformat(): o.skip_reason for o in occs if o.skip_reason}
    assert "break" in (skipped["2025-08-27"] or "")
    assert "exception" in (skipped["2025-12-31"] or "")


def test_wednesday_holiday_of_saxony_is_skipped() -> None:
    # Buß- und Bettag 2028 is Wednesday 22 November: the fourth Wednesday of that month.
    text = MINIMAL.replace("BYDAY=-1WE", "BYDAY=4WE") + "    holidays: {country: DE, subdiv: SN}\n"
    series = parse_plan(text, "t.yaml").series[0]
    (occ,) = occurrences(series, dt.date(2028, 11, 1), dt.date(2028, 11, 30))
    assert occ.date == dt.date(2028, 11, 22)
    assert occ.skip_reason is not None and "Buß" in occ.skip_reason
    # The same date is a working day in Berlin.
    berlin = parse_plan(text.replace("SN", "BE"), "t.yaml").series[0]
    (occ_be,) = occurrences(berlin, dt.date(2028, 11, 1), dt.date(2028, 11, 30))
    assert occ_be.skip_reason is None


def test_session_override_of_start_and_duration_and_extra_session() -> None:
    text = MINIMAL + (
        "    sessions:\n"
        "      2025-03-26: {topic: Moved, start: '14:00', duration: 90}\n"
        "      2025-03-12: {topic: Extra, extra: true}\n"
    )
    series = parse_plan(text, "t.yaml").series[0]
    occs = {o.date: o for o in occurrences(series, dt.date(2025, 3, 1), dt.date(2025, 3, 31))}
    assert set(occs) == {dt.date(2025, 3, 12), dt.date(2025, 3, 26)}
    moved = occs[dt.date(2025, 3, 26)]
    assert moved.start.hour == 14 and moved.duration == 90


@pytest.mark.parametrize(
    ("mutation", "line", "field", "words"),
    [
        (
            lambda t: t.replace('start: "12:30"', 'start: "25:30"'),
            6,
            "series[test].start",
            "Uhrzeit",
        ),
        (lambda t: t.replace("title:", "titel:"), 3, "series[test].titel", "unbekanntes Feld"),
        (lambda t: t.replace("BYDAY=-1WE", "BYDAY=XX"), 4, "series[test].rrule", "RRULE"),
        (lambda t: t + "    timezone: Europe/Berlinn\n", 8, "series[test].timezone", "Zeitzone"),
        (
            lambda t: t + "    sessions:\n      2025-02-26:\n        cancelled: true\n",
            9,
            "series[test].sessions.2025-02-26",
            "reason",
        ),
        (
            lambda t: t.replace("email: org@example.org", "email: nope"),
            7,
            "series[test].organiser.email",
            "E-Mail-Adresse",
        ),
    ],
)
def test_invalid_plans_name_file_line_and_field(mutation, line, field, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(PlanError) as info:
        parse_plan(mutation(MINIMAL), "plan.yaml")
    err = info.value
    assert err.file == "plan.yaml"
    assert err.line == line, str(err)
    assert err.field == field, str(err)
    assert words.lower() in str(err).lower()
    assert str(err).startswith(f"plan.yaml:{line}: {field}: ")


def test_yaml_syntax_error_has_line() -> None:
    with pytest.raises(PlanError) as info:
        parse_plan(MINIMAL + "    breaks: [8\n", "p.yaml")
    assert info.value.line is not None and info.value.line >= 8
    assert "YAML" in str(info.value)


def test_missing_file_and_not_a_mapping(tmp_path: Path) -> None:
    with pytest.raises(PlanError, match="SESSION_BOT_PLAN"):
        load_plan(tmp_path / "missing.yaml")
    with pytest.raises(PlanError, match="series:"):
        parse_plan("- just a list\n", "p.yaml")


@given(st.integers(min_value=2024, max_value=2035), st.integers(min_value=1, max_value=12))
def test_start_is_always_the_local_wall_time(year: int, month: int) -> None:
    series = parse_plan(MINIMAL, "t.yaml").series[0]
    first = dt.date(year, month, 1)
    last = (first + dt.timedelta(days=32)).replace(day=1) - dt.timedelta(days=1)
    (occ,) = occurrences(series, first, last)
    local = occ.start.astimezone(series.zone)
    assert (local.hour, local.minute) == (12, 30)
    offset = local.utcoffset()
    assert offset in (dt.timedelta(hours=1), dt.timedelta(hours=2))
    # The last Wednesday: a week later is in the next month.
    assert (occ.date + dt.timedelta(days=7)).month != occ.date.month
    assert occ.invitation_at.astimezone(series.zone).hour == 9
