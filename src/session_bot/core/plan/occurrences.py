"""When sessions happen: the recurrence rule expanded into dated occurrences.

RFC 5545 RRULE via python-dateutil, plus sessions listed by date, minus what the plan skips
(exceptions, break months, public holidays via ``holidays``). Pure: takes dates, reads no clock.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from dateutil.rrule import rrulestr

from session_bot.core.errors import PlanError
from session_bot.core.plan.model import Plan, Series, SessionContent


def _hhmm(value: str) -> dt.time:
    h, m = value.split(":")
    return dt.time(int(h), int(m))


@dataclass(frozen=True)
class Occurrence:
    """One dated session of a series, with everything needed to act on it."""

    series: Series
    date: dt.date
    content: SessionContent | None
    skip_reason: str | None = None

    @property
    def key(self) -> str:
        return f"{self.series.id}/{self.date.isoformat()}"

    @property
    def start(self) -> dt.datetime:
        """Aware start in the series' zone (DST-correct wall time)."""
        hhmm = (
            self.content.start if self.content and self.content.start else None
        ) or self.series.start
        return dt.datetime.combine(self.date, _hhmm(hhmm), tzinfo=self.series.zone)

    @property
    def duration(self) -> int:
        return (self.content.duration if self.content and self.content.duration else None) or (
            self.series.duration
        )

    @property
    def end(self) -> dt.datetime:
        return self.start + dt.timedelta(minutes=self.duration)

    @property
    def cancelled(self) -> bool:
        return bool(self.content and self.content.cancelled)

    @property
    def has_topic(self) -> bool:
        return bool(self.content and self.content.topic_lines)

    def local_moment(self, days_before: int, hhmm: str) -> dt.datetime:
        day = self.date - dt.timedelta(days=days_before)
        return dt.datetime.combine(day, _hhmm(hhmm), tzinfo=self.series.zone)

    @property
    def invitation_at(self) -> dt.datetime:
        lead = self.series.lead
        return self.local_moment(lead.invitation_days, lead.invitation_time)

    @property
    def reminder_at(self) -> dt.datetime | None:
        lead = self.series.lead
        if not lead.reminder:
            return None
        return self.local_moment(lead.reminder_days, lead.reminder_time)

    def announced_fingerprint(self) -> dict[str, Any]:
        """What subscribers were told; a change here means an update mail."""
        c = self.content
        return {
            "start": self.start.isoformat(),
            "duration": self.duration,
            "topic": c.topic_one_line if c else "",
            "speakers": [s.model_dump() for s in c.speakers] if c else [],
        }


def _holiday_names(series: Series, years: range) -> Mapping[dt.date, str]:
    if series.holidays is None:
        return {}
    import holidays as holidays_lib  # pure data library; imported here to keep plan import light

    try:
        cal = holidays_lib.country_holidays(
            series.holidays.country, subdiv=series.holidays.subdiv, years=years, language="de"
        )
    except NotImplementedError:
        raise PlanError(
            f"unknown holiday country/state {series.holidays.country}/{series.holidays.subdiv}",
            field=f"series[{series.id}].holidays",
        ) from None
    return dict(cal.items())


def occurrences(series: Series, start: dt.date, end: dt.date) -> Iterator[Occurrence]:
    """Every session of ``series`` with a date in [start, end], in order, skipped ones included."""
    lo = max(start, series.starts_on)
    hi = min(end, series.until) if series.until else end
    if lo > hi:
        return
    rule = rrulestr(series.rrule, dtstart=dt.datetime.combine(series.starts_on, dt.time()))
    dates = {
        d.date()
        for d in rule.between(
            dt.datetime.combine(lo, dt.time()), dt.datetime.combine(hi, dt.time(23, 59)), inc=True
        )
    }
    # Sessions listed by date are part of the series even off the rule (an extra session).
    dates |= {d for d in series.sessions if lo <= d <= hi}
    hol = _holiday_names(series, range(lo.year, hi.year + 1))
    exceptions = set(series.exceptions)
    for d in sorted(dates):
        content = series.sessions.get(d)
        reason: str | None = None
        explicit = content is not None
        if d in exceptions:
            reason = "listed as an exception in the plan"
        elif not explicit and d.month in series.breaks:
            reason = f"in the summer/holiday break (month {d.month})"
        elif not explicit and d in hol:
            reason = f"public holiday: {hol[d]}"
        yield Occurrence(series=series, date=d, content=content, skip_reason=reason)


def find_occurrence(plan: Plan, date: dt.date, series_id: str | None = None) -> Occurrence:
    """The session on ``date`` (of the given series, or the only series that has one)."""
    found = [
        o for s in plan.series if series_id in (None, s.id) for o in occurrences(s, date, date)
    ]
    if not found:
        raise PlanError(
            f"no session on {date.isoformat()} in the plan; pick a date the recurrence produces "
            "or list it under `sessions:`",
            file=plan.source,
        )
    if len(found) > 1:
        raise PlanError(
            f"several series have a session on {date.isoformat()}; name one with --series",
            file=plan.source,
        )
    return found[0]
