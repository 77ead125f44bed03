"""`session-bot subscribers …`: the list on the command line. Heavy imports stay in the commands."""

from __future__ import annotations

import datetime as dt
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, TextIO

import typer

from session_bot.cli.common import EnvFile, PlanOpt, fail, load, load_plan
from session_bot.core.errors import SessionBotError

if TYPE_CHECKING:
    from session_bot.adapters.db.store import Store
    from session_bot.settings import Settings

subscribers_app = typer.Typer(
    help="Manage subscribers: add, import/export CSV, list, remove, forget, show consent proof.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

By = Annotated[
    str | None,
    typer.Option("--by", help="Who adds/imports (kept as consent proof); default: login name."),
]
ReaddForgotten = Annotated[
    bool,
    typer.Option(
        "--readd-forgotten",
        help="Also add addresses erased on request earlier (only with their new consent).",
    ),
]


@dataclass
class _Env:
    settings: Settings
    store: Store
    secret: str


@contextmanager
def _env(env_file: Path) -> Iterator[_Env]:
    from session_bot import wiring

    try:
        settings = load(env_file)
        store = wiring.open_store(settings)
        try:
            yield _Env(settings, store, wiring.secret_key(settings))
        finally:
            store.close()
    except SessionBotError as err:
        fail(err)


def _who(by: str | None) -> str:
    if by:
        return by
    import getpass

    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


@subscribers_app.command()
def add(
    address: Annotated[str, typer.Argument(help="E-mail address.")],
    name: Annotated[str | None, typer.Option(help="Name for the salutation.")] = None,
    language: Annotated[str, typer.Option(help="de | en")] = "de",
    source: Annotated[
        str,
        typer.Option(help="Where the consent comes from, e.g. 'E-Mail an K. Neumann, 3.2.2025'."),
    ] = "session-bot subscribers add",
    by: By = None,
    readd_forgotten: ReaddForgotten = False,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Add one confirmed subscriber whose consent you hold."""
    from session_bot.adapters.clock import system_clock
    from session_bot.app.subscriptions import add_subscriber

    with _env(env_file) as env:
        add_subscriber(
            env.store,
            env.secret,
            address=address,
            name=name,
            language=language,
            source=source,
            added_by=_who(by),
            now=system_clock(),
            readd_forgotten=readd_forgotten,
        )
        typer.echo(f"added {address.strip()} (confirmed)")


@subscribers_app.command("import")
def import_(
    csv_file: Annotated[
        Path,
        typer.Argument(help="CSV file (UTF-8 with or without BOM, or Windows-1252; ; or ,)."),
    ],
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; change nothing.")
    ] = False,
    by: By = None,
    readd_forgotten: ReaddForgotten = False,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Import subscribers (confirmed) from a spreadsheet's CSV export, in one transaction.

    Needs a header line with an e-mail column (email / E-Mail / E-Mail-Adresse / Mail; optional
    name or Vorname and Nachname, language / Sprache: de, en, Deutsch, Englisch). The encoding is
    detected: UTF-8 (with or without BOM) or Windows-1252, as Excel's "CSV (Trennzeichen-getrennt)"
    writes it. Rejected rows are listed with line numbers; the rest is imported. Exit code 1 when
    rows were rejected.
    """
    from session_bot.adapters.clock import system_clock
    from session_bot.app.subscriptions import import_csv

    with _env(env_file) as env:
        report = import_csv(
            env.store,
            env.secret,
            csv_file,
            imported_by=_who(by),
            now=system_clock(),
            dry_run=dry_run,
            readd_forgotten=readd_forgotten,
        )
    for row in report.rejected:
        typer.echo(f"line {row.line}: rejected {row.text!r}: {row.reason}", err=True)
    for row in report.unchanged:
        typer.echo(f"line {row.line}: unchanged {row.text}: {row.reason}")
    if dry_run:
        for p in report.added:
            typer.echo(f"line {p.line}: would add {p.email} ({p.name or 'no name'}, {p.language})")
    typer.echo(report.summary() + (" (dry run: nothing changed)" if dry_run else ""))
    if report.rejected:
        raise typer.Exit(1)


@subscribers_app.command()
def export(
    csv_file: Annotated[Path, typer.Argument(help="Target file, or - for standard output.")],
    status: Annotated[
        list[str] | None,
        typer.Option(help="Statuses to export (repeatable); default confirmed."),
    ] = None,
    all_: Annotated[bool, typer.Option("--all", help="Every status.")] = False,
    headers: Annotated[
        str,
        typer.Option(
            help="en: email;name;…;subscribed_at_utc (times in UTC). de: E-Mail;Name;Sprache;"
            "Status;Angemeldet seit;Bestätigt am, times in the series' zone, ; and a BOM."
        ),
    ] = "en",
    german: Annotated[bool, typer.Option("--german", help="Same as --headers de.")] = False,
    delimiter: Annotated[str, typer.Option(help="; (German spreadsheets) or ,")] = ";",
    bom: Annotated[bool, typer.Option(help="Start with a UTF-8 BOM (Excel needs it).")] = True,
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Export the list as CSV that spreadsheets open directly (and `import` reads back)."""
    from session_bot.app.subscriptions import STATUSES, export_csv

    chosen = list(STATUSES) if all_ else (status or ["confirmed"])
    unknown = [s for s in chosen if s not in STATUSES]
    if unknown or delimiter not in (";", ",", "\t") or headers not in ("en", "de"):
        raise typer.BadParameter(
            f"status must be one of {', '.join(STATUSES)}; delimiter ; , or a tab; headers en or de"
        )
    de = german or headers == "de"
    if de:
        delimiter, bom = ";", True  # what Excel on German Windows opens by double-click
    with _env(env_file) as env:
        zone = _zone(env.settings, plan) if de else dt.UTC

        def write(out: TextIO, with_bom: bool) -> int:
            return export_csv(env.store, out, statuses=chosen, delimiter=delimiter,
                              bom=with_bom, headers="de" if de else "utc", zone=zone)  # fmt: skip

        if str(csv_file) == "-":
            n = write(sys.stdout, False)
        else:
            try:
                with csv_file.open("w", encoding="utf-8", newline="") as out:
                    n = write(out, bom)
            except OSError as exc:
                typer.secho(
                    f"error: cannot write {csv_file} ({exc.strerror}); choose a writable path",
                    err=True,
                    fg=typer.colors.RED,
                )
                raise typer.Exit(2) from None
    if str(csv_file) != "-":
        typer.echo(f"exported {n} subscriber(s) to {csv_file}")


def _zone(settings: Settings, plan: Path | None) -> dt.tzinfo:
    """The first series' zone for a German export; UTC (said on stderr) without a usable plan."""
    try:
        return load_plan(settings, plan).series[0].zone
    except (SessionBotError, IndexError) as exc:
        typer.echo(
            f"Hinweis: Zeitzone der Reihe unbekannt ({exc or 'no series'}); Zeiten in UTC. "
            "Mit --plan PLAN.yaml stehen sie in der Ortszeit der Reihe.",
            err=True,
        )
        return dt.UTC


LIST_HEADER = "E-Mail\tStatus\tSprache\tName"


@subscribers_app.command("list")
def list_(
    status: Annotated[
        list[str] | None,
        typer.Option(help="Only these statuses (repeatable; forgotten: erased ones, counted)."),
    ] = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """List subscribers: a header line, then address, status, language, name per line."""
    from session_bot.app.subscriptions import STATUSES

    unknown = [s for s in status or [] if s not in (*STATUSES, "forgotten")]
    if unknown:
        raise typer.BadParameter(
            f"{', '.join(unknown)}: status must be one of {', '.join(STATUSES)} or forgotten"
        )
    with _env(env_file) as env:
        typer.echo(LIST_HEADER)
        n = erased = 0
        for row in env.store.subscribers.iter(status or None):
            if not row["email"]:  # erased on request: a tombstone without an address
                erased += 1
                continue
            typer.echo(f"{row['email']}\t{row['status']}\t{row['language']}\t{row['name'] or ''}")
            n += 1
    if erased:
        entries = "gelöschter Eintrag" if erased == 1 else "gelöschte Einträge"
        typer.echo(
            f"(gelöscht) {erased} {entries} nicht gezeigt: auf Wunsch gelöscht (DSGVO Art. 17), "
            "keine Adresse mehr gespeichert"
        )
    typer.echo(f"{n} subscriber(s)", err=True)


@subscribers_app.command()
def remove(
    address: Annotated[str, typer.Argument(help="E-mail address.")],
    env_file: EnvFile = Path(".env"),
) -> None:
    """Unsubscribe an address (keeps the consent proof; use `forget` to erase it)."""
    from session_bot.adapters.clock import system_clock
    from session_bot.app.subscriptions import remove_subscriber

    with _env(env_file) as env:
        result = remove_subscriber(env.store, address, system_clock())
    if result == "unknown":
        typer.secho(f"error: {address} is not on the list", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    typer.echo(f"{address}: {result}")


@subscribers_app.command()
def forget(
    address: Annotated[str, typer.Argument(help="E-mail address.")],
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Erase an address's personal data (GDPR Art. 17); keep a keyed hash so that a later
    import does not silently add it again."""
    from session_bot.adapters.clock import system_clock
    from session_bot.app.subscriptions import forget_subscriber

    if not yes:
        _ask_forget(address)
    with _env(env_file) as env:
        known = forget_subscriber(env.store, env.secret, address, system_clock())
    typer.echo(
        f"{address}: {'erased' if known else 'was not on the list'}; a keyed hash blocks "
        "re-adding it by import. Copies outside the database (mail server logs, the outbox) "
        "are not touched."
    )


@subscribers_app.command()
def show(
    address: Annotated[str, typer.Argument(help="E-mail address.")],
    env_file: EnvFile = Path(".env"),
) -> None:
    """Print the stored consent proof of an address."""
    from session_bot.app.subscriptions import consent_proof

    with _env(env_file) as env:
        lines = consent_proof(env.store, env.secret, address)
    if not lines:
        typer.secho(f"error: {address} is not on the list", err=True, fg=typer.colors.RED)
        raise typer.Exit(2)
    width = max(len(label) for label, _ in lines)
    for label, value in lines:
        typer.echo(f"{label + ':':<{width + 1}} {value}")


def _ask_forget(address: str) -> None:
    """Ask before erasing; in a run nobody answers (a script, a cron job) refuse: exit 2."""
    if not sys.stdin.isatty():
        typer.secho(
            f"error: nicht gelöscht: {address} würde endgültig gelöscht, aber niemand kann "
            "rückfragen (keine Eingabe am Terminal). Zum Löschen ohne Rückfrage --yes anhängen: "
            f"session-bot subscribers forget {address} --yes",
            err=True,
            fg=typer.colors.RED,
        )
        raise typer.Exit(2)
    typer.echo(
        f"{address}: alles Gespeicherte wird endgültig gelöscht (DSGVO Art. 17); nur ein "
        "Schlüssel bleibt, der ein erneutes Importieren verhindert."
    )
    answer = typer.prompt(
        "Wirklich löschen? [j/N]", default="", show_default=False, prompt_suffix=" "
    )
    if answer.strip().lower() not in ("j", "ja", "y", "yes"):
        typer.echo("Abgebrochen: nichts gelöscht.")
        raise typer.Exit(1)
