"""What changed since subscribers were last told: pure, per recipient language."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from babel.dates import format_date, format_time

from session_bot.core.plan.occurrences import Occurrence

_TEXT = {
    "de": {
        "time": "Neuer Termin: {date}, {start}–{end} Uhr",
        "topic": "Neues Thema: {topic}",
        "speakers": "Geänderte Impulsvorträge: {speakers}",
        "join": "Neue Zugangsdaten für Zoom (bitte den neuen Link verwenden)",
    },
    "en": {
        "time": "New date and time: {date}, {start}–{end}",
        "topic": "New topic: {topic}",
        "speakers": "Speakers changed: {speakers}",
        "join": "New Zoom join details (please use the new link)",
    },
}


def changed_fields(announced: Mapping[str, Any] | None, occ: Occurrence) -> list[str]:
    """Which of time/topic/speakers differ from the last announcement."""
    if announced is None:
        return []
    now = occ.announced_fingerprint()
    out = []
    if announced.get("start") != now["start"] or announced.get("duration") != now["duration"]:
        out.append("time")
    if announced.get("topic") != now["topic"]:
        out.append("topic")
    if announced.get("speakers") != now["speakers"]:
        out.append("speakers")
    return out


def describe(fields: list[str], occ: Occurrence, language: str) -> list[str]:
    """Human lines for the update mail, in ``language``."""
    text = _TEXT.get(language, _TEXT["de"])
    start = occ.start
    end = occ.end
    values = {
        "date": format_date(start.date(), format="full", locale=language),
        "start": format_time(start.time(), "HH:mm", locale=language),
        "end": format_time(end.astimezone(start.tzinfo).time(), "HH:mm", locale=language),
        "topic": occ.content.topic_one_line if occ.content else "",
        "speakers": ", ".join(s.name for s in occ.content.speakers) if occ.content else "",
    }
    return [text[f].format(**values) for f in fields if f in text]
