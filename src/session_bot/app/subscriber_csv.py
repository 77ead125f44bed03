"""Importing a subscriber list from CSV and exporting it back, for spreadsheets.

An import adds people whose consent the organiser holds, as confirmed subscribers, all in one
transaction; the file and who imported it are kept as their consent proof. It never changes
anybody already on the list, and an address unsubscribed or erased on request is never re-added
without an explicit flag (``readd_forgotten``). Reading the file is ``subscriber_csv_parse``'s.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, TextIO

from session_bot.app.addresses import FORMULA_START, email_key, forget_hash, normalise_address
from session_bot.app.ports.store import Store
from session_bot.app.subscriber_csv_parse import Parsed, Rejected, parse_csv, read_text
from session_bot.core.errors import InvalidAddress, SubscriberImportError
from session_bot.core.records import ImportedRow

# "plain": the first export's names, which the web console still writes; "utc": the same
# columns, saying that the time is UTC; "de": for German spreadsheets, times in the series' zone.
ExportHeaders = Literal["plain", "utc", "de"]
EXPORT_COLUMNS = ("email", "name", "language", "status", "subscribed_at")
EXPORT_COLUMNS_UTC = ("email", "name", "language", "status", "subscribed_at_utc")
EXPORT_COLUMNS_DE = ("E-Mail", "Name", "Sprache", "Status", "Angemeldet seit", "Bestätigt am")
# Words the import reads back: languages by ``_LANGUAGE_ALIASES``, "bestätigt" as importable.
_LANGUAGE_DE = {"de": "Deutsch", "en": "Englisch"}
_STATUS_DE = {
    "pending": "unbestätigt",
    "confirmed": "bestätigt",
    "unsubscribed": "abgemeldet",
    "bounced": "unzustellbar",
}


@dataclass
class ImportReport:
    file: str
    delimiter: str
    dry_run: bool
    added: list[Parsed] = field(default_factory=list)
    unchanged: list[Rejected] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    encoding: str = "UTF-8"  # how the file was read: "UTF-8", "UTF-8 mit BOM", "Windows-1252"

    def summary(self) -> str:
        verb = "would add" if self.dry_run else "added"
        return (
            f"{self.file}: {verb} {len(self.added)}, unchanged {len(self.unchanged)}, "
            f"rejected {len(self.rejected)} (gelesen als {self.encoding})"
        )


def import_csv(
    store: Store,
    secret: str,
    path: Path,
    *,
    imported_by: str,
    now: dt.datetime,
    dry_run: bool = False,
    readd_forgotten: bool = False,
) -> ImportReport:
    """Validate every row and import the good ones as confirmed, in one transaction."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SubscriberImportError(
            f"cannot read {path} ({exc.strerror}); check the path."
        ) from None
    decoded = read_text(data, str(path))
    delimiter, parsed, skipped, rejected = parse_csv(decoded.text, str(path))
    valid = _unguarded(parsed, rejected)
    report = ImportReport(
        str(path), delimiter, dry_run, unchanged=skipped, rejected=rejected,
        encoding=decoded.encoding,
    )  # fmt: skip
    existing = store.subscribers.statuses_of([email_key(p.email) for p in valid])
    hashes = {p.email: forget_hash(secret, p.email) for p in valid}
    erased = store.subscribers.forgotten_among(list(hashes.values()))
    new: list[Parsed] = []
    for p in valid:
        blocked = hashes[p.email] in erased and not readd_forgotten
        refusal = _refusal(existing.get(email_key(p.email)), blocked)
        if refusal is None:
            new.append(p)
        else:
            kept, reason = refusal
            (report.unchanged if kept else report.rejected).append(
                Rejected(p.line, p.email, reason)
            )
    report.unchanged.sort(key=lambda r: r.line)
    report.rejected.sort(key=lambda r: r.line)
    report.added = new
    if not dry_run and new:
        store.subscribers.import_rows(
            [ImportedRow(p.email, p.name, p.language) for p in new],
            now=now,
            import_file=str(path.resolve()),
            imported_by=imported_by,
        )
        for p in new:
            if hashes[p.email] in erased:
                store.subscribers.unforget(hashes[p.email])
    return report


def _refusal(status: str | None, erased: bool) -> tuple[bool, str] | None:
    """Why a valid row is not added (and whether it stays as it is rather than being refused);
    None to add it."""
    if status == "confirmed":
        return True, "already subscribed"
    if status == "pending":
        return True, "awaiting confirmation of a web request; not changed"
    if status is not None:
        return False, f"{status} on the list: only they can subscribe again (form)"
    if erased:
        return (
            False,
            "erased on request (GDPR Art. 17); re-add only with new consent (--readd-forgotten)",
        )
    return None


def _unguarded(parsed: list[Parsed], rejected: list[Rejected]) -> list[Parsed]:
    """The addresses without the quote ``_safe_cell`` put before a formula character, so an
    export reads back as the same list; rows that turn out duplicates go to ``rejected``."""
    out: list[Parsed] = []
    seen: dict[str, int] = {}
    for p in parsed:
        email = p.email
        if len(email) > 1 and email[0] == "'" and email[1] in FORMULA_START:
            # Not our guard if the rest is no address: a local part that starts with a quote.
            with contextlib.suppress(InvalidAddress):
                email = normalise_address(email[1:])
        key = email_key(email)
        if key in seen:
            rejected.append(Rejected(p.line, p.email, f"duplicate of line {seen[key]}"))
            continue
        seen[key] = p.line
        out.append(Parsed(p.line, email, p.name, p.language) if email != p.email else p)
    return out


def _safe_cell(value: str) -> str:
    """OWASP's CSV-injection guard: spreadsheets run a cell starting with a formula character,
    so a leading quote keeps it text (and ``import_csv`` takes it off again)."""
    return "'" + value if value.startswith(FORMULA_START) else value


def export_csv(
    store: Store,
    out: TextIO,
    *,
    statuses: Sequence[str] = ("confirmed",),
    delimiter: str = ";",
    bom: bool = True,
    headers: ExportHeaders = "plain",
    zone: dt.tzinfo = dt.UTC,
) -> int:
    """Write the list as CSV that spreadsheets open directly (and ``import_csv`` reads back).

    ``headers="de"`` writes German column names and words, with the times in ``zone`` (named in
    the time columns' headers); the others write UTC times."""
    if bom:
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if headers == "de":
        label = f" ({getattr(zone, 'key', None) or zone.tzname(None) or 'UTC'})"
        writer.writerow([*EXPORT_COLUMNS_DE[:4], *(h + label for h in EXPORT_COLUMNS_DE[4:])])
    else:
        writer.writerow(EXPORT_COLUMNS_UTC if headers == "utc" else EXPORT_COLUMNS)
    n = 0
    for row in store.subscribers.iter(statuses or None):
        cells = [_safe_cell(row["email"]), _safe_cell(row["name"] or "")]
        if headers == "de":
            cells += [
                _LANGUAGE_DE.get(row["language"], row["language"]),
                _STATUS_DE.get(row["status"], row["status"]),
                _local(row["created_at"], zone),
                _local(row["confirmed_at"], zone),
            ]
        else:
            since = row["confirmed_at"] or row["created_at"]
            cells += [
                row["language"],
                row["status"],
                since.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S") if since else "",
            ]
        writer.writerow(cells)
        n += 1
    return n


def _local(moment: dt.datetime | None, zone: dt.tzinfo) -> str:
    """As German spreadsheets read a date and time: 13.02.2025 10:00."""
    return moment.astimezone(zone).strftime("%d.%m.%Y %H:%M") if moment else ""
