"""Which recurrence rules a series may use, and a bounded check that a rule produces dates.

A session happens on a day, at the series' ``start:``. So a rule names days: FREQ is DAILY,
WEEKLY, MONTHLY or YEARLY, the time-of-day parts (BYHOUR, BYMINUTE, BYSECOND) are refused, and
INTERVAL is a positive number (dateutil loops forever on INTERVAL=0).

dateutil expands a rule by walking its periods from DTSTART until it passes the end of the
window. A rule that never matches (``BYMONTH=2;BYMONTHDAY=31``, or ``BYSETPOS=5`` of a weekday
that comes four times a month) makes it walk to the year 9999: seconds of work on every
expansion. So a rule must produce a date, and checking that is itself bounded: the Gregorian
calendar repeats every 400 years (146,097 days, exactly 20,871 weeks), so moving DTSTART on by a
multiple of 400 × INTERVAL years keeps every date the rule can match, and the probe starts late
enough that it walks one such cycle before 9999, and no more. Pure: no I/O, no clock.
"""

from __future__ import annotations

import datetime as dt

from dateutil.rrule import rrulestr

FREQUENCIES = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
MAX_INTERVAL = 1000
_PARTS = (
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "BYYEARDAY",
    "BYWEEKNO",
    "WKST",
)
_TIME_OF_DAY = ("BYHOUR", "BYMINUTE", "BYSECOND")
_CYCLE_YEARS = 400
_EXAMPLE = "e.g. FREQ=MONTHLY;BYDAY=-1WE"


def rule_parts(body: str) -> dict[str, str]:
    """``NAME=VALUE`` parts of a rule (names upper case); ValueError naming what is wrong."""
    if "\n" in body.strip():
        raise ValueError(f"write the rule on one line; {_EXAMPLE}")
    parts: dict[str, str] = {}
    for item in body.split(";"):
        name, sep, value = (s.strip().upper() for s in item.partition("="))
        if not (sep and name and value):
            raise ValueError(f"{item.strip()!r} is not NAME=VALUE; {_EXAMPLE}")
        if name in _TIME_OF_DAY:
            raise ValueError(f"{name} is not supported: the time of day comes from `start:`")
        if name not in _PARTS:
            raise ValueError(f"{name} is not supported; use {', '.join(_PARTS)}")
        if name in parts:
            raise ValueError(f"{name} is given twice; keep one")
        parts[name] = value
    freq = parts.get("FREQ")
    if freq is None:
        raise ValueError(f"FREQ is missing; {_EXAMPLE}")
    if freq not in FREQUENCIES:
        raise ValueError(
            f"FREQ={freq} makes no sense for sessions; use DAILY, WEEKLY, MONTHLY or YEARLY"
        )
    for name, low, high in (("INTERVAL", 1, MAX_INTERVAL), ("COUNT", 1, None)):
        if name in parts:
            text = parts[name]
            if not text.isdigit() or int(text) < low or (high is not None and int(text) > high):
                bound = f"from {low} to {high}" if high is not None else f"{low} or more"
                raise ValueError(f"{name} must be a whole number {bound}, got {text}")
    return parts


def check_rule(body: str, starts_on: dt.date | None) -> None:
    """Raise ValueError with a plain reason unless ``body`` is a rule a series may use and, from
    ``starts_on`` (when known), produces at least one date."""
    parts = rule_parts(body)
    start = dt.datetime.combine(starts_on or dt.date(2000, 1, 1), dt.time())
    try:
        rrulestr(body, dtstart=start)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"not a valid RFC 5545 RRULE ({exc}); {_EXAMPLE}") from None
    if starts_on is None:
        return
    # COUNT and UNTIL only end the rule early; the pattern is what must match somewhere.
    pattern = ";".join(f"{k}={v}" for k, v in parts.items() if k not in ("COUNT", "UNTIL"))
    cycle = _CYCLE_YEARS * int(parts.get("INTERVAL", "1"))
    cycles = max(0, (dt.MAXYEAR + 1 - cycle - start.year) // cycle)
    probe = rrulestr(pattern, dtstart=start.replace(year=start.year + cycles * cycle))
    if next(iter(probe), None) is None:
        raise ValueError(
            "the rule produces no date (e.g. BYMONTHDAY=31 in a month of 30 days, or BYSETPOS "
            f"past the days the rule picks); check it against the calendar, {_EXAMPLE}"
        )
