"""The series plan as immutable, validated models: what the organiser wrote, nothing computed.

Pure: no I/O and no clock. Reading the YAML file is ``plan.file``; when sessions happen is
``plan.occurrences``.
"""

from __future__ import annotations

import datetime as dt
import difflib
from functools import cached_property
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from session_bot.core.errors import PlanError
from session_bot.core.plan.rule import check_rule

_HHMM = r"^([01]\d|2[0-3]):[0-5]\d$"
# An https address with a host (no user:password@); what follows the host is free.
_HTTPS = r"^https://[^\s/?#@:]+(:\d{1,5})?([/?#]\S*)?$"
MAX_MATERIALS = 20


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Speaker(_Model):
    name: str = Field(min_length=1)
    role: str = ""
    organisation: str = ""


class Person(_Model):
    name: str = Field(min_length=1)
    email: str = Field(pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


class Material(_Model):
    """A link shown with a past session in the archive: slides, a recording, documentation."""

    title: str = Field(min_length=1, max_length=300, pattern=r"\S")
    url: str = Field(max_length=2000, pattern=_HTTPS)
    kind: Literal["slides", "recording", "documentation", "other"] = "other"


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
    # A session on a date the series' rule does not give (else the plan is refused).
    extra: bool = False
    # Links for the archive once the session took place (slides, recording, documentation).
    materials: tuple[Material, ...] = Field((), max_length=MAX_MATERIALS)
    translations: dict[Literal["de", "en"], ContentTranslation] = Field(default_factory=dict)

    @field_validator("intro", mode="before")
    @classmethod
    def _intro_as_list(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @model_validator(mode="after")
    def _cancel_needs_reason(self) -> SessionContent:
        if self.cancelled and not (self.reason and self.reason.strip()):
            raise ValueError(
                "ein abgesagter Termin braucht einen Grund: bitte `reason: …` ergänzen (er steht "
                "in der Absage-Mail)"
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
    # starts_on before rrule: the rule is checked from the series' first day.
    starts_on: dt.date = Field(ge=dt.date(2000, 1, 1))
    rrule: str
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
    # "review": a change to an announced session waits for the organiser to send (or dismiss)
    # its update mail; "automatic": it is mailed by the next run, as before.
    updates: Literal["review", "automatic"] = "review"
    texts: Texts = Field(default_factory=Texts)
    # Optional lines under every mail's body (a sign-off, a contact); none by default, as in the
    # seed invitation.
    signature: str | None = Field(None, max_length=1000)
    sessions: dict[dt.date, SessionContent] = Field(default_factory=dict)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            close = difflib.get_close_matches(v, sorted(available_timezones()), n=1)
            hint = f"meinten Sie „{close[0]}“?" if close else "z. B. „Europe/Berlin“"
            raise ValueError(f"unbekannte Zeitzone „{v}“ – {hint}") from None
        return v

    @field_validator("rrule")
    @classmethod
    def _valid_rrule(cls, v: str, info: ValidationInfo) -> str:
        """A rule of days that produces at least one (see ``plan.rule``)."""
        body = v.strip().removeprefix("RRULE:")
        check_rule(body, info.data.get("starts_on"))
        return body

    @field_validator("breaks")
    @classmethod
    def _months(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        bad = [m for m in v if not 1 <= m <= 12]
        if bad:
            raise ValueError(
                f"Pausenmonate: bitte Monatszahlen von 1 bis 12 (8 für August), nicht {bad}"
            )
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
                raise ValueError(
                    f"die Kennung „{s.id}“ (`id:`) haben zwei Reihen; bitte eine umbenennen"
                )
            seen.add(s.id)
        return self

    def get_series(self, series_id: str) -> Series:
        for s in self.series:
            if s.id == series_id:
                return s
        raise PlanError(f"no series {series_id!r} in the plan", file=self.source)
