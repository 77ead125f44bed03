"""What a plan error says, in the organiser's words (German: the plan is hers to write).

Each sentence says what is wrong and what to write instead; the field's YAML key stays in the
``file:line: field:`` prefix ``PlanError`` puts before it, so the message names the field as the
organiser knows it ("Startzeit", "Dauer"). ``problem_text`` turns one of pydantic's errors
(its ``type``, the value as the file spells it, the key) into such a sentence. Pure.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

EXAMPLE_FILE = "examples/willkommen.yaml"

LABELS = {
    "series": "Reihen",
    "id": "Kennung",
    "title": "Titel",
    "starts_on": "Beginn der Reihe",
    "rrule": "Regel",
    "until": "Ende der Reihe",
    "start": "Startzeit",
    "duration": "Dauer",
    "timezone": "Zeitzone",
    "language": "Sprache",
    "organiser": "Veranstalter:in",
    "reply_to": "Antwortadresse",
    "alternative_hosts": "weitere Hosts",
    "lead": "Zeitplan der Mails",
    "holidays": "Feiertage",
    "breaks": "Pausenmonate",
    "exceptions": "Ausnahmen",
    "calendar_method": "Kalender-Methode",
    "texts": "Texte",
    "sessions": "Termine",
    "topic": "Thema",
    "intro": "Einleitung",
    "speakers": "Referierende",
    "cancelled": "Absage",
    "reason": "Grund",
    "minor_change": "kleine Änderung",
    "note": "Notiz",
    "extra": "Zusatztermin",
    "translations": "Übersetzungen",
    "name": "Name",
    "email": "E-Mail-Adresse",
    "role": "Rolle",
    "organisation": "Organisation",
    "invitation_days": "Tage vor dem Termin für die Einladung",
    "invitation_time": "Uhrzeit der Einladung",
    "reminder": "Erinnerung",
    "reminder_days": "Tage vor dem Termin für die Erinnerung",
    "reminder_time": "Uhrzeit der Erinnerung",
    "country": "Land",
    "subdiv": "Bundesland",
    "invitation_lead": "Einleitungssatz der Einladung",
    "closing": "Schlusstext",
    "subscribe_note": "Hinweis zur Anmeldung",
    "signature": "Signatur",
    "materials": "Materialien",
    "url": "Adresse",
    "kind": "Art",
}
_TIMES = ("start", "invitation_time", "reminder_time")
_UNITS = {"duration": "Minuten", "invitation_days": "Tage", "reminder_days": "Tage"}
_NUMBERS = {
    "duration": "eine Zahl von Minuten, z. B. 60",
    "invitation_days": "eine Zahl von Tagen, z. B. 14",
    "reminder_days": "eine Zahl von Tagen, z. B. 1",
    "breaks": "Monatszahlen von 1 bis 12, z. B. [8] für August",
}
_LISTS = {
    "intro": "als Text oder als Liste von Absätzen, jeder in einer Zeile mit „- “ davor",
    "closing": "als Text oder als Liste von Absätzen, jeder in einer Zeile mit „- “ davor",
    "speakers": "als Liste, jede Person in einer Zeile mit `- name: …` (dazu, wenn gewünscht, "
    "`role: …` und `organisation: …` darunter)",
    "exceptions": "als Liste von Daten, z. B. [2025-12-31]",
    "breaks": "als Liste von Monatszahlen, z. B. [8] für August",
    "alternative_hosts": "als Liste von E-Mail-Adressen, z. B. [name@beispiel.de]",
    "materials": "als Liste, jedes Material in einer Zeile mit `- title: …` und darunter "
    "`url: https://…` (dazu, wenn gewünscht, `kind: slides`, `recording`, `documentation` oder "
    "`other`)",
}
_PATTERNS = {
    "email": "keine gültige E-Mail-Adresse; bitte wie „name@beispiel.de“ schreiben",
    "id": "bitte nur Kleinbuchstaben, Ziffern und Bindestriche (am Anfang kein Bindestrich, "
    "höchstens 40 Zeichen), z. B. „willkommen“",
    "title": "darf nicht leer sein",
}
_LANGUAGES = {"de": "Deutsch", "en": "Englisch"}
_MATERIAL_KINDS = {
    "slides": "Folien",
    "recording": "Aufzeichnung",
    "documentation": "Dokumentation",
    "other": "sonstiges Material",
}
WEEKDAYS = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
MONTHS = (
    "Januar",
    "Februar",
    "März",
    "April",
    "Mai",
    "Juni",
    "Juli",
    "August",
    "September",
    "Oktober",
    "November",
    "Dezember",
)


def label(key: str | None) -> str:
    """The field as the organiser calls it; an unknown key as itself."""
    if key is None:
        return "Wert"
    return LABELS.get(key, f"„{key}“")


def quoted(text: str) -> str:
    return f"„{text}“"


def long_date(day: dt.date) -> str:
    """``Mittwoch, 26. März 2025``."""
    return f"{WEEKDAYS[day.weekday()]}, {day.day}. {MONTHS[day.month - 1]} {day.year}"


def _or(words: Iterable[str]) -> str:
    items = list(words)
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " oder " + items[-1]


def _time_hint(raw: str | None) -> str:
    """What a time should look like, from what was written (``12.30`` → ``12:30``)."""
    match = re.fullmatch(r"\s*(\d{1,2})\s*[.:,h]\s*(\d{2})\s*(uhr)?\s*", (raw or "").lower())
    if match is None:
        return "bitte als Uhrzeit wie „12:30“ schreiben (in Anführungszeichen)"
    hour, minute = int(match.group(1)), int(match.group(2))
    if hour > 23 or minute > 59:
        return (
            "diese Uhrzeit gibt es nicht; Stunden 00–23, Minuten 00–59, z. B. „12:30“ (in "
            "Anführungszeichen)"
        )
    return f"bitte als Uhrzeit wie „{hour:02d}:{minute:02d}“ schreiben (in Anführungszeichen)"


def unknown_field(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    if close:
        return f"unbekanntes Feld „{key}“ – meinten Sie „{close[0]}“?"
    return (
        f"unbekanntes Feld „{key}“; bitte entfernen oder die Schreibweise mit {EXAMPLE_FILE} "
        "vergleichen"
    )


def missing_field(key: str) -> str:
    if key == "series":
        return "die Datei braucht `series:` mit mindestens einer Reihe (siehe " + EXAMPLE_FILE + ")"
    return f"{label(key)} fehlt: bitte `{key}: …` ergänzen (Pflichtangabe)"


def misplaced_key(key: str, parent: str | None, session_fields: Sequence[str]) -> str:
    """A key pydantic cannot read as a key: a date under ``sessions:``, a language elsewhere."""
    if parent == "sessions":
        if key in session_fields:
            return (
                f"unter `sessions:` steht hier „{key}:“, erwartet wird das Datum eines Termins wie "
                f"2025-03-26. Wahrscheinlich muss `{key}:` weiter eingerückt werden, unter das "
                "Datum seines Termins"
            )
        return (
            f"„{key}“ ist kein Datum; unter `sessions:` steht jeder Termin mit seinem Datum, "
            "z. B. `2025-03-26:`"
        )
    if parent == "translations":
        return f"Sprache „{key}“: bitte „de“ (Deutsch) oder „en“ (Englisch)"
    return f"„{key}“ ist hier nicht möglich; bitte mit {EXAMPLE_FILE} vergleichen"


def problem_text(
    kind: str,
    key: str | None,
    raw: str | None,
    ctx: Mapping[str, Any],
    msg: str,
    *,
    in_list: bool = False,
) -> str:
    """One of pydantic's errors (``kind`` is its type) about ``key``, in German.

    ``raw`` is the value as the file spells it (None for a list or mapping); ``in_list`` says the
    value is an item of the list ``key``."""
    name = label(key)
    head = f"{name} {quoted(raw)}" if raw is not None else name
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if key == "url" and kind == "string_pattern_mismatch":
        return f"{head}: {_url_hint(raw)}"
    if key in _TIMES and kind in ("string_type", "string_pattern_mismatch"):
        return f"{head}: {_time_hint(raw)}"
    if kind in ("int_parsing", "int_type", "int_from_float", "float_parsing"):
        return f"{head}: bitte {_NUMBERS.get(key or '', 'eine ganze Zahl')}"
    if kind in ("greater_than_equal", "less_than_equal", "greater_than", "less_than"):
        return f"{head}: {_bound(kind, key, ctx)}"
    if kind in ("list_type", "tuple_type", "set_type"):
        return f"{name}: bitte {_LISTS.get(key or '', 'als Liste (jeder Eintrag mit „- “ davor)')}"
    if kind in ("model_type", "dict_type", "model_attributes_type"):
        return _mapping_expected(key, raw, in_list=in_list)
    if kind in ("date_parsing", "date_from_datetime_parsing", "date_type", "date_from_datetime"):
        return f"{head}: bitte als Datum wie 2025-03-26 schreiben (Jahr-Monat-Tag)"
    if kind in ("bool_parsing", "bool_type"):
        return f"{head}: bitte `true` (ja) oder `false` (nein)"
    if kind == "literal_error":
        return f"{head}: {_choices(key, ctx)}"
    if kind == "string_pattern_mismatch":
        return f"{head}: {_PATTERNS.get(key or '', 'hat nicht die erwartete Form')}"
    if kind == "string_type":
        return f"{head}: bitte als Text schreiben (in Anführungszeichen)"
    if kind == "string_too_short":
        return f"{name}: darf nicht leer sein"
    if kind == "string_too_long":
        return f"{name}: ist {len(raw or '')} Zeichen lang; höchstens {ctx.get('max_length')}"
    if kind == "too_long":
        count = f" (hier {ctx['actual_length']})" if ctx.get("actual_length") else ""
        return f"{name}: höchstens {ctx.get('max_length')} Einträge{count}"
    if kind == "too_short":
        return f"{name}: bitte mindestens {ctx.get('min_length')} Eintrag/Einträge"
    return f"{head}: ungültiger Wert ({msg})"


def _url_hint(raw: str | None) -> str:
    """What a material's address should look like: https only (the archive is public)."""
    if (raw or "").strip().lower().startswith("http://"):
        fixed = "https://" + (raw or "").strip()[len("http://") :]
        return (
            "bitte eine sichere Adresse mit https:// angeben; http:// ist nicht möglich "
            f"(meist genügt „{fixed}“)"
        )
    return (
        "bitte eine vollständige Adresse mit https:// angeben, z. B. "
        "„https://beispiel.de/folien.pdf“"
    )


def _bound(kind: str, key: str | None, ctx: Mapping[str, Any]) -> str:
    limit = next((ctx[k] for k in ("ge", "le", "gt", "lt") if k in ctx), None)
    low = kind.startswith("greater")
    if isinstance(limit, dt.date):
        return f"{'frühestens' if low else 'spätestens'} {limit.isoformat()}"
    unit = _UNITS.get(key or "", "")
    text = f"{limit} {unit}".strip()
    if key == "duration" and not low:
        text += " (24 Stunden)"
    return f"{'mindestens' if low else 'höchstens'} {text}"


def _choices(key: str | None, ctx: Mapping[str, Any]) -> str:
    expected = re.findall(r"'([^']*)'", str(ctx.get("expected", "")))
    words = [
        f"„{e}“ ({_LANGUAGES[e]})"
        if key == "language" and e in _LANGUAGES
        else f"„{e}“ ({_MATERIAL_KINDS[e]})"
        if key == "kind" and e in _MATERIAL_KINDS
        else f"„{e}“"
        for e in expected
    ]
    return f"bitte {_or(words)}" if words else "dieser Wert ist hier nicht möglich"


def _mapping_expected(key: str | None, raw: str | None, *, in_list: bool) -> str:
    if key == "speakers" and in_list:
        person = f", nicht nur {quoted(raw)}" if raw is not None else ""
        return (
            f"Referierende: jede Person bitte mit `- name: …` schreiben{person} (dazu, wenn "
            "gewünscht, `role: …` und `organisation: …` darunter)"
        )
    if key == "materials" and in_list:
        link = f", nicht nur {quoted(raw)}" if raw is not None else ""
        return (
            f"Materialien: jedes bitte mit `- title: …` und darunter `url: https://…` "
            f"schreiben{link} (dazu, wenn gewünscht, `kind: slides`, `recording`, "
            "`documentation` oder `other`)"
        )
    if key == "sessions":
        return (
            "Termine: unter jedem Datum bitte die Angaben eingerückt darunter schreiben, "
            "z. B. `topic: …`"
        )
    if key == "series" and in_list:
        return "Reihen: jede Reihe beginnt mit `- id: …`, darunter eingerückt ihre Angaben"
    return f"{label(key)}: hier werden eingerückte Angaben darunter erwartet (siehe {EXAMPLE_FILE})"


def off_rule(day: dt.date, nearest: Sequence[dt.date]) -> str:
    """A session's date the series' rule does not give; ``nearest`` are the rule's closest."""
    if not nearest:
        return (
            f"{day.isoformat()} ist kein Termin der Reihe (die Regel ergibt um dieses Datum herum "
            "keinen Termin). Als Zusatztermin markieren: `extra: true`."
        )
    dates = " und ".join(long_date(d) for d in nearest)
    meant = " oder ".join(_short(d, day, nearest) for d in nearest)
    return (
        f"{day.isoformat()} ist kein Termin der Reihe (die Regel ergibt {dates}). "
        f"Ist {meant} gemeint? Sonst als Zusatztermin markieren: `extra: true`."
    )


def _short(day: dt.date, near: dt.date, nearest: Sequence[dt.date]) -> str:
    """``der 26.`` in the month of ``near``, else with the month (and the year if it differs)."""
    if all((d.year, d.month) == (near.year, near.month) for d in nearest):
        return f"der {day.day}."
    if all(d.year == near.year for d in nearest):
        return f"der {day.day}. {MONTHS[day.month - 1]}"
    return f"der {day.day}. {MONTHS[day.month - 1]} {day.year}"


def outside_series(day: dt.date, starts_on: dt.date, until: dt.date | None) -> str:
    """A session's date before the series starts or after it ends: it would never be held."""
    if day < starts_on:
        return (
            f"{day.isoformat()} liegt vor dem Beginn der Reihe ({long_date(starts_on)}, "
            "`starts_on:`) und fände nie statt; bitte das Datum oder `starts_on:` korrigieren"
        )
    end = long_date(until) if until else ""
    return (
        f"{day.isoformat()} liegt nach dem Ende der Reihe ({end}, `until:`) und fände nie statt; "
        "bitte das Datum oder `until:` korrigieren"
    )
