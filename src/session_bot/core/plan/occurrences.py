"""When sessions happen: the recurrence rule expanded into dated occurrences.

RFC 5545 RRULE via python-dateutil, plus sessions listed by date, minus what the plan skips
(exceptions, break months, public holidays via ``holidays``). Pure: takes dates, reads no clock.

Wall times across daylight saving time, in the series' zone:
- a start that does not exist on a session's day (the hour the clocks skip in spring) is a
  ``PlanError`` naming the field and the date: for sessions listed by date when the plan is read
  (``start_problems``), for the rule's dates when they are computed (``occurrences``);
- a start that exists twice (the hour the clocks repeat in autumn) is its first occurrence
  (``fold=0``, still summer time);
- a session ends ``duration`` minutes after it starts in real (UTC) time, so a 60-minute
  session lasts 60 minutes on the night the clocks change too.
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
    def own_start(self) -> bool:
        """Whether the session gives its own ``start:`` (else the series' applies)."""
        return bool(self.content and self.content.start)

    @property
    def start_hhmm(self) -> str:
        return (self.content.start if self.content and self.content.start else None) or (
            self.series.start
        )

    @property
    def start(self) -> dt.datetime:
        """Aware start in the series' zone; of a wall time that exists twice, the first."""
        return dt.datetime.combine(self.date, _hhmm(self.start_hhmm), tzinfo=self.series.zone)

    @property
    def duration(self) -> int:
        return (self.content.duration if self.content and self.content.duration else None) or (
            self.series.duration
        )

    @property
    def end(self) -> dt.datetime:
        """``duration`` minutes after the start in real time (not wall time), in the zone."""
        utc = self.start.astimezone(dt.UTC) + dt.timedelta(minutes=self.duration)
        return utc.astimezone(self.series.zone)

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


def _holiday_names(series: Series, years: range, source: str) -> Mapping[dt.date, str]:
    if series.holidays is None:
        return {}
    import holidays as holidays_lib  # pure data library; imported here to keep plan import light

    try:
        cal = holidays_lib.country_holidays(
            series.holidays.country, subdiv=series.holidays.subdiv, years=years, language="de"
        )
    except NotImplementedError:
        raise PlanError(
            f"Feiertage: Land/Bundesland {series.holidays.country}/{series.holidays.subdiv} "
            "unbekannt; bitte z. B. `country: DE` und `subdiv: SN` (Sachsen)",
            file=source,
            field=f"series[{series.id}].holidays",
        ) from None
    return dict(cal.items())


def _missing_start(occ: Occurrence) -> str | None:
    """Why the occurrence's start does not exist on its day (the clocks skip it), else None."""
    wall = occ.start
    if wall.astimezone(dt.UTC).astimezone(wall.tzinfo).replace(tzinfo=None) == wall.replace(
        tzinfo=None
    ):
        return None
    return (
        f"{occ.start_hhmm} Uhr gibt es am {occ.date.isoformat()} in {occ.series.timezone} nicht "
        "(in dieser Nacht wird die Uhr vorgestellt); bitte eine andere Uhrzeit wählen"
    )


def start_problems(series: Series) -> Iterator[tuple[tuple[str, ...], str]]:
    """Sessions listed by date whose start does not exist on their day: (field path below the
    series, message). For reading the plan, where the path gives the line."""
    for day, content in series.sessions.items():
        if day in series.exceptions:
            continue
        occ = Occurrence(series=series, date=day, content=content)
        problem = _missing_start(occ)
        if problem is None:
            continue
        if occ.own_start:
            yield ("sessions", day.isoformat(), "start"), problem
        else:
            yield (
                ("sessions", day.isoformat()),
                (
                    f"Startzeit der Reihe: {problem}, oder diesem Termin eine eigene "
                    "Startzeit geben (`start:`)"
                ),
            )


def _checked(occ: Occurrence, source: str) -> Occurrence:
    """``occ`` unless it is held and its start does not exist on its day (PlanError)."""
    problem = None if occ.skip_reason else _missing_start(occ)
    if problem is None:
        return occ
    day = occ.date.isoformat()
    if occ.own_start:
        field = f"series[{occ.series.id}].sessions.{day}.start"
    else:
        field = f"series[{occ.series.id}].start"
        problem += (
            f", dem Termin {day} unter `sessions:` eine eigene Startzeit geben (`start:`) oder "
            "ihn unter `exceptions:` auslassen"
        )
    raise PlanError(problem, file=source, field=field)


def rule_dates(series: Series, lo: dt.date, hi: dt.date) -> set[dt.date]:
    """The dates in [lo, hi] the series' rule gives (skipped ones too), from ``starts_on`` to
    ``until``; sessions listed by date only when the rule gives them."""
    lo = max(lo, series.starts_on)
    hi = min(hi, series.until) if series.until else hi
    if lo > hi:
        return set()
    rule = rrulestr(series.rrule, dtstart=dt.datetime.combine(series.starts_on, dt.time()))
    return {
        d.date()
        for d in rule.between(
            dt.datetime.combine(lo, dt.time()), dt.datetime.combine(hi, dt.time(23, 59)), inc=True
        )
    }


# How far around an off-rule session's date the rule's nearest dates are looked for.
_NEAREST_DAYS = 400


def off_rule_sessions(series: Series) -> Iterator[tuple[dt.date, tuple[dt.date, ...]]]:
    """Sessions listed by date that the rule does not give and that are not marked
    ``extra: true``, each with the rule's nearest date(s) (two when they are equally near).

    A date the rule gives counts even when the plan skips it (an exception, a break month, a
    holiday), and so does a date listed in ``exceptions:``. Dates outside the series'
    ``starts_on``/``until`` are ``outside_sessions``."""
    exceptions = set(series.exceptions)
    for day, content in sorted(series.sessions.items()):
        if content.extra or day in exceptions or not _within(series, day):
            continue
        if day in rule_dates(series, day, day):
            continue
        span = dt.timedelta(days=_NEAREST_DAYS)
        near = sorted(rule_dates(series, day - span, day + span), key=lambda d: abs(d - day))
        best = [d for d in near if abs(d - day) == abs(near[0] - day)] if near else []
        yield day, tuple(sorted(best))


def _within(series: Series, day: dt.date) -> bool:
    return series.starts_on <= day and (series.until is None or day <= series.until)


def outside_sessions(series: Series) -> list[dt.date]:
    """Sessions listed by date before ``starts_on`` or after ``until``: never held."""
    return sorted(d for d in series.sessions if not _within(series, d))


def occurrences(
    series: Series, start: dt.date, end: dt.date, *, source: str = ""
) -> Iterator[Occurrence]:
    """Every session of ``series`` with a date in [start, end], in order, skipped ones included.

    Raises ``PlanError`` (naming ``source``, the plan file) when a session that is held would
    start at a wall time the clocks skip on its day.
    """
    lo = max(start, series.starts_on)
    hi = min(end, series.until) if series.until else end
    if lo > hi:
        return
    dates = rule_dates(series, lo, hi)
    # Sessions listed by date are part of the series even off the rule: an extra session
    # (``extra: true``; ``plan.file`` refuses an unmarked one with the rule's nearest dates).
    dates |= {d for d in series.sessions if lo <= d <= hi}
    hol = _holiday_names(series, range(lo.year, hi.year + 1), source)
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
        yield _checked(
            Occurrence(series=series, date=d, content=content, skip_reason=reason), source
        )


def find_occurrence(plan: Plan, date: dt.date, series_id: str | None = None) -> Occurrence:
    """The session on ``date`` (of the given series, or the only series that has one)."""
    found = [
        o
        for s in plan.series
        if series_id in (None, s.id)
        for o in occurrences(s, date, date, source=plan.source)
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
