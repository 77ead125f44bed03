"""`session-bot plan …`: the plan's revisions in the database (import, export, history, diff,
restore) — for those who keep the plan as a file beside the console."""

from __future__ import annotations

import getpass
import socket
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from session_bot.cli.common import EnvFile, fail, load
from session_bot.core.errors import ConfigError, SessionBotError

if TYPE_CHECKING:
    from session_bot.adapters.db.store import Store
    from session_bot.app.plan_book import PlanBook
    from session_bot.settings import Settings

plan_app = typer.Typer(
    help="The plan in the database: import FILE, export, history, diff, restore.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def actor() -> str:
    return f"cli ({getpass.getuser()}@{socket.gethostname()})"


def _book(env_file: Path) -> tuple[Settings, Store, PlanBook]:
    # Imported here: `session-bot --help` stays fast.
    from session_bot import wiring
    from session_bot.adapters.clock import system_clock
    from session_bot.app.plan_book import PlanBook

    settings = load(env_file)
    store = wiring.open_store(settings, purpose="look")
    return settings, store, PlanBook(store, system_clock)


@plan_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="The plan file (YAML) to make the current plan.")],
    env_file: EnvFile = Path(".env"),
) -> None:
    """Make FILE the current plan (a new revision; the previous ones stay and can be restored)."""
    from session_bot.app.plan_book import Who
    from session_bot.core.plan import load_plan

    try:
        load_plan(file)  # its own messages name the file and line
        settings, store, book = _book(env_file)
        try:
            before = book.current()
            revision = book.import_text(
                file.read_text(encoding="utf-8"), Who(actor()), name=str(file)
            )
        finally:
            store.close()
        if before is not None and before.id == revision.id:
            typer.echo(
                f"The database's plan (revision {revision.id}) is already this file; nothing changed."
            )
        else:
            typer.echo(f"Imported {file} as plan revision {revision.id}.")
        if "plan" in settings.model_fields_set:
            typer.echo(
                f"Note: SESSION_BOT_PLAN is set ({settings.plan}), so session-bot still reads that "
                "file; unset it to work from the database's plan.",
                err=True,
            )
    except SessionBotError as err:
        fail(err)


@plan_app.command("export")
def export(
    revision: Annotated[
        int | None, typer.Option(help="A revision number (default: the current).")
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write to this file instead of the screen."),
    ] = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Print the plan (or write it to a file) exactly as stored."""
    try:
        _, store, book = _book(env_file)
        try:
            rev = book.get(revision) if revision is not None else book.require_current()
        finally:
            store.close()
        if output is None:
            sys.stdout.write(rev.text)
        else:
            if output.exists():
                raise ConfigError(
                    f"{output} exists already; choose another name (nothing was written)"
                )
            output.write_text(rev.text, encoding="utf-8")
            typer.echo(f"Wrote plan revision {rev.id} to {output}.")
    except SessionBotError as err:
        fail(err)


@plan_app.command("history")
def history(env_file: EnvFile = Path(".env")) -> None:
    """The plan's revisions, newest first: number, time (UTC), author, what."""
    try:
        _, store, book = _book(env_file)
        try:
            revisions = book.history()
        finally:
            store.close()
        if not revisions:
            typer.echo("No plan in the database yet; `session-bot plan import FILE` adds one.")
        for r in revisions:
            typer.echo(f"{r.id:>5}  {r.created_at:%Y-%m-%d %H:%M}  {r.author}  {r.note}")
    except SessionBotError as err:
        fail(err)


@plan_app.command("diff")
def diff(
    revision: Annotated[int, typer.Argument(help="The revision to compare with the current one.")],
    env_file: EnvFile = Path(".env"),
) -> None:
    """What changed from REVISION to the current plan."""
    try:
        _, store, book = _book(env_file)
        try:
            lines = book.compare(revision)
        finally:
            store.close()
        typer.echo("\n".join(lines) if lines else "No difference.")
    except SessionBotError as err:
        fail(err)


@plan_app.command("restore")
def restore(
    revision: Annotated[int, typer.Argument(help="The revision to make current again.")],
    env_file: EnvFile = Path(".env"),
) -> None:
    """Make an earlier revision the current plan again (as a new revision)."""
    from session_bot.app.plan_book import Who

    try:
        _, store, book = _book(env_file)
        try:
            new = book.restore(revision, Who(actor()))
        finally:
            store.close()
        typer.echo(f"Restored revision {revision} as revision {new.id}.")
    except SessionBotError as err:
        fail(err)
