"""Building series for the core tests, and oracles for their dates written without dateutil."""

from __future__ import annotations

import calendar
import datetime as dt
from typing import Any

from session_bot.core.plan.model import Plan, Series

WEEKDAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")


def make_series(**fields: Any) -> Series:
    """A valid series (last Wednesday, 12:30 Berlin) with ``fields`` replacing the defaults."""
    data: dict[str, Any] = {
        "id": "test",
        "title": "Test",
        "rrule": "FREQ=MONTHLY;BYDAY=-1WE",
        "starts_on": dt.date(2024, 1, 1),
        "start": "12:30",
        "organiser": {"name": "Org", "email": "org@example.org"},
    }
    data.update(fields)
    return Series.model_validate(data)


def one_series_plan(series: Series) -> Plan:
    return Plan(series=(series,), source="t.yaml")


def days(lo: dt.date, hi: dt.date) -> list[dt.date]:
    return [lo + dt.timedelta(days=i) for i in range((hi - lo).days + 1)]


def nth_weekday(year: int, month: int, weekday: int, n: int) -> dt.date | None:
    """The n-th (1..4, or -1 for the last) ``weekday`` of a month; None when it does not exist."""
    last_day = calendar.monthrange(year, month)[1]
    if n == -1:
        last = dt.date(year, month, last_day)
        return last - dt.timedelta(days=(last.weekday() - weekday) % 7)
    first = dt.date(year, month, 1)
    day = 1 + (weekday - first.weekday()) % 7 + 7 * (n - 1)
    return dt.date(year, month, day) if day <= last_day else None


def rule_dates(
    kind: str, weekday: int, n: int, starts_on: dt.date, lo: dt.date, hi: dt.date
) -> set[dt.date]:
    """Dates in [lo, hi] a rule of ``kind`` produces from ``starts_on``, from first principles."""
    if kind == "monthly":
        months = {(d.year, d.month) for d in days(lo, hi)}
        found = {nth_weekday(y, m, weekday, n) for y, m in months}
        return {d for d in found if d is not None and lo <= d <= hi and d >= starts_on}
    step = {"weekly": 1, "biweekly": 2}[kind]
    # RFC 5545 counts INTERVAL in weeks from the week (starting Monday) of DTSTART.
    first_monday = starts_on - dt.timedelta(days=starts_on.weekday())
    return {
        d
        for d in days(lo, hi)
        if d.weekday() == weekday and d >= starts_on and ((d - first_monday).days // 7) % step == 0
    }


def rrule_text(kind: str, weekday: int, n: int) -> str:
    day = WEEKDAYS[weekday]
    if kind == "monthly":
        return f"FREQ=MONTHLY;BYDAY={n}{day}"
    if kind == "biweekly":
        return f"FREQ=WEEKLY;INTERVAL=2;BYDAY={day}"
    return f"FREQ=WEEKLY;BYDAY={day}"


def last_sunday(year: int, month: int) -> dt.date:
    found = nth_weekday(year, month, 6, -1)
    assert found is not None
    return found


def berlin_offset(day: dt.date) -> dt.timedelta:
    """UTC offset of Berlin on ``day`` at any wall time from 03:00 on (earlier, the day of a
    change may still have the old offset): summer time from the last Sunday of March to the last
    Sunday of October, by EU rule since 1996."""
    summer = last_sunday(day.year, 3) <= day < last_sunday(day.year, 10)
    return dt.timedelta(hours=2 if summer else 1)
