"""`session-bot updates …`: changes to announced sessions that wait for the organiser.

In a series with `updates: review` (the default) a changed time, topic or speakers of an
invited session, or its cancellation, mails nobody by itself: `list` shows what waits, `send
DATE` mails it now (one run), `dismiss DATE` records it as told without a mail.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from session_bot.cli.common import EnvFile, PlanOpt, clock_at, fail, load, load_plan
from session_bot.cli.plans import actor
from session_bot.core.errors import ConfigError, SessionBotError

if TYPE_CHECKING:
    from session_bot.app.pending import PendingDesk
    from session_bot.core.review import PendingChange

updates_app = typer.Typer(
    help="Changes to announced sessions waiting for you: list, send DATE, dismiss DATE.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

Date = Annotated[str, typer.Argument(help="The session's date, YYYY-MM-DD.")]

_FIELDS = {"time": "Zeit", "topic": "Thema", "speakers": "Impulsvorträge"}


def describe(change: PendingChange) -> str:
    occ = change.occurrence
    start = occ.start.astimezone(occ.series.zone)
    if change.kind == "cancellation":
        what = "Absage"
    else:
        what = "Änderung (" + ", ".join(_FIELDS.get(f, f) for f in change.fields) + ")"
    return f"{occ.date.isoformat()}  {start:%H:%M}  {what}: {occ.content.topic_one_line if occ.content else ''}"


def _key_for(desk: PendingDesk, day: str) -> str:
    try:
        wanted = dt.date.fromisoformat(day)
    except ValueError:
        raise ConfigError(f"DATE {day!r}: bitte als Datum wie 2025-03-26 schreiben") from None
    for change in desk.pending():
        if change.occurrence.date == wanted:
            return change.key
    raise ConfigError(
        f"für den {wanted:%d.%m.%Y} wartet keine Änderung; `session-bot updates list` zeigt, "
        "was wartet"
    )


@updates_app.command("list")
def list_(plan: PlanOpt = None, env_file: EnvFile = Path(".env")) -> None:
    """What waits for you to be sent or dismissed."""
    from session_bot import wiring
    from session_bot.app.pending import PendingDesk

    try:
        settings = load(env_file)
        the_plan = load_plan(settings, plan)
        store = wiring.open_store(settings, purpose="look")
        try:
            changes = PendingDesk(store, clock_at(None), lambda: the_plan).pending()
        finally:
            store.close()
        if not changes:
            typer.echo("Keine Änderung wartet auf Versand.")
        for change in changes:
            typer.echo(describe(change))
    except SessionBotError as err:
        fail(err)


@updates_app.command("send")
def send(date: Date, plan: PlanOpt = None, env_file: EnvFile = Path(".env")) -> None:
    """Mail the waiting update or cancellation of DATE to every subscriber, now."""
    from session_bot import wiring
    from session_bot.app.pending import PendingDesk
    from session_bot.app.plan_book import Who
    from session_bot.cli.run_now import run_now

    try:
        settings = load(env_file)
        the_plan = load_plan(settings, plan)
        clock = clock_at(None)
        store = wiring.open_store(settings)
        try:
            desk = PendingDesk(store, clock, lambda: the_plan)
            change = desk.send(_key_for(desk, date), Who(actor()))
            typer.echo(f"Wird jetzt verschickt: {describe(change)}")
            code = run_now(settings, the_plan, store, clock, "updates-send")
        finally:
            store.close()
    except SessionBotError as err:
        fail(err)
    raise typer.Exit(code)


@updates_app.command("dismiss")
def dismiss(date: Date, plan: PlanOpt = None, env_file: EnvFile = Path(".env")) -> None:
    """Record the waiting update of DATE as told, without a mail (a typo fixed, say)."""
    from session_bot import wiring
    from session_bot.app.pending import PendingDesk
    from session_bot.app.plan_book import Who

    try:
        settings = load(env_file)
        the_plan = load_plan(settings, plan)
        store = wiring.open_store(settings)
        try:
            desk = PendingDesk(store, clock_at(None), lambda: the_plan)
            change = desk.dismiss(_key_for(desk, date), Who(actor()))
        finally:
            store.close()
        typer.echo(f"Ohne Mail erledigt: {describe(change)}")
    except SessionBotError as err:
        fail(err)
