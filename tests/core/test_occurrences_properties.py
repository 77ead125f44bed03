"""Properties of ``occurrences``: which dates a series has, which it skips and why, and when.

Each property is checked against an oracle written from the rules themselves (calendar
arithmetic, the EU summer-time rule, Easter), not against dateutil.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import holidays
import pytest
from dateutil.easter import easter
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from session_bot.core.errors import PlanError
from session_bot.core.plan.model import Series
from session_bot.core.plan.occurrences import Occurrence, find_occurrence, occurrences
from tests.core.plans import (
    berlin_offset,
    days,
    last_sunday,
    make_series,
    one_series_plan,
    rrule_text,
    rule_dates,
)

BERLIN = ZoneInfo("Europe/Berlin")
UTC = dt.UTC
# Holiday calendars are built on first use; the first example of a run may be slow.
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

dates_2024_2031 = st.dates(dt.date(2024, 1, 1), dt.date(2031, 12, 31))


def skip_kind(occ: Occurrence) -> str | None:
    reason = occ.skip_reason
    if reason is None:
        return None
    for kind in ("exception", "break", "public holiday"):
        if kind in reason:
            return kind
    raise AssertionError(f"unexpected skip reason {reason!r}")


# --- which dates, and which are skipped ------------------------------------------------------


@st.composite
def series_and_window(draw: st.DrawFn) -> tuple[Series, dt.date, dt.date, str, int, int]:
    """A series with a random rule, start, end, breaks, exceptions and extra sessions; a window."""
    kind = draw(st.sampled_from(["weekly", "biweekly", "monthly"]))
    weekday = draw(st.integers(0, 6))
    n = draw(st.sampled_from([1, 2, 3, 4, -1]))
    starts_on = draw(dates_2024_2031)
    until = draw(st.none() | st.integers(0, 900).map(lambda k: starts_on + dt.timedelta(days=k)))
    lo = draw(st.dates(starts_on - dt.timedelta(days=200), starts_on + dt.timedelta(days=400)))
    hi = lo + dt.timedelta(days=draw(st.integers(-3, 500)))
    near = st.dates(lo - dt.timedelta(days=40), max(lo, hi) + dt.timedelta(days=40))
    on_rule = sorted(rule_dates(kind, weekday, n, starts_on, lo, max(lo, hi)))
    # Exceptions and sessions both on and off the rule, so they meet rule dates and break months.
    some_dates = (st.sampled_from(on_rule) | near) if on_rule else near
    exceptions = draw(st.lists(some_dates, max_size=4, unique=True))
    extra = draw(st.lists(some_dates, max_size=4, unique=True))
    series = make_series(
        rrule=rrule_text(kind, weekday, n),
        starts_on=starts_on,
        until=until,
        breaks=draw(st.lists(st.integers(1, 12), max_size=3, unique=True)),
        exceptions=exceptions,
        sessions={d: {"topic": f"Extra {d}"} for d in extra},
    )
    return series, lo, hi, kind, weekday, n


@FAST
@given(series_and_window())
def test_occurrences_are_exactly_the_rule_dates_plus_listed_sessions_in_the_window(
    case: tuple[Series, dt.date, dt.date, str, int, int],
) -> None:
    series, lo, hi, kind, weekday, n = case
    occs = list(occurrences(series, lo, hi))
    got = [o.date for o in occs]
    first = max(lo, series.starts_on)
    last = min(hi, series.until) if series.until else hi
    expected = (
        rule_dates(kind, weekday, n, series.starts_on, first, last) if first <= last else set()
    )
    expected |= {d for d in series.sessions if first <= d <= last}
    assert got == sorted(expected)  # sorted, unique, nothing missing, nothing extra
    assert all(first <= d <= last for d in got)
    # Off the rule's weekday only when the plan lists the date itself.
    assert all(d.weekday() == weekday or d in series.sessions for d in got)
    assert all(o.series is series and o.content is series.sessions.get(o.date) for o in occs)


@FAST
@given(series_and_window())
def test_skips_follow_the_plans_rules_and_excluded_dates_are_never_held(
    case: tuple[Series, dt.date, dt.date, str, int, int],
) -> None:
    series, lo, hi, *_ = case
    assert series.holidays is None
    for occ in occurrences(series, lo, hi):
        d = occ.date
        if d in series.exceptions:
            # An exception wins even over a session listed for that date.
            assert skip_kind(occ) == "exception"
        elif d.month in series.breaks and d not in series.sessions:
            assert skip_kind(occ) == "break"
            assert f"month {d.month}" in (occ.skip_reason or "")
        else:
            # A listed session is held in a break month: the organiser asked for it.
            assert occ.skip_reason is None
    held = [o.date for o in occurrences(series, lo, hi) if o.skip_reason is None]
    assert not set(held) & set(series.exceptions)
    assert all(d.month not in series.breaks or d in series.sessions for d in held)


@FAST
@given(series_and_window(), st.data())
def test_a_window_split_in_two_gives_the_same_occurrences(
    case: tuple[Series, dt.date, dt.date, str, int, int], data: st.DataObject
) -> None:
    series, lo, hi, *_ = case
    if hi < lo:
        assert list(occurrences(series, lo, hi)) == []
        return
    cut = data.draw(st.dates(lo, hi))
    whole = list(occurrences(series, lo, hi))
    parts = list(occurrences(series, lo, cut)) + list(
        occurrences(series, cut + dt.timedelta(days=1), hi)
    )
    assert parts == whole


@FAST
@given(series_and_window(), st.data())
def test_find_occurrence_finds_each_session_date_and_only_those(
    case: tuple[Series, dt.date, dt.date, str, int, int], data: st.DataObject
) -> None:
    series, lo, hi, *_ = case
    plan = one_series_plan(series)
    occs = {o.date: o for o in occurrences(series, lo, hi)}
    for d, occ in occs.items():
        assert find_occurrence(plan, d) == occ
        assert find_occurrence(plan, d, "test") == occ
    free = [d for d in days(lo, hi) if d not in occs] if hi >= lo else []
    if free:
        other = data.draw(st.sampled_from(free))
        with pytest.raises(PlanError, match=other.isoformat()):
            find_occurrence(plan, other)


# --- public holidays -------------------------------------------------------------------------


def nationwide_holidays(year: int) -> dict[dt.date, str]:
    """Germany's public holidays in every state, from the calendar and Easter."""
    e = easter(year)
    return {
        dt.date(year, 1, 1): "Neujahr",
        e - dt.timedelta(days=2): "Karfreitag",
        e + dt.timedelta(days=1): "Ostermontag",
        dt.date(year, 5, 1): "Erster Mai",
        e + dt.timedelta(days=39): "Christi Himmelfahrt",
        e + dt.timedelta(days=50): "Pfingstmontag",
        dt.date(year, 10, 3): "Tag der Deutschen Einheit",
        dt.date(year, 12, 25): "Erster Weihnachtstag",
        dt.date(year, 12, 26): "Zweiter Weihnachtstag",
    }


STATES = ["SN", "BY", "BE", "NW", "HH", "TH"]


@FAST
@given(st.integers(2024, 2035), st.sampled_from(STATES))
def test_nationwide_holidays_are_skipped_in_every_state_and_only_with_a_holiday_rule(
    year: int, state: str
) -> None:
    daily = {"rrule": "FREQ=DAILY", "starts_on": dt.date(year, 1, 1)}
    with_rule = make_series(**daily, holidays={"country": "DE", "subdiv": state})
    without = make_series(**daily)
    by_date = {
        o.date: o for o in occurrences(with_rule, dt.date(year, 1, 1), dt.date(year, 12, 31))
    }
    for day, name in nationwide_holidays(year).items():
        assert skip_kind(by_date[day]) == "public holiday", (day, name)
        # The reason names the holiday (German names; tolerant of the library's spelling).
        assert name.split()[-1].lower()[:6] in (by_date[day].skip_reason or "").lower()
    assert all(
        o.skip_reason is None
        for o in occurrences(without, dt.date(year, 1, 1), dt.date(year, 12, 31))
    )


def buss_und_bettag(year: int) -> dt.date:
    """The Wednesday before 23 November."""
    nov_23 = dt.date(year, 11, 23)
    return nov_23 - dt.timedelta(days=(nov_23.weekday() - 2) % 7 or 7)


@FAST
@given(st.integers(2024, 2035))
def test_a_state_holiday_is_skipped_only_in_that_state(year: int) -> None:
    day = buss_und_bettag(year)
    assert day.weekday() == 2 and 16 <= day.day <= 22
    weekly = {"rrule": "FREQ=WEEKLY;BYDAY=WE", "starts_on": dt.date(year, 1, 1)}
    saxony = make_series(**weekly, holidays={"country": "DE", "subdiv": "SN"})
    berlin = make_series(**weekly, holidays={"country": "DE", "subdiv": "BE"})
    (in_saxony,) = occurrences(saxony, day, day)
    (in_berlin,) = occurrences(berlin, day, day)
    assert skip_kind(in_saxony) == "public holiday" and "Buß" in (in_saxony.skip_reason or "")
    assert in_berlin.skip_reason is None


@FAST
@given(
    st.sampled_from(STATES),
    st.dates(dt.date(2024, 1, 1), dt.date(2032, 12, 31)),
    st.integers(0, 400),
    st.data(),
)
def test_every_day_on_a_holiday_is_skipped_unless_listed_and_no_other_day_is(
    state: str, lo: dt.date, length: int, data: st.DataObject
) -> None:
    hi = lo + dt.timedelta(days=length)
    calendar = holidays.country_holidays(
        "DE", subdiv=state, years=range(lo.year, hi.year + 1), language="de"
    )
    in_window = st.dates(lo, hi)
    on_holidays = [d for d in calendar if lo <= d <= hi]
    some = (st.sampled_from(on_holidays) | in_window) if on_holidays else in_window
    listed = data.draw(st.lists(some, max_size=3, unique=True))
    excepted = data.draw(st.lists(some, max_size=3, unique=True))
    series = make_series(
        rrule="FREQ=DAILY",
        starts_on=lo,
        holidays={"country": "DE", "subdiv": state},
        exceptions=excepted,
        sessions={d: {"topic": "Listed"} for d in listed},
    )
    occs = list(occurrences(series, lo, hi))
    assert [o.date for o in occs] == days(lo, hi)
    for occ in occs:
        d = occ.date
        if d in excepted:
            assert skip_kind(occ) == "exception"
        elif d in listed:
            # A session the organiser listed for a holiday is held: the plan says so explicitly.
            assert occ.skip_reason is None
        elif d in calendar:
            assert occ.skip_reason == f"public holiday: {calendar[d]}"
        else:
            assert occ.skip_reason is None


def test_an_unknown_holiday_state_is_a_plan_error_naming_the_field() -> None:
    series = make_series(holidays={"country": "DE", "subdiv": "XX"})
    with pytest.raises(PlanError) as info:
        list(occurrences(series, dt.date(2025, 1, 1), dt.date(2025, 12, 31)))
    assert info.value.field == "series[test].holidays"
    assert "DE/XX" in str(info.value)


# --- when, across daylight-saving changes ----------------------------------------------------


def test_a_1230_session_on_the_day_of_each_change_keeps_its_wall_time() -> None:
    # 2028 changes: Sunday 26 March (to CEST, UTC+2) and Sunday 29 October (to CET, UTC+1).
    series = make_series(rrule="FREQ=WEEKLY;BYDAY=SA,SU")
    occs = {o.date: o for o in occurrences(series, dt.date(2028, 3, 1), dt.date(2028, 10, 31))}
    in_utc = {
        (3, 25): (11, 30),  # Saturday before the spring change: CET
        (3, 26): (10, 30),  # the change day itself: already CEST at 12:30
        (10, 28): (10, 30),  # Saturday before the autumn change: CEST
        (10, 29): (11, 30),  # the change day itself: already CET at 12:30
    }
    for (month, day), (hour, minute) in in_utc.items():
        occ = occs[dt.date(2028, month, day)]
        assert occ.start.astimezone(UTC) == dt.datetime(2028, month, day, hour, minute, tzinfo=UTC)
        assert occ.start.astimezone(BERLIN).strftime("%H:%M") == "12:30"


wall_times = st.tuples(st.integers(3, 21), st.sampled_from([0, 15, 30, 45]))


@FAST
@given(
    st.integers(2024, 2040),
    wall_times,
    st.integers(5, 120),
    st.sampled_from(["FREQ=MONTHLY;BYDAY=-1SU", "FREQ=WEEKLY;BYDAY=SU", "FREQ=WEEKLY;BYDAY=SA"]),
)
def test_sessions_keep_their_local_wall_time_and_take_the_offset_of_their_day(
    year: int, hhmm: tuple[int, int], duration: int, rrule: str
) -> None:
    h, m = hhmm
    series = make_series(
        rrule=rrule, start=f"{h:02d}:{m:02d}", duration=duration, starts_on=dt.date(year, 1, 1)
    )
    # From a month before the spring change to a month after the autumn change.
    lo = last_sunday(year, 3) - dt.timedelta(days=31)
    hi = last_sunday(year, 10) + dt.timedelta(days=31)
    occs = list(occurrences(series, lo, hi))
    assert occs
    for occ in occs:
        utc = occ.start.astimezone(UTC)
        local = utc.astimezone(BERLIN)
        assert (local.date(), local.hour, local.minute) == (occ.date, h, m)
        assert local.utcoffset() == berlin_offset(occ.date)
        naive = dt.datetime.combine(occ.date, dt.time(h, m))
        assert utc.replace(tzinfo=None) == naive - berlin_offset(occ.date)
        # Sessions start at 03:00 or later and end the same day: no change in between.
        assert occ.end.astimezone(UTC) - utc == dt.timedelta(minutes=duration)


@FAST
@given(st.integers(2024, 2040), st.integers(1, 40), wall_times)
def test_the_invitation_is_at_its_local_time_on_its_own_offset_across_a_change(
    year: int, lead_days: int, hhmm: tuple[int, int]
) -> None:
    h, m = hhmm
    series = make_series(
        rrule="FREQ=DAILY",
        starts_on=dt.date(year, 1, 1),
        lead={"invitation_days": lead_days, "invitation_time": f"{h:02d}:{m:02d}"},
    )
    # Sessions in the weeks after each change: their invitation is often before it.
    for change in (last_sunday(year, 3), last_sunday(year, 10)):
        for occ in occurrences(series, change, change + dt.timedelta(days=lead_days + 2)):
            inv_day = occ.date - dt.timedelta(days=lead_days)
            local = occ.invitation_at.astimezone(UTC).astimezone(BERLIN)
            assert (local.date(), local.hour, local.minute) == (inv_day, h, m)
            assert local.utcoffset() == berlin_offset(inv_day)
            # Wall-clock days apart, so the real gap absorbs the hour the clocks moved.
            gap = occ.start.astimezone(UTC) - occ.invitation_at.astimezone(UTC)
            wall_gap = dt.datetime.combine(occ.date, dt.time(12, 30)) - dt.datetime.combine(
                inv_day, dt.time(h, m)
            )
            assert gap == wall_gap - (berlin_offset(occ.date) - berlin_offset(inv_day))
