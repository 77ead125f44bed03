"""The series plan: a YAML file the organiser edits, validated into immutable models.

Pure: parsing takes the file's text, recurrence expansion takes dates. No clock, no I/O beyond
``load_plan`` reading the one file it is given.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from dateutil.rrule import rrulestr
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from session_bot.core.errors import PlanError

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Speaker(_Model):
    name: str = Field(min_length=1)
    role: str = ""
    organisation: str = ""


class Person(_Model):
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class ContentTranslation(_Model):
    """A session's texts in another language (for subscribers who chose it)."""

    topic: str | None = None
    intro: tuple[str, ...] = ()
    reason: str | None = None

    @field_validator("intro", mode="before")
    @classmethod
    def _intro_as_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class SessionContent(_Model):
    """What the plan says about one session, keyed by its date."""

    topic: str | None = None
    intro: tuple[str, ...] = ()
    speakers: tuple[Speaker, ...] = ()
    start: str | None = Field(None, pattern=_HHMM)
    duration: int | None = Field(None, ge=5, le=1440)
    cancelled: bool = False
    reason: str | None = None
    minor_change: bool = False
    note: str | None = None
    translations: dict[Literal["de", "en"], ContentTranslation] = Field(default_factory=dict)

    @field_validator("intro", mode="before")
    @classmethod
    def _intro_as_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _cancel_needs_reason(self) -> SessionContent:
        if self.cancelled and not (self.reason and self.reason.strip()):
            raise ValueError(
                "a cancelled session needs `reason: …` (it goes into the cancellation mail)"
            )
        return self

    @property
    def topic_lines(self) -> list[str]:
        return [ln.strip() for ln in (self.topic or "").strip().splitlines() if ln.strip()]

    @property
    def topic_one_line(self) -> str:
        return " ".join(self.topic_lines)


class Lead(_Model):
    """When things happen relative to a session (local time of the series)."""

    invitation_days: int = Field(14, ge=1, le=120)
    invitation_time: str = Field("09:00", pattern=_HHMM)
    reminder: bool = True
    reminder_days: int = Field(1, ge=0, le=30)
    reminder_time: str = Field("09:00", pattern=_HHMM)


class HolidayRule(_Model):
    country: str = "DE"
    subdiv: str | None = None


class TextsTranslation(_Model):
    """The series' default texts in another language."""

    title: str | None = None
    invitation_lead: str | None = None
    closing: tuple[str, ...] = ()
    subscribe_note: str | None = None

    @field_validator("closing", mode="before")
    @classmethod
    def _closing_as_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Texts(_Model):
    """Default texts of the series; sessions bring their own intro."""

    invitation_lead: str = "Wir laden herzlich ein zum"
    closing: tuple[str, ...] = ()
    subscribe_note: str | None = None
    translations: dict[Literal["de", "en"], TextsTranslation] = Field(default_factory=dict)

    @field_validator("closing", mode="before")
    @classmethod
    def _closing_as_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v


class Series(_Model):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,39}$")
    title: str = Field(min_length=1, max_length=200)
    rrule: str
    starts_on: dt.date
    until: dt.date | None = None
    start: str = Field(pattern=_HHMM)
    duration: int = Field(60, ge=5, le=1440)
    timezone: str = "Europe/Berlin"
    language: Literal["de", "en"] = "de"
    organiser: Person
    reply_to: str | None = None
    alternative_hosts: tuple[str, ...] = ()
    lead: Lead = Field(default_factory=Lead)
    holidays: HolidayRule | None = None
    breaks: tuple[int, ...] = ()
    exceptions: tuple[dt.date, ...] = ()
    calendar_method: Literal["publish", "request"] = "publish"
    texts: Texts = Field(default_factory=Texts)
    sessions: dict[dt.date, SessionContent] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {v!r}; use an IANA name such as Europe/Berlin"
            ) from None
        return v

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, v: str) -> str:
        body = v.strip().removeprefix("RRULE:")
        try:
            rrulestr(body, dtstart=dt.datetime(2000, 1, 1))
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"not a valid RFC 5545 RRULE ({exc}); e.g. FREQ=MONTHLY;BYDAY=-1WE"
            ) from None
        return body

    @field_validator("breaks")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(f"months must be 1–12, got {bad}")
        return v

    @cached_property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


class Plan(_Model):
    series: tuple[Series, ...] = Field(min_length=1)
    source: str = ""

    @model_validator(mode="after")
    def _unique_ids(self) -> Plan:
        seen: set[str] = set()
        for s in self.series:
            if s.id in seen:
                raise ValueError(f"series id {s.id!r} is used twice")
            seen.add(s.id)
        return self

    def get_series(self, series_id: str) -> Series:
        for s in self.series:
            if s.id == series_id:
                return s
        raise PlanError(f"no series {series_id!r} in the plan", file=self.source)


# --- occurrences -----------------------------------------------------------------------------


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

    def content_hash(self) -> str:
        raw = json.dumps(self.announced_fingerprint(), sort_keys=True, ensure_ascii=False)
        return hashlib.sha256(raw.encode()).hexdigest()[:16]


def localize(
    series: Series, content: SessionContent, language: str
) -> tuple[Series, SessionContent, bool]:
    """Series and session as a subscriber of ``language`` reads them.

    Returns (series, content, has_texts): ``has_texts`` is False when the plan has no texts in
    that language, so templates fall back to their own wording (and leave out the series' texts).
    """
    if language == series.language:
        return series, content, True
    texts = series.texts.translations.get(language)  # type: ignore[call-overload]
    if texts is not None:
        series = series.model_copy(
            update={
                "title": texts.title or series.title,
                "texts": Texts(
                    invitation_lead=texts.invitation_lead or series.texts.invitation_lead,
                    closing=texts.closing,
                    subscribe_note=texts.subscribe_note,
                ),
            }
        )
    own = content.translations.get(language)  # type: ignore[call-overload]
    if own is not None:
        content = content.model_copy(
            update={
                "topic": own.topic or content.topic,
                "intro": own.intro or content.intro,
                "reason": own.reason or content.reason,
            }
        )
    return series, content, texts is not None


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


# --- loading with line numbers ---------------------------------------------------------------


class _LineLoader(yaml.SafeLoader):
    """SafeLoader that remembers the line of every mapping key and sequence item."""


def _build_lines(node: yaml.Node, path: tuple[Any, ...], out: dict[tuple[Any, ...], int]) -> None:
    out.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key: Any = key_node.value
            if key_node.tag.endswith(":timestamp"):
                with contextlib.suppress(ValueError):
                    key = dt.date.fromisoformat(key)
            sub = (*path, str(key))
            out[sub] = key_node.start_mark.line + 1
            _build_lines(value_node, sub, out)
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            sub = (*path, str(i))
            out[sub] = item.start_mark.line + 1
            _build_lines(item, sub, out)


def _line_for(loc: tuple[Any, ...], lines: dict[tuple[Any, ...], int]) -> int | None:
    path = tuple(str(p) for p in loc)
    while path:
        if path in lines:
            return lines[path]
        path = path[:-1]
    return lines.get(())


def _field_name(loc: tuple[Any, ...], data: Any) -> str:
    parts: list[str] = []
    node = data
    for p in loc:
        if isinstance(p, int):
            label = p
            if isinstance(node, list) and p < len(node) and isinstance(node[p], dict):
                label = node[p].get("id", p)
            parts.append(f"[{label}]")
            node = node[p] if isinstance(node, list) and p < len(node) else None
        else:
            parts.append(("." if parts else "") + str(p))
            node = node.get(p) if isinstance(node, dict) else None
    return "".join(parts)


def _loc_part(part: Any) -> Any:
    """pydantic spells date keys as ``datetime.date(2025, 2, 26)``; we spell them as in the file."""
    if isinstance(part, dt.date):
        return part.isoformat()
    if isinstance(part, str) and part.startswith("datetime.date("):
        y, m, d = (int(x) for x in part[len("datetime.date(") : -1].split(","))
        return dt.date(y, m, d).isoformat()
    return part


def parse_plan(text: str, source: str = "<plan>") -> Plan:
    """Validate a plan's YAML text; every error names the file, line and field."""
    try:
        root = yaml.compose(text, Loader=_LineLoader)
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        line = exc.problem_mark.line + 1 if exc.problem_mark else None
        raise PlanError(
            f"not valid YAML: {exc.problem}. Check indentation and quoting (times like 12:30 need quotes).",
            file=source,
            line=line,
        ) from None
    if not isinstance(data, dict):
        raise PlanError(
            "the plan must be a mapping with a top-level `series:` list", file=source, line=1
        )
    lines: dict[tuple[Any, ...], int] = {}
    if root is not None:
        _build_lines(root, (), lines)
    try:
        return Plan.model_validate({**data, "source": source})
    except ValidationError as exc:
        # A typo'd key also makes its intended field "missing": report the typo first.
        errors = sorted(exc.errors(), key=lambda e: e["type"] != "extra_forbidden")
        err = errors[0]
        loc = tuple(_loc_part(p) for p in err["loc"] if p != "[key]")
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field (typo?); remove it or check the spelling against examples/willkommen.yaml"
        elif err["type"] == "missing":
            msg = "this field is required"
        more = (
            f" ({len(exc.errors()) - 1} more problem(s) after this one)"
            if len(exc.errors()) > 1
            else ""
        )
        raise PlanError(
            msg + more, file=source, line=_line_for(loc, lines), field=_field_name(loc, data)
        ) from None


def load_plan(path: Path) -> Plan:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PlanError(
            "plan file not found; set SESSION_BOT_PLAN to your plan (examples/willkommen.yaml is a start)",
            file=str(path),
        ) from None
    except UnicodeDecodeError as exc:
        raise PlanError(
            f"not UTF-8 text ({exc.reason}); save the file as UTF-8", file=str(path)
        ) from None
    return parse_plan(text, str(path))
