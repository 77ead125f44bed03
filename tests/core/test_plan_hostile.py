"""Plan files an organiser (or an accident) can write that must end in a PlanError, never in a
traceback or a hang: each error names the file, the line and the field, and what to do."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from session_bot.core.errors import PlanError
from session_bot.core.plan.file import load_plan, parse_plan
from session_bot.core.plan.occurrences import find_occurrence, occurrences
from session_bot.core.timeline import due_actions
from tests.core.plans import make_series, one_series_plan

UTC = dt.UTC

HEAD = [
    "series:",
    "  - id: test",
    '    title: "Test"',
    '    rrule: "FREQ=MONTHLY;BYDAY=-1WE"',
    "    starts_on: 2024-01-01",
    '    start: "12:30"',
    "    organiser: {name: Org, email: org@example.org}",
]


def plan_text(*extra: str, **replace: str) -> str:
    lines = list(HEAD)
    for key, value in replace.items():
        lines = [f"    {key}: {value}" if ln.startswith(f"    {key}:") else ln for ln in lines]
    return "\n".join([*lines, *extra]) + "\n"


def refused(text: str) -> PlanError:
    with pytest.raises(PlanError) as info:
        parse_plan(text, "plan.yaml")
    assert info.value.file == "plan.yaml"
    return info.value


# --- 1. dates that are not on the calendar -----------------------------------------------------


def test_a_session_key_that_is_no_date_names_its_line_and_field() -> None:
    err = refused(plan_text("    sessions:", "      2026-02-30: {topic: Thema}"))
    assert (err.line, err.field) == (9, "series[test].sessions.2026-02-30")
    assert "February 2026 has 28 days" in str(err)


def test_an_exception_that_is_no_date_names_its_line_and_field() -> None:
    err = refused(plan_text("    exceptions: [2025-12-31, 2026-02-29]"))
    assert (err.line, err.field) == (8, "series[test].exceptions[1]")
    assert "2026-02-29 is not a date" in str(err)


def test_a_starts_on_that_is_no_date_names_its_line_and_field() -> None:
    err = refused(plan_text(starts_on="2026-02-31"))
    assert (err.line, err.field) == (5, "series[test].starts_on")
    assert "not a date" in str(err)


def test_a_date_with_a_time_is_checked_too() -> None:
    err = refused(plan_text("    exceptions: [2026-04-31 10:00:00]"))
    assert (err.line, err.field) == (8, "series[test].exceptions[0]")
    assert "April 2026 has 30 days" in str(err)


def test_a_quoted_session_key_that_is_no_date_names_its_line() -> None:
    err = refused(plan_text("    sessions:", '      "2026-02-30": {topic: Thema}'))
    assert (err.line, err.field) == (9, "series[test].sessions.2026-02-30")


def test_a_month_thirteen_is_no_date_either() -> None:
    err = refused(plan_text("    until: 2026-13-01"))
    assert (err.line, err.field) == (8, "series[test].until")
    assert "month 13" in str(err)


# --- 2. YAML the organiser never needs: control characters, aliases, anchors, tags, size -------


def test_a_control_character_names_its_line() -> None:
    err = refused(plan_text("    # a bell \x07 in a comment"))
    assert err.line == 8
    assert "U+0007" in str(err)


def test_a_recursive_alias_is_refused_at_its_line() -> None:
    err = refused(plan_text("    breaks: &a [*a]"))
    assert err.line == 8
    assert "aliases" in str(err) or "anchors" in str(err)


@pytest.mark.timeout(20)
def test_an_alias_bomb_is_refused_at_once() -> None:
    bomb = ['lol: &l0 ["lol"]']
    bomb += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 10)]
    err = refused("\n".join(bomb) + "\n")
    assert err.line == 1  # the first anchor
    assert "write the value out" in str(err)


def test_an_alias_alone_names_its_line_and_says_to_write_the_value_out() -> None:
    # Without the anchor the alias is the first thing refused (as an unknown anchor otherwise).
    err = refused(plan_text("    breaks: *months"))
    assert err.line == 8
    assert "aliases (*name) are not supported; write the value out" in str(err)


def test_an_anchor_is_refused_too() -> None:
    err = refused(plan_text('    reply_to: &r "org@example.org"'))
    assert err.line == 8
    assert "anchors (&name) are not supported" in str(err)


def test_a_deeply_nested_value_is_refused_not_a_recursion_error() -> None:
    err = refused(plan_text("    breaks: " + "[" * 5000 + "]" * 5000))
    assert err.line == 8
    assert "nested" in str(err)


@pytest.mark.parametrize("value", ["!!int abc", "!!timestamp soon", "!!binary x"])
def test_an_explicit_tag_is_refused_at_its_line(value: str) -> None:
    err = refused(plan_text(f"    duration: {value}"))
    assert err.line == 8
    assert "tags" in str(err)


def test_a_number_yaml_cannot_read_names_its_line() -> None:
    err = refused(plan_text("    duration: 0x_"))
    assert err.line == 8


def test_a_plan_over_a_megabyte_is_refused(tmp_path: Path) -> None:
    filler = "# " + "x" * 98 + "\n"
    text = plan_text() + filler * 10_500
    err = refused(text)
    assert "1 MB" in str(err)
    path = tmp_path / "plan.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(PlanError, match="1 MB") as info:
        load_plan(path)
    assert info.value.file == str(path)


# --- 3. recurrence rules that make no sense for sessions, or never end --------------------------


@pytest.mark.parametrize("freq", ["SECONDLY", "MINUTELY", "HOURLY"])
def test_a_sub_daily_frequency_is_refused_at_the_rrule_field(freq: str) -> None:
    err = refused(plan_text(rrule=f'"FREQ={freq}"'))
    assert (err.line, err.field) == (4, "series[test].rrule")
    assert "DAILY, WEEKLY, MONTHLY or YEARLY" in str(err)


def test_a_time_of_day_in_the_rule_is_refused() -> None:
    err = refused(plan_text(rrule='"FREQ=DAILY;BYHOUR=0,1,2,3;BYMINUTE=0,30"'))
    assert err.field == "series[test].rrule"
    assert "start:" in str(err)


@pytest.mark.timeout(20)
@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=31",
        "FREQ=MONTHLY;BYMONTH=2;BYMONTHDAY=31",
        "FREQ=WEEKLY;BYMONTH=2;BYMONTHDAY=31",
        "FREQ=DAILY;BYMONTH=2;BYMONTHDAY=31",
        "FREQ=DAILY;INTERVAL=7;BYMONTH=2;BYMONTHDAY=30",
        "FREQ=MONTHLY;BYDAY=-1WE;BYSETPOS=5",
        "FREQ=DAILY;BYMONTHDAY=31;BYYEARDAY=60",
        "FREQ=DAILY;INTERVAL=10;BYMONTHDAY=31;BYYEARDAY=60",
        "FREQ=WEEKLY;INTERVAL=3;BYMONTHDAY=31;BYYEARDAY=60;COUNT=5",
    ],
)
def test_a_rule_that_never_produces_a_date_is_refused(rule: str) -> None:
    err = refused(plan_text(rrule=f'"{rule}"'))
    assert err.field == "series[test].rrule"
    assert "produces no date" in str(err)


def test_a_start_before_2000_is_refused() -> None:
    err = refused(plan_text(starts_on="0001-01-01"))
    assert (err.line, err.field) == (5, "series[test].starts_on")


@pytest.mark.timeout(20)
@pytest.mark.parametrize("interval", ["0", "-1", "x", "1001"])
def test_an_interval_that_is_not_a_positive_number_is_refused(interval: str) -> None:
    # dateutil loops forever on INTERVAL=0 and fails while expanding a negative one.
    err = refused(plan_text(rrule=f'"FREQ=WEEKLY;INTERVAL={interval};BYDAY=WE"'))
    assert err.field == "series[test].rrule"
    assert "INTERVAL must be a whole number" in str(err)


def test_a_rare_rule_is_still_accepted_and_expands() -> None:
    # 29 February on a Monday: once in 28 years or so, but it does happen.
    series = make_series(rrule="FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;BYDAY=MO")
    dates = [o.date for o in occurrences(series, dt.date(2024, 1, 1), dt.date(2060, 12, 31))]
    assert dates == [dt.date(2044, 2, 29)]


# --- 4. a key written twice ---------------------------------------------------------------------


def test_a_session_date_written_twice_names_both_lines() -> None:
    err = refused(
        plan_text("    sessions:", "      2026-03-11: {topic: A}", "      2026-03-11: {topic: B}")
    )
    assert (err.line, err.field) == (10, "series[test].sessions.2026-03-11")
    assert "lines 9 and 10" in str(err)


def test_any_key_written_twice_is_refused() -> None:
    err = refused(plan_text('    start: "13:00"'))
    assert (err.line, err.field) == (8, "series[test].start")
    assert "lines 6 and 8" in str(err)


# --- 5. wall times across daylight saving time (finding 11) -------------------------------------

SPRING = dt.date(2026, 3, 29)  # Europe/Berlin: 02:00 → 03:00
AUTUMN = dt.date(2026, 10, 25)  # Europe/Berlin: 03:00 → 02:00


def test_a_session_in_the_spring_gap_names_its_date_at_parse_time() -> None:
    session = "      2026-03-29: {topic: A, extra: true}"
    err = refused(plan_text("    sessions:", session, start='"02:30"'))
    assert (err.line, err.field) == (9, "series[test].sessions.2026-03-29")
    assert "02:30 Uhr gibt es am 2026-03-29 in Europe/Berlin nicht" in str(err)


def test_a_session_with_its_own_start_in_the_gap_names_that_field() -> None:
    err = refused(
        plan_text(
            "    sessions:",
            "      2026-03-29:",
            "        topic: A",
            '        start: "02:15"',
            rrule='"FREQ=MONTHLY;BYDAY=-1SU"',
        )
    )
    assert (err.line, err.field) == (11, "series[test].sessions.2026-03-29.start")
    assert "02:15 Uhr gibt es am 2026-03-29" in str(err)


def test_a_rule_date_in_the_gap_is_an_error_naming_the_start_field_and_the_date() -> None:
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SU", start="02:30")
    plan = one_series_plan(series)
    assert [o.date for o in occurrences(series, dt.date(2026, 3, 1), dt.date(2026, 3, 22))]
    with pytest.raises(PlanError) as info:
        find_occurrence(plan, SPRING)
    err = info.value
    assert (err.file, err.field) == ("t.yaml", "series[test].start")
    assert "02:30 Uhr gibt es am 2026-03-29" in str(err)
    assert "exceptions" in str(err)


def test_the_timeline_reports_a_gap_with_the_plan_file() -> None:
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SU", start="02:30")
    now = dt.datetime(2026, 3, 20, 12, tzinfo=UTC)
    with pytest.raises(PlanError, match="2026-03-29") as info:
        due_actions(now, one_series_plan(series), {})
    assert (info.value.file, info.value.field) == ("t.yaml", "series[test].start")


def test_a_gap_date_listed_as_an_exception_is_no_error() -> None:
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SU", start="02:30", exceptions=[SPRING])
    (occ,) = occurrences(series, SPRING, SPRING)
    assert occ.skip_reason


@pytest.mark.parametrize(("hhmm", "duration"), [("02:00", 60), ("02:30", 45), ("01:30", 90)])
def test_a_session_lasts_its_duration_in_real_time_on_the_fall_back_day(
    hhmm: str, duration: int
) -> None:
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SU", start=hhmm, duration=duration)
    (occ,) = occurrences(series, AUTUMN, AUTUMN)
    assert occ.end.astimezone(UTC) - occ.start.astimezone(UTC) == dt.timedelta(minutes=duration)
    assert occ.end.tzinfo is series.zone


def test_an_ambiguous_start_is_its_first_occurrence() -> None:
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SU", start="02:30")
    (occ,) = occurrences(series, AUTUMN, AUTUMN)
    assert occ.start.utcoffset() == dt.timedelta(hours=2)  # still summer time
    assert occ.start.astimezone(UTC) == dt.datetime(2026, 10, 25, 0, 30, tzinfo=UTC)


def test_a_session_across_the_spring_change_lasts_its_duration() -> None:
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SU", start="01:30", duration=60)
    (occ,) = occurrences(series, SPRING, SPRING)
    assert occ.end.astimezone(UTC) - occ.start.astimezone(UTC) == dt.timedelta(minutes=60)
    assert (occ.end.hour, occ.end.minute) == (3, 30)
