"""The `session-bot` command line. Heavy imports stay inside the commands: `--help` is fast."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from session_bot.cli.common import (
    EXAMPLE_NOW,
    EnvFile,
    PlanOpt,
    clock_at,
    fail,
    load,
    load_plan,
    parse_now,
)
from session_bot.core.errors import SessionBotError

app = typer.Typer(
    help="Runs a recurring online expert-exchange series on Zoom: meetings, invitations, reminders.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DEMO_PLAN = Path("examples/willkommen.yaml")
DEMO_SUBSCRIBERS = Path("examples/subscribers.csv")
# The invitation moment of the 26 February 2025 session: 14 days before, 09:00 Berlin time.
DEMO_NOW = EXAMPLE_NOW


@app.command()
def demo(
    now: Annotated[
        str, typer.Option(help="Run as of this moment (ISO 8601 with offset).")
    ] = DEMO_NOW,
    plan: Annotated[
        Path | None,
        typer.Option(help=f"Plan file (default: {DEMO_PLAN}, else the one shipped with it)."),
    ] = None,
    subscribers: Annotated[
        Path | None,
        typer.Option(help=f"Example subscribers, CSV (default: {DEMO_SUBSCRIBERS}, else shipped)."),
    ] = None,
    env_file: EnvFile = Path(".env.demo"),
) -> None:
    """Run the whole job once on embedded defaults: Zoom sandbox, SQLite in ./var, Maildir outbox."""
    from session_bot.cli.demo import demo_file, run_demo

    try:
        settings = load(env_file)
        run_demo(
            settings,
            plan or demo_file(DEMO_PLAN),
            subscribers or demo_file(DEMO_SUBSCRIBERS),
            parse_now(now) or dt.datetime.fromisoformat(DEMO_NOW),
        )
    except SessionBotError as err:
        fail(err)


@app.command()
def run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="List due actions; change nothing.")
    ] = False,
    now: Annotated[str | None, typer.Option(help="Pretend it is this moment (testing).")] = None,
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Do now whatever is due (the same reconcile the daemon runs)."""
    from session_bot import wiring

    try:
        settings = load(env_file)
        the_plan = load_plan(settings, plan)
        clock = clock_at(parse_now(now))
        store = wiring.open_store(settings, purpose="look" if dry_run else "live")
        if dry_run:
            # Read-only: no Zoom client, no transport, nothing written.
            from session_bot.app.runner import state_from_store
            from session_bot.core.timeline import due_actions

            actions = due_actions(clock(), the_plan, state_from_store(store))
            lines = [a.describe() for a in actions]
            lines += [
                f"resume mailing {m.id} ({m.kind} {m.session_key})" for m in store.mailings.open()
            ]
            from session_bot.app.pending import PendingDesk

            lines += [
                f"waiting for you: {c.kind} for {c.key} (`session-bot updates send "
                f"{c.occurrence.date}` or `dismiss`)"
                for c in PendingDesk(store, clock, lambda: the_plan).pending()
            ]
            for line in lines or ["nothing is due"]:
                typer.echo(line)
            return
        from session_bot.cli.run_now import run_now

        code = run_now(settings, the_plan, store, clock, "manual")
    except SessionBotError as err:
        fail(err)
    raise typer.Exit(code)


@app.command()
def deliver(
    workers: Annotated[int, typer.Option(help="Parallel worker processes on this machine.")] = 1,
    part: Annotated[bool, typer.Option("--part", hidden=True)] = False,
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Send what open mailings still owe (no Zoom, no new mailings); several workers may share it."""
    from session_bot.cli.workers import deliver_open_mailings, run_workers, worker_name

    try:
        settings = load(env_file)
        plan_path = plan or settings.plan
        if workers > 1:
            raise typer.Exit(run_workers(workers, plan_path, env_file, typer.echo))
        report = deliver_open_mailings(
            settings, load_plan(settings, plan_path), worker_name(), progress=sys.stderr.isatty()
        )
        typer.echo(report.summary())
        # One of several workers (``--part``): rows in flight may be another's; the parent
        # process judges what is left once all are done.
        if report.permanent or report.stuck or (report.temporary and not part):
            for why in report.stuck:
                typer.echo(f"Not done: could not be sent: {why}", err=True)
            raise typer.Exit(1)
    except SessionBotError as err:
        fail(err)


@app.command()
def preview(
    date: Annotated[str, typer.Argument(help="Session date, YYYY-MM-DD.")],
    format: Annotated[str, typer.Option("--format", help="text | html | ics | eml")] = "text",
    kind: Annotated[
        str | None,
        typer.Option(
            help="invitation | reminder | update | cancellation "
            "(default: the invitation; of a cancelled session its cancellation)"
        ),
    ] = None,
    language: Annotated[
        str | None, typer.Option("--language", help="de | en (default: the series')")
    ] = None,
    open_: Annotated[
        bool, typer.Option("--open", help="Open it in the browser / mail app.")
    ] = False,
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Show a session's mail as recipients will see it (sample join details if no meeting yet);
    says first when the session is skipped, cancelled or waits for a topic."""
    from session_bot.cli.preview import open_preview, render_preview

    try:
        settings = load(env_file)
        out, notes = render_preview(
            settings, load_plan(settings, plan), date, format, kind, language
        )
        for note in notes:
            typer.echo(note, err=True)
        if open_:
            typer.echo(f"opened {open_preview(settings, out, format, date)}")
            return
        sys.stdout.buffer.write(out)
    except SessionBotError as err:
        fail(err)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    now: Annotated[str | None, typer.Option(help="Pretend it is this moment.")] = None,
    language: Annotated[str, typer.Option("--language", help="de | en")] = "de",
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Upcoming sessions, next actions, last run, deliveries (right after `make demo`: the demo's)."""
    from session_bot.cli import status as st

    try:
        if language not in st.DEMO_HINT:
            raise typer.BadParameter("use de or en", param_hint="--language")
        settings = load(env_file)
        settings = st.demo_instead(settings, plan, DEMO_PLAN) or settings
        demo_at = st.demo_moment(settings)  # None unless it is the demo's database
        moment = parse_now(now) or demo_at or clock_at(None)()
        data = st.collect_status(settings, load_plan(settings, plan), moment)
        if as_json:
            typer.echo(json.dumps(data, indent=2, ensure_ascii=False))
            return
        if demo_at is not None:
            typer.echo(st.demo_line(settings, language))
        typer.echo(st.format_status(data, language))
    except SessionBotError as err:
        fail(err)


@app.command()
def check(plan: PlanOpt = None, env_file: EnvFile = Path(".env")) -> None:
    """Validate settings, plan and templates; test Zoom and SMTP credentials when set."""
    from session_bot.cli.checks import run_checks

    try:
        settings = load(env_file)
        ok = run_checks(settings, plan, echo=typer.echo)
    except SessionBotError as err:
        fail(err)
    if not ok:
        raise typer.Exit(2)


@app.command()
def sandbox(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 9999,
    join_host: Annotated[str, typer.Option(help="Host of the join URLs handed out.")] = "zoom.us",
    env_file: EnvFile = Path(".env"),
) -> None:
    """Serve the bundled Zoom sandbox (OAuth at /oauth/token, API under /v2)."""
    from session_bot.sandbox.zoom import run_sandbox

    settings = load(env_file)
    run_sandbox(port=port, state_file=settings.var_dir / "zoom-sandbox.json", join_host=join_host)


def _mount_subcommands() -> None:
    from session_bot.cli import init as cli_init
    from session_bot.cli import serve as cli_daemon
    from session_bot.cli.organisers import organisers_app
    from session_bot.cli.plans import plan_app
    from session_bot.cli.subscribers import subscribers_app
    from session_bot.cli.updates import updates_app

    app.add_typer(subscribers_app, name="subscribers")
    app.add_typer(organisers_app, name="organisers")
    app.add_typer(plan_app, name="plan")
    app.add_typer(updates_app, name="updates")
    cli_daemon.register(app)
    cli_init.register(app)


_mount_subcommands()

db_app = typer.Typer(help="Database schema (Alembic migrations).", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("upgrade")
def db_upgrade(env_file: EnvFile = Path(".env")) -> None:
    """Migrate the database to this version's schema (back it up first)."""
    from session_bot.adapters.db.store import Store

    try:
        settings = load(env_file)
        store = Store(settings.resolved_database_url)
        before, head = store.schema_revision()
        store.upgrade()
        typer.echo(f"database schema: {before or 'empty'} -> {head}")
    except SessionBotError as err:
        fail(err)


@db_app.command("status")
def db_status(env_file: EnvFile = Path(".env")) -> None:
    """Show the database's schema revision and the one this version needs."""
    from session_bot.adapters.db.store import Store

    try:
        settings = load(env_file)
        current, head = Store(settings.resolved_database_url).schema_revision()
        typer.echo(f"database: {current or 'empty'}; this version needs: {head}")
        if current != head:
            raise typer.Exit(1)
    except SessionBotError as err:
        fail(err)


def main() -> None:
    app()


if __name__ == "__main__":
    main()
