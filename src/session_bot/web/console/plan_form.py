"""The console's session form as data: what she typed (kept as typed, to show it again), the
``SessionFields`` it means, and the plan's problems placed next to the form's fields.

Speakers and materials are rows with a position number and a "remove" box, so adding, removing
and reordering work without JavaScript; a row is kept when something is typed in it.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from session_bot.core.errors import PlanError
from session_bot.core.plan.edit import MaterialFields, SessionFields, SpeakerFields

MAX_ROWS = 20  # speakers or materials per session (the plan allows at most 20 materials)
KINDS = ("slides", "recording", "documentation", "other")
SPEAKER_KEYS = ("name", "role", "organisation")
MATERIAL_KEYS = ("title", "url", "kind")
_TEXTS = ("topic", "intro", "topic_en", "intro_en", "start", "duration", "reason", "reason_en")
_LIMIT = 20_000  # characters per text field: the body limit bounds the whole form anyway

Row = dict[str, str]
Errors = dict[str, str]


@dataclass
class SessionForm:
    """What the form shows: every value as text, as she typed it."""

    values: dict[str, str] = field(default_factory=dict)
    speakers: list[Row] = field(default_factory=list)
    materials: list[Row] = field(default_factory=list)
    cancelled: bool = False
    extra: bool = False
    base_id: int = 0

    def get(self, key: str) -> str:
        return self.values.get(key, "")


def _blank(keys: Iterable[str], pos: int) -> Row:
    row = dict.fromkeys(keys, "")
    row["pos"] = str(pos)
    row["remove"] = ""
    return row


def with_spare_rows(form: SessionForm, speakers: int = 1, materials: int = 1) -> SessionForm:
    """The form with empty rows to type into (bounded by ``MAX_ROWS``)."""
    for _ in range(speakers):
        if len(form.speakers) < MAX_ROWS:
            form.speakers.append(_blank(SPEAKER_KEYS, len(form.speakers) + 1))
    for _ in range(materials):
        if len(form.materials) < MAX_ROWS:
            form.materials.append(_blank(MATERIAL_KEYS, len(form.materials) + 1) | {"kind": ""})
    return form


def form_of(fields: SessionFields, base_id: int, date: str = "") -> SessionForm:
    """The form filled from the plan's entry."""
    values = {
        "date": date,
        "topic": fields.topic,
        "intro": "\n\n".join(fields.intro),
        "topic_en": fields.topic_en,
        "intro_en": "\n\n".join(fields.intro_en),
        "start": fields.start,
        "duration": "" if fields.duration is None else str(fields.duration),
        "reason": fields.reason,
        "reason_en": fields.reason_en,
        "note": fields.note,
    }
    speakers = [
        {
            "pos": str(i),
            "name": s.name,
            "role": s.role,
            "organisation": s.organisation,
            "remove": "",
        }
        for i, s in enumerate(fields.speakers, 1)
    ]
    materials = [
        {"pos": str(i), "title": m.title, "url": m.url, "kind": m.kind, "remove": ""}
        for i, m in enumerate(fields.materials, 1)
    ]
    return SessionForm(values, speakers, materials, fields.cancelled, fields.extra, base_id)


def read_form(data: Mapping[str, str]) -> SessionForm:
    """The posted form, as typed (bounded in size)."""
    values = {k: data.get(k, "")[:_LIMIT] for k in (*_TEXTS, "note", "date")}
    return SessionForm(
        values,
        _rows(data, "sp", SPEAKER_KEYS),
        _rows(data, "mat", MATERIAL_KEYS),
        cancelled=bool(data.get("cancelled")),
        extra=bool(data.get("extra")),
        base_id=_int(data.get("base_id", "")) or 0,
    )


def _rows(data: Mapping[str, str], prefix: str, keys: tuple[str, ...]) -> list[Row]:
    count = min(_int(data.get(f"{prefix}_rows", "")) or 0, MAX_ROWS)
    rows = []
    for i in range(count):
        row = {k: data.get(f"{prefix}-{i}-{k}", "")[:2000] for k in keys}
        row["pos"] = data.get(f"{prefix}-{i}-pos", str(i + 1))[:6]
        row["remove"] = "yes" if data.get(f"{prefix}-{i}-remove") else ""
        rows.append(row)
    return rows


def _int(text: str) -> int | None:
    text = text.strip()
    return int(text) if re.fullmatch(r"\d{1,6}", text) else None


def paragraphs(text: str) -> tuple[str, ...]:
    """Paragraphs separated by a blank line."""
    return tuple(p.strip() for p in re.split(r"\n\s*\n", text.replace("\r\n", "\n")) if p.strip())


def _kept(rows: list[Row], keys: tuple[str, ...]) -> list[int]:
    """Indices of the rows to save, in the order of their position numbers."""
    kept = [
        i
        for i, row in enumerate(rows)
        if not row.get("remove") and any(row.get(k, "").strip() for k in keys if k != "kind")
    ]
    return sorted(kept, key=lambda i: (_int(rows[i]["pos"]) or i + 1, i))


@dataclass(frozen=True)
class Parsed:
    """The fields to save, the form's own problems, and where each saved row came from."""

    fields: SessionFields
    errors: Errors
    speaker_rows: list[int]
    material_rows: list[int]


def parse(form: SessionForm, t: Mapping[str, str]) -> Parsed:
    """What the form means; ``errors`` holds what the plan's validation would not say in her
    words (or would silently drop, as a speaker without a name)."""
    errors: Errors = {}
    v = form.values
    sp_rows = _kept(form.speakers, SPEAKER_KEYS)
    mat_rows = _kept(form.materials, MATERIAL_KEYS)
    for i in sp_rows:
        if not form.speakers[i]["name"].strip():
            errors[f"sp-{i}-name"] = t["pe_speaker_name_missing"]
    for i in mat_rows:
        if not form.materials[i]["url"].strip():
            errors[f"mat-{i}-url"] = t["pe_material_url_missing"]
    # Only rows the plan can hold (the others have their message): ``speakers[k]`` in the
    # plan's problems is then the k-th of these.
    sp_rows = [i for i in sp_rows if form.speakers[i]["name"].strip()]
    mat_rows = [i for i in mat_rows if form.materials[i]["url"].strip()]
    duration = _int(v.get("duration", ""))
    if v.get("duration", "").strip() and duration is None:
        errors["duration"] = t["pe_duration_bad"]
    if form.cancelled and not v.get("reason", "").strip():
        errors["reason"] = t["pe_reason_missing"]
    fields = SessionFields(
        topic=v.get("topic", "").replace("\r\n", "\n").strip(),
        intro=paragraphs(v.get("intro", "")),
        speakers=tuple(
            SpeakerFields(*(form.speakers[i][k].strip() for k in SPEAKER_KEYS)) for i in sp_rows
        ),
        topic_en=v.get("topic_en", "").replace("\r\n", "\n").strip(),
        intro_en=paragraphs(v.get("intro_en", "")),
        start=v.get("start", "").strip(),
        duration=duration,
        cancelled=form.cancelled,
        reason=v.get("reason", "").strip(),
        reason_en=v.get("reason_en", "").strip(),
        extra=form.extra,
        materials=tuple(
            MaterialFields(
                form.materials[i]["title"].strip(),
                form.materials[i]["url"].strip(),
                form.materials[i]["kind"] if form.materials[i]["kind"] in KINDS else "other",
            )
            for i in mat_rows
        ),
        note=v.get("note", "").strip(),
    )
    return Parsed(fields, errors, sp_rows, mat_rows)


_SESSION_FIELD = {
    "topic": "topic",
    "intro": "intro",
    "start": "start",
    "duration": "duration",
    "reason": "reason",
    "note": "note",
    "cancelled": "reason",
    "extra": "date",
    "translations.en.topic": "topic_en",
    "translations.en.intro": "intro_en",
    "translations.en.reason": "reason_en",
}


def place_problems(
    problems: Iterable[PlanError], series_id: str, day: dt.date, parsed: Parsed
) -> Errors:
    """The plan's problems by form field: ``series[s].sessions.DATE.speakers[1].name`` is the
    name of the row saved second. A problem on the date itself (off the rule) goes to "date";
    one elsewhere in the plan to "general"."""
    prefix = f"series[{series_id}].sessions.{day.isoformat()}"
    errors: Errors = {}
    for p in problems:
        where = p.field or ""
        key = "general"
        if where == prefix:
            key = "date"
        elif where.startswith(prefix + "."):
            key = _row_key(where[len(prefix) + 1 :], parsed)
        text = in_form_words(p.message)
        errors[key] = f"{errors[key]} {text}" if key in errors else text
    return errors


# What the plan file's messages say about writing YAML, which the form does for her.
_FILE_HINTS = (" (in Anführungszeichen)", " Sonst als Zusatztermin markieren: `extra: true`.")


def in_form_words(message: str) -> str:
    for hint in _FILE_HINTS:
        message = message.replace(hint, "")
    return message


def _row_key(rest: str, parsed: Parsed) -> str:
    m = re.fullmatch(r"(speakers|materials)\[(\d+)\](?:\.(\w+))?", rest)
    if m:
        rows = parsed.speaker_rows if m.group(1) == "speakers" else parsed.material_rows
        k = int(m.group(2))
        prefix = "sp" if m.group(1) == "speakers" else "mat"
        sub = m.group(3) or ("name" if prefix == "sp" else "title")
        return f"{prefix}-{rows[k]}-{sub}" if k < len(rows) else "general"
    base = re.sub(r"\[\d+\]$", "", rest)
    if base in ("speakers", "materials"):
        return "general"
    return _SESSION_FIELD.get(base, "general")
