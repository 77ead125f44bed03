"""Changing a plan's YAML text the way the organiser's console does: one session or one series'
texts at a time, everything else — comments, order, quoting, line breaks — kept as it was.

ruamel.yaml's round-trip mode does the keeping (the example plan reads and writes back byte for
byte). The text given here has passed ``parse_plan`` already (it is a stored revision), so the
bounded reader's guarantees hold; the result is validated by ``parse_plan`` again before it is
stored. Pure: text in, text out.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.scalarstring import (
    DoubleQuotedScalarString,
    FoldedScalarString,
    LiteralScalarString,
)

from session_bot.core.errors import PlanError


def _yaml() -> YAML:
    y = YAML()  # round-trip
    y.width = 100
    y.preserve_quotes = True
    # The example plan's layout: lists indented under their key.
    y.indent(mapping=2, sequence=4, offset=2)
    return y


@dataclass(frozen=True)
class SpeakerFields:
    name: str
    role: str = ""
    organisation: str = ""


@dataclass(frozen=True)
class MaterialFields:
    title: str
    url: str
    kind: str = "other"


@dataclass(frozen=True)
class SessionFields:
    """What the console's session form edits; empty strings and tuples mean "not given"."""

    topic: str = ""
    intro: tuple[str, ...] = ()
    speakers: tuple[SpeakerFields, ...] = ()
    topic_en: str = ""
    intro_en: tuple[str, ...] = ()
    start: str = ""  # "" = the series' start time
    duration: int | None = None  # None = the series' duration
    cancelled: bool = False
    reason: str = ""
    reason_en: str = ""
    extra: bool = False
    materials: tuple[MaterialFields, ...] = ()
    note: str = ""


@dataclass(frozen=True)
class SeriesFields:
    """The series' texts and lead times, as the console's series form edits them."""

    invitation_lead: str = ""
    closing: tuple[str, ...] = ()
    subscribe_note: str = ""
    title_en: str = ""
    invitation_lead_en: str = ""
    closing_en: tuple[str, ...] = ()
    subscribe_note_en: str = ""
    signature: str = ""
    invitation_days: int = 14
    invitation_time: str = "09:00"
    reminder: bool = True
    reminder_days: int = 1
    reminder_time: str = "09:00"
    updates: str = "review"


def _text(value: Any) -> str:
    if value is None:
        return ""
    return str(value).strip()


def _texts(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value.strip(),) if value.strip() else ()
    return tuple(str(v).strip() for v in value if str(v).strip())


def _block(value: str) -> str:
    """A multi-line text as a literal block (as the organiser would type it), else plain."""
    value = value.strip()
    return LiteralScalarString(value + "\n") if "\n" in value else value


def _paragraph(value: str) -> str:
    """A long paragraph folded at 100 columns (``>-``), as in the example plan."""
    value = " ".join(value.split())
    return FoldedScalarString(value) if len(value) > 80 else value


def _put(target: CommentedMap, key: str, value: Any) -> None:
    """Set ``key`` (keeping its place and comments) or drop it when the value is empty; a value
    that reads the same as before keeps its spelling (quotes, folding, block style)."""
    empty = value in ("", None, (), []) or value == {}
    if empty:
        if key in target:
            del target[key]
        return
    if key in target and _same(target[key], value):
        return
    target[key] = _scalar(value)


def _scalar(value: Any) -> Any:
    """A plain string the plan's reader (YAML 1.1) would take for something else — a time like
    13:00 (a number there), "ja", a date — is written in quotes."""
    if not isinstance(value, str) or isinstance(value, LiteralScalarString | FoldedScalarString):
        return value
    try:
        read = yaml.safe_load(value)
    except yaml.YAMLError:
        read = None
    return value if isinstance(read, str) and read == value else DoubleQuotedScalarString(value)


def _same(old: Any, new: Any) -> bool:
    return bool(_normal(_plain(old)) == _normal(_plain(new)))


def _normal(value: Any) -> Any:
    """Text compared by its words: re-folding a paragraph is no change."""
    if isinstance(value, str):
        return " ".join(value.split())
    if isinstance(value, list):
        return [_normal(v) for v in value]
    if isinstance(value, dict):
        return {k: _normal(v) for k, v in value.items()}
    return value


class PlanDocument:
    """A plan's YAML as an editable tree; ``dump`` writes it back."""

    def __init__(self, text: str) -> None:
        try:
            self._data = _yaml().load(text)
        except Exception as exc:  # ruamel's error tree is wide; the text passed parse_plan
            raise PlanError(f"the stored plan cannot be edited: {exc}") from None
        if not isinstance(self._data, CommentedMap) or not isinstance(
            self._data.get("series"), list
        ):
            raise PlanError("the stored plan has no `series:` list")

    def dump(self) -> str:
        out = io.StringIO()
        _yaml().dump(self._data, out)
        return out.getvalue()

    # --- reading ----------------------------------------------------------------------------
    def _series(self, series_id: str) -> CommentedMap:
        for item in self._data["series"]:
            if isinstance(item, CommentedMap) and str(item.get("id")) == series_id:
                return item
        raise PlanError(f"no series {series_id!r} in the plan")

    def _sessions(self, series_id: str, create: bool = False) -> CommentedMap | None:
        series = self._series(series_id)
        sessions = series.get("sessions")
        if sessions is None and create:
            sessions = CommentedMap()
            series["sessions"] = sessions
        return sessions if isinstance(sessions, CommentedMap) else None

    def session_raw(self, series_id: str, day: dt.date) -> dict[str, Any] | None:
        """The session's entry as plain data (to compare two revisions), None if absent."""
        sessions = self._sessions(series_id)
        if sessions is None or day not in sessions:
            return None
        entry: dict[str, Any] = _plain(sessions[day])
        return entry

    def session_fields(self, series_id: str, day: dt.date) -> SessionFields:
        raw = self.session_raw(series_id, day) or {}
        en = (raw.get("translations") or {}).get("en") or {}
        return SessionFields(
            topic=_text(raw.get("topic")),
            intro=_texts(raw.get("intro")),
            speakers=tuple(
                SpeakerFields(
                    _text(s.get("name")), _text(s.get("role")), _text(s.get("organisation"))
                )
                for s in raw.get("speakers") or ()
                if isinstance(s, dict)
            ),
            topic_en=_text(en.get("topic")),
            intro_en=_texts(en.get("intro")),
            start=_text(raw.get("start")),
            duration=int(raw["duration"]) if raw.get("duration") is not None else None,
            cancelled=bool(raw.get("cancelled")),
            reason=_text(raw.get("reason")),
            reason_en=_text(en.get("reason")),
            extra=bool(raw.get("extra")),
            materials=tuple(
                MaterialFields(_text(m.get("title")), _text(m.get("url")), _text(m.get("kind")))
                for m in raw.get("materials") or ()
                if isinstance(m, dict)
            ),
            note=_text(raw.get("note")),
        )

    def series_fields(self, series_id: str) -> SeriesFields:
        raw = _plain(self._series(series_id))
        texts = raw.get("texts") or {}
        en = (texts.get("translations") or {}).get("en") or {}
        lead = raw.get("lead") or {}
        return SeriesFields(
            invitation_lead=_text(texts.get("invitation_lead")) or "Wir laden herzlich ein zum",
            closing=_texts(texts.get("closing")),
            subscribe_note=_text(texts.get("subscribe_note")),
            title_en=_text(en.get("title")),
            invitation_lead_en=_text(en.get("invitation_lead")),
            closing_en=_texts(en.get("closing")),
            subscribe_note_en=_text(en.get("subscribe_note")),
            signature=_text(raw.get("signature")),
            invitation_days=int(lead.get("invitation_days", 14)),
            invitation_time=_text(lead.get("invitation_time")) or "09:00",
            reminder=bool(lead.get("reminder", True)),
            reminder_days=int(lead.get("reminder_days", 1)),
            reminder_time=_text(lead.get("reminder_time")) or "09:00",
            updates=_text(raw.get("updates")) or "review",
        )

    # --- writing ----------------------------------------------------------------------------
    def set_session(self, series_id: str, day: dt.date, f: SessionFields) -> None:
        sessions = self._sessions(series_id, create=True)
        assert sessions is not None
        entry = sessions.get(day)
        if not isinstance(entry, CommentedMap):
            entry = CommentedMap()
            # In date order, so that the file still reads as a calendar.
            later = [i for i, k in enumerate(sessions) if isinstance(k, dt.date) and k > day]
            sessions.insert(later[0] if later else len(sessions), day, entry)
        _put(entry, "topic", _block(f.topic))
        _put(entry, "intro", [_paragraph(p) for p in f.intro])
        _put(
            entry,
            "speakers",
            [_speaker(s) for s in f.speakers if s.name.strip()],
        )
        _put(entry, "start", f.start.strip())
        _put(entry, "duration", f.duration)
        _put(entry, "cancelled", True if f.cancelled else None)
        _put(entry, "reason", f.reason.strip() if f.cancelled else "")
        _put(entry, "extra", True if f.extra else None)
        _put(entry, "note", f.note.strip())
        _put(entry, "materials", [_material(m) for m in f.materials if m.url.strip()])
        self._set_session_english(entry, f)

    def _set_session_english(self, entry: CommentedMap, f: SessionFields) -> None:
        translations = entry.get("translations")
        if not isinstance(translations, CommentedMap):
            translations = CommentedMap()
        en = translations.get("en")
        if not isinstance(en, CommentedMap):
            en = CommentedMap()
        _put(en, "topic", _block(f.topic_en))
        _put(en, "intro", [_paragraph(p) for p in f.intro_en])
        _put(en, "reason", f.reason_en.strip() if f.cancelled else "")
        _put(translations, "en", en if len(en) else None)
        _put(entry, "translations", translations if len(translations) else None)

    def set_series(self, series_id: str, f: SeriesFields) -> None:
        series = self._series(series_id)
        texts = series.get("texts")
        if not isinstance(texts, CommentedMap):
            texts = CommentedMap()
        _put(texts, "invitation_lead", f.invitation_lead.strip())
        _put(texts, "closing", [_paragraph(p) for p in f.closing])
        _put(texts, "subscribe_note", _paragraph(f.subscribe_note) if f.subscribe_note else "")
        translations = texts.get("translations")
        if not isinstance(translations, CommentedMap):
            translations = CommentedMap()
        en = translations.get("en")
        if not isinstance(en, CommentedMap):
            en = CommentedMap()
        _put(en, "title", f.title_en.strip())
        _put(en, "invitation_lead", f.invitation_lead_en.strip())
        _put(en, "closing", [_paragraph(p) for p in f.closing_en])
        _put(en, "subscribe_note", _paragraph(f.subscribe_note_en) if f.subscribe_note_en else "")
        _put(translations, "en", en if len(en) else None)
        _put(texts, "translations", translations if len(translations) else None)
        _put(series, "texts", texts if len(texts) else None)
        lead = series.get("lead")
        if not isinstance(lead, CommentedMap):
            lead = CommentedMap()
            series["lead"] = lead
        _put(lead, "invitation_days", f.invitation_days)
        _put(lead, "invitation_time", f.invitation_time.strip())
        _put(lead, "reminder", f.reminder)
        _put(lead, "reminder_days", f.reminder_days)
        _put(lead, "reminder_time", f.reminder_time.strip())
        _put(series, "signature", _block(f.signature) if f.signature.strip() else "")
        # "review" is the default: only the opt-out is written.
        _put(series, "updates", "automatic" if f.updates == "automatic" else "")


def _speaker(s: SpeakerFields) -> CommentedMap:
    m = CommentedMap()
    m["name"] = _scalar(s.name.strip())
    _put(m, "role", s.role.strip())
    _put(m, "organisation", s.organisation.strip())
    return m


def _material(mat: MaterialFields) -> CommentedMap:
    m = CommentedMap()
    m["title"] = _scalar(mat.title.strip())
    m["url"] = _scalar(mat.url.strip())
    _put(m, "kind", "" if mat.kind in ("", "other") else mat.kind)
    return m


def _plain(value: Any) -> Any:
    """ruamel's commented containers and scalar strings as plain dicts, lists and str."""
    if isinstance(value, Mapping):
        return {(k if isinstance(k, dt.date) else str(k)): _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    if isinstance(value, str):
        return str(value)
    return value
