"""Reading a subscriber list someone exported from a spreadsheet or another mailing tool.

Tolerant of what such files look like (UTF-8 with or without BOM, or Windows-1252 as Excel's
"CSV (Trennzeichen-getrennt)" writes it on German Windows; Excel's ``sep=`` line, ``;`` or ``,``
or tabs, German or English headers, first and last name in two columns, no header at all),
strict about what goes in: every address is syntax-checked, duplicates and unknown languages are
rejected with the line they are on. A file that is no CSV list at all raises
``SubscriberImportError`` with the fix.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from session_bot.app.addresses import (
    NAME_MAX,
    clean_name,
    email_key,
    looks_like_address,
    normalise_address,
)
from session_bot.core.errors import InvalidAddress, SubscriberImportError

_HEADER_ALIASES = {
    "email": "email",
    "mail": "email",
    "emailadresse": "email",
    "mailadresse": "email",
    "emailaddress": "email",
    "adresse": "email",
    "address": "email",
    "name": "name",
    "fullname": "name",
    "vollständigername": "name",
    "anzeigename": "name",
    "vorname": "first",
    "firstname": "first",
    "givenname": "first",
    "nachname": "last",
    "lastname": "last",
    "surname": "last",
    "familienname": "last",
    "language": "language",
    "lang": "language",
    "sprache": "language",
    "status": "status",
}
_LANGUAGE_ALIASES = {
    "": None,
    "de": "de",
    "deu": "de",
    "ger": "de",
    "deutsch": "de",
    "german": "de",
    "en": "en",
    "eng": "en",
    "englisch": "en",
    "english": "en",
}
_IMPORTABLE_STATUS = {"", "confirmed", "bestätigt", "aktiv", "active", "subscribed", "angemeldet"}


@dataclass(frozen=True)
class Decoded:
    text: str
    encoding: str  # as the import report names it: "UTF-8", "UTF-8 mit BOM", "Windows-1252"


@dataclass(frozen=True)
class Rejected:
    line: int
    text: str
    reason: str


@dataclass(frozen=True)
class Parsed:
    line: int
    email: str
    name: str | None
    language: str


def parse_csv(
    data: bytes | str, source: str
) -> tuple[str, list[Parsed], list[Rejected], list[Rejected]]:
    """(delimiter, valid rows, rows skipped on purpose, rejected rows) of the file's bytes (or
    of its text, as ``read_text`` decoded it); raises ``SubscriberImportError`` for a file that
    is not a readable CSV list at all."""
    text = data if isinstance(data, str) else read_text(data, source).text
    lines = text.splitlines()
    offset = 0
    delimiter: str | None = None
    if lines and lines[0].strip().lower().startswith("sep=") and len(lines[0].strip()) == 5:
        delimiter = lines[0].strip()[4]  # Excel's "sep=;" hint line
        offset = 1
    body = "\n".join(lines[offset:])
    first = next((ln for ln in lines[offset:] if ln.strip()), "")
    if not first:
        raise SubscriberImportError(
            f"{source} is empty; expected a header line `email;name;language`."
        )
    delimiter = delimiter or _sniff_delimiter(first)
    reader = csv.reader(io.StringIO(body), delimiter=delimiter)
    try:
        rows, columns = _located(_records(reader, offset), source, first)
        valid, skipped, rejected = _rows(rows, columns)
    except csv.Error as exc:
        raise SubscriberImportError(
            f"{source}, line {reader.line_num + offset}: not readable as CSV ({exc}); check quotes "
            "in that line or export the list again as CSV UTF-8."
        ) from None
    return delimiter, valid, skipped, rejected


def _located(
    records: Iterator[tuple[int, list[str]]], source: str, first: str
) -> tuple[Iterable[tuple[int, list[str]]], dict[str, int]]:
    """The data rows and which column holds what, from the header or, lacking one, the data."""
    start, header = next(records, (0, []))
    columns = _columns(header)
    if columns is not None:
        return records, columns
    if not any(looks_like_address(c) for c in header):
        shown = first if len(first) <= 80 else first[:77] + "…"
        raise SubscriberImportError(
            f"{source}, line {start}: no column of e-mail addresses found (the first line "
            f"is {shown!r}). Is this a CSV export of the list? Add a header line such as "
            "`email;name;language` (or `E-Mail;Vorname;Nachname`) and import again."
        )
    # No header: the address, then (optionally) name and language.
    at = next(i for i, c in enumerate(header) if looks_like_address(c))
    return [(start, header), *records], {"email": at, "name": at + 1, "language": at + 2}


def _header_key(cell: str) -> str:
    return re.sub(r"[\s\-_.:]", "", cell.strip().lower())


def read_text(data: bytes, source: str) -> Decoded:
    """The file's text: UTF-8 (strict, a BOM taken off) if it is that, else Windows-1252, in
    which most bytes are some character, so a file that is neither shows as control characters
    or bytes that code page leaves undefined. Workbooks and binary files are refused."""
    if data.startswith(b"PK\x03\x04"):
        raise SubscriberImportError(
            f"{source} is a spreadsheet workbook (.xlsx/.ods), not a CSV file. Save it as "
            "“CSV UTF-8 (durch Trennzeichen getrennt)” or “CSV (Trennzeichen-getrennt)” (Excel) "
            "or “Text CSV” (LibreOffice) and import that file."
        )
    if b"\x00" in data[:8192]:
        raise SubscriberImportError(
            f"{source} is not a text file (it contains NUL bytes); export the list as CSV "
            "(UTF-8) with a header line such as `email;name;language`."
        )
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        pass
    else:
        return Decoded(text, "UTF-8 mit BOM" if data.startswith(codecs.BOM_UTF8) else "UTF-8")
    try:
        text = data.decode("cp1252")
    except UnicodeDecodeError as exc:
        _not_text(source, data[: exc.start].count(b"\n") + 1, f"byte 0x{data[exc.start]:02X}")
    if m := _CONTROL.search(text):
        _not_text(source, text.count("\n", 0, m.start()) + 1, f"control character {m[0]!r}")
    return Decoded(text, "Windows-1252")


# C0 controls but tab, line feed and carriage return; C1 controls (what Latin-1 would make of
# the bytes Windows-1252 leaves undefined).
_CONTROL = re.compile(r"[\x01-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def _not_text(source: str, line: int, what: str) -> NoReturn:
    raise SubscriberImportError(
        f"{source}, line {line}: neither UTF-8 nor Windows-1252 text ({what}); is this a CSV "
        "export of the list? Save it as “CSV UTF-8 (durch Trennzeichen getrennt)” (Excel) or "
        "choose character set Unicode (UTF-8) when exporting (LibreOffice), then import again."
    )


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: 0 for d in ";,\t"}
    quoted = False
    for ch in first_line:
        if ch == '"':
            quoted = not quoted
        elif not quoted and ch in counts:
            counts[ch] += 1
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] else ";"


def _records(reader: Any, offset: int) -> Iterator[tuple[int, list[str]]]:
    """Non-empty records with the file line each starts on (quoted cells may span lines)."""
    prev = 0
    for rec in reader:
        start = prev + 1 + offset
        prev = reader.line_num
        if any(cell.strip() for cell in rec):
            yield start, rec


def _columns(header: list[str]) -> dict[str, int] | None:
    found: dict[str, int] = {}
    for i, cell in enumerate(header):
        role = _HEADER_ALIASES.get(_header_key(cell))
        if role and role not in found:
            found[role] = i
    return found if "email" in found else None


def _rows(
    rows: Iterable[tuple[int, list[str]]], cols: dict[str, int]
) -> tuple[list[Parsed], list[Rejected], list[Rejected]]:
    valid: list[Parsed] = []
    skipped: list[Rejected] = []
    rejected: list[Rejected] = []
    seen: dict[str, int] = {}

    def cell(rec: list[str], role: str) -> str:
        i = cols.get(role)
        return rec[i].strip() if i is not None and i < len(rec) else ""

    for line, rec in rows:
        raw = cell(rec, "email")
        shown = raw or ";".join(rec)[:80]
        try:
            email = normalise_address(raw)
        except InvalidAddress as exc:
            rejected.append(Rejected(line, shown, f"invalid address: {exc}"))
            continue
        key = email_key(email)
        if key in seen:
            rejected.append(Rejected(line, raw, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = line
        status = cell(rec, "status").lower()
        if status not in _IMPORTABLE_STATUS:
            skipped.append(Rejected(line, email, f"status {status!r} in the file: not imported"))
            continue
        lang_raw = cell(rec, "language")
        if lang_raw.lower() not in _LANGUAGE_ALIASES:
            rejected.append(
                Rejected(line, raw, f"language {lang_raw!r} unknown: use de or en (or leave empty)")
            )
            continue
        name = cell(rec, "name") or " ".join(
            p for p in (cell(rec, "first"), cell(rec, "last")) if p
        )
        if len(name) > NAME_MAX:
            rejected.append(Rejected(line, raw, f"name longer than {NAME_MAX} characters"))
            continue
        valid.append(
            Parsed(line, email, clean_name(name), _LANGUAGE_ALIASES[lang_raw.lower()] or "de")
        )
    return valid, skipped, rejected
