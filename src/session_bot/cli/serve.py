"""CLI commands of the daemon side: `serve` and `send`. ``register(app)`` adds them to the app.

Only typer and the standard library are imported at the top: `session-bot --help` stays fast.
It imports nothing of the CLI but ``common`` (and, inside `serve --sandbox` without a plan, the
demo's settings from ``demo``); ``cli.main`` mounts it, never the other way round.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from session_bot.cli.common import Echo, EnvFile, PlanOpt, fail, load, wait_for_run_lock
from session_bot.core.errors import SessionBotError

if TYPE_CHECKING:
    from session_bot.core.plan import Occurrence, Plan
    from session_bot.core.timeline import SessionState
    from session_bot.plan_source import PlanSource
    from session_bot.settings import Settings

KINDS = ("invitation", "reminder")
KIND_DE = {"invitation": "Einladung", "reminder": "Erinnerung"}
WEEKDAYS_DE = ("Montag", "Dienstag", "Mittwoch", "Donnerstag", "Freitag", "Samstag", "Sonntag")
# Asked before a send to everyone: the text says whom and what; True means "send".
Confirm = Callable[[str], bool]


def _sendable(plan: Plan, date: str, kind: str, now: dt.datetime) -> Occurrence:
    from session_bot.core.errors import PlanError
    from session_bot.core.plan import find_occurrence

    if kind not in KINDS:
        raise PlanError(f"unknown kind {kind!r}; use invitation or reminder", field="--kind")
    try:
        day = dt.date.fromisoformat(date)
    except ValueError:
        raise PlanError(f"{date!r} is not a date like 2025-02-26", field="DATE") from None
    occ = find_occurrence(plan, day)
    problem = None
    if occ.skip_reason:
        problem = f"is skipped ({occ.skip_reason})"
    elif occ.cancelled:
        problem = "is cancelled in the plan"
    elif not occ.has_topic:
        problem = "has no topic yet; add `topic:` under its date in `sessions:`"
    elif now >= occ.start:
        problem = "has already started"
    if problem:
        raise PlanError(
            f"the session on {day.isoformat()} {problem}; nothing sent", file=plan.source
        )
    return occ


def send_mailing(
    settings: Settings,
    plan: Plan,
    date: str,
    kind: str,
    *,
    to: str | None,
    clock: Callable[[], dt.datetime],
    echo: Echo,
    zoom_api: tuple[str, str] | None = None,
    confirm: Confirm | None = None,
) -> int:
    """`session-bot send`: a deliberate re-send, or (``to``) one test message. Returns exit code.

    ``zoom_api`` is (api_url, oauth_url) of a Zoom sandbox; None means the configured Zoom.
    ``confirm`` is asked before a send to everyone (None: send without asking, ``--yes``).
    """
    from session_bot import wiring

    occ = _sendable(plan, date, kind, clock())
    store = wiring.open_store(settings)
    try:
        if to is not None:
            return _test_send(settings, plan, store, occ, kind, to, clock, echo)
        schedule = _schedule_note(occ, kind, clock(), store)
        if confirm is not None:
            count = store.subscribers.count("confirmed")
            people = "1 Abonnent:in" if count == 1 else f"{count} Abonnent:innen"
            if not confirm(f"Die {KIND_DE[kind]} geht an {people}{schedule}."):
                echo("Nichts gesendet.")
                return 1
        sandbox = zoom_api is not None
        api_url, oauth_url = zoom_api or (None, None)
        zoom = wiring.make_zoom(
            settings,
            store,
            clock,
            api_url=api_url,
            oauth_url=oauth_url,
            sandbox_credentials=sandbox,
        )
        runner = wiring.build_runner(settings, plan, store, zoom, clock)
        try:
            with wait_for_run_lock(settings, echo):
                sent = runner.send(occ, kind)
        finally:
            runner.transport.close()
            zoom.close()
    finally:
        store.close()
    again = "re-sent" if sent.resent else "sent"
    result = sent.delivery
    echo(
        f"{kind} for {occ.key} {again} as mailing {sent.mailing.id} (sequence {sent.sequence}) "
        f"to {sent.mailing.recipients} recipient(s): {result.sent} sent, {result.temporary} to "
        f"retry, {result.permanent} failed"
    )
    if schedule:
        echo(f"Hinweis: {schedule.removeprefix('; ')}.")
    for why in result.stuck:
        echo(f"Not done: could not be sent: {why}")
    if result.temporary:
        echo("The rest is retried by the next run; `session-bot status` shows it.")
    return 1 if result.permanent or result.temporary or result.stuck else 0


def _schedule_note(occ: Occurrence, kind: str, now: dt.datetime, store: Any) -> str:
    """What a deliberate send to everyone does to the scheduled invitation or reminder of the
    session, as "; …" to append to the question (empty: nothing scheduled is left).

    The timeline decides: a reminder sent by hand before the reminder moment leaves the
    scheduled one in place, an invitation sent after the moment serves as the reminder. So the
    scheduled mail is looked at with the store's state after this send.
    """
    from session_bot.app.runner import state_from_store
    from session_bot.core.timeline import SessionState

    st = state_from_store(store).get(occ.key, SessionState())
    notes = []
    if kind == "invitation" and "invitation" not in st.mailings and occ.invitation_at > now:
        # The same invitation, only sooner: the scheduled one is this one.
        notes.append(f"sie ersetzt die geplante Einladung {_on(occ.invitation_at, occ)}")
    when = occ.reminder_at
    # An invitation not sent yet goes at its moment; the reminder is looked at before and after.
    before = {"invitation": occ.invitation_at, **st.mailings}
    if when is not None and _reminder_due(occ, now, st, before):  # a reminder is still to come
        if _reminder_due(occ, now, st, {**before, kind: now}):
            notes.append(f"die geplante Erinnerung {_on(when, occ)} geht trotzdem hinaus")
        else:
            why = " (diese Einladung gilt als Erinnerung)" if kind == "invitation" else ""
            notes.append(f"die geplante Erinnerung {_on(when, occ)} entfällt dadurch{why}")
    return "".join(f"; {note}" for note in notes)


def _reminder_due(
    occ: Occurrence, now: dt.datetime, st: SessionState, mailings: dict[str, dt.datetime]
) -> bool:
    """Will the timeline send the scheduled reminder, given these mailings (kind → when)?"""
    from dataclasses import replace

    from session_bot.core.timeline import actions_for

    assert occ.reminder_at is not None
    state = replace(st, meeting_id=st.meeting_id or 1, mailings=mailings, announced=None)
    return any(a.kind == "reminder" for a in actions_for(occ, max(occ.reminder_at, now), state))


def _on(moment: dt.datetime, occ: Occurrence) -> str:
    local = moment.astimezone(occ.series.zone)
    return f"am {WEEKDAYS_DE[local.weekday()]}, {local:%d.%m.%Y} um {local:%H:%M} Uhr"


def ask(yes: bool) -> Confirm | None:
    """The question before a send to everyone: none with ``--yes``; at a terminal "[j/N]";
    without one (cron, a script) a refusal that names --yes."""
    from session_bot.core.errors import ConfigError

    if yes:
        return None

    def at_terminal(text: str) -> bool:
        answer = typer.prompt(f"{text} Jetzt senden? [j/N]", default="", show_default=False)
        return answer.strip().lower() in {"j", "ja", "y", "yes"}

    def refuse(text: str) -> bool:
        raise ConfigError(
            f"{text} Ohne Terminal kann session-bot nicht nachfragen: add --yes to send to "
            "everyone without asking. Nichts gesendet."
        )

    return at_terminal if sys.stdin.isatty() else refuse


def _test_send(
    settings: Settings,
    plan: Plan,
    store: Any,
    occ: Occurrence,
    kind: str,
    to: str,
    clock: Callable[[], dt.datetime],
    echo: Echo,
) -> int:
    from email.utils import make_msgid

    from session_bot import wiring
    from session_bot.cli.preview import render_session_mail
    from session_bot.core.errors import ConfigError
    from session_bot.core.recipient import Recipient

    if "@" not in to or any(c.isspace() for c in to):
        raise ConfigError(f"--to {to!r} is not an e-mail address")
    now = clock()
    rendered, meeting = render_session_mail(settings, store, occ, kind, now, test_send=True)
    domain = to.rpartition("@")[2]
    message = rendered.personalise(
        Recipient(email=to, name=None, language=occ.series.language),
        message_id=make_msgid("test", domain),
        date=now,
    )
    transport = wiring.make_transport(settings)
    try:
        result = transport.send(wiring.envelope_sender(settings, plan), to, message)
    finally:
        transport.close()
    if result.outcome != "sent":
        echo(f"test {kind} to {to} not sent: {result.code} {result.response}")
        return 1
    sample = "" if meeting else " with sample join details (no meeting yet)"
    echo(f"test {kind} for {occ.key}{sample} sent to {to} via {transport.description}")
    return 0


def _try_out(settings: Settings, missing: Path) -> tuple[Settings, PlanSource]:
    """`serve --sandbox` without a plan is for trying it out: the demo's plan, folder and
    Maildir outbox (never SMTP: the demo's subscribers are examples). The plan lives in the
    demo's database, so the console can edit it."""
    from session_bot import plan_source, wiring
    from session_bot.cli.demo import demo_file, demo_settings, import_demo_plan

    plan_path = demo_file(Path("examples/willkommen.yaml"))  # as `session-bot demo`
    if settings.var_dir.name != "demo":
        settings = demo_settings(settings)
    settings = settings.model_copy(update={"smtp_host": None})
    # Marked as the demo's (or refused if it holds live data), as the demo itself does.
    store = wiring.open_store(settings, migrate=True, purpose="demo")
    try:
        import_demo_plan(store, plan_path)
    finally:
        store.close()
    logging.getLogger("session_bot.daemon").warning(
        "no plan at %s: --sandbox runs the demo's plan %s in the demo's folder %s, mail to its "
        "outbox %s — for trying it out (`session-bot init` writes a plan of your own)",
        missing,
        plan_path,
        settings.var_dir,
        settings.resolved_outbox,
    )
    return settings, plan_source.DatabasePlan(settings)


# --- registration -----------------------------------------------------------------------------


def _registered(app: typer.Typer, name: str) -> bool:
    return any(
        (c.name or getattr(c.callback, "__name__", "")) == name for c in app.registered_commands
    )


def register(app: typer.Typer) -> None:
    """Add `serve` and `send` to the session-bot app (once; calling it again changes nothing)."""
    if _registered(app, "serve"):
        return

    @app.command()
    def serve(
        host: Annotated[
            str | None, typer.Option(help="Listen address (default SESSION_BOT_HOST, 127.0.0.1).")
        ] = None,
        port: Annotated[
            int | None, typer.Option(help="Port (default SESSION_BOT_PORT, 8080; 0: any free).")
        ] = None,
        sandbox: Annotated[
            bool,
            typer.Option(
                "--sandbox",
                help="Use the bundled Zoom sandbox (and the Maildir outbox unless SMTP is set).",
            ),
        ] = False,
        log_format: Annotated[
            str | None, typer.Option("--log-format", help="text | json (journald, Loki).")
        ] = None,
        plan_check: Annotated[
            float, typer.Option("--plan-check", help="Seconds between checks of the plan file.")
        ] = 30.0,
        plan: PlanOpt = None,
        env_file: EnvFile = Path(".env"),
    ) -> None:
        """Run the daemon: scheduled runs, web pages, admin API. SIGHUP reloads the plan."""
        try:
            settings = load(env_file, log_format=log_format)
            from session_bot import plan_source
            from session_bot.adapters.clock import system_clock
            from session_bot.daemon.service import serve as serve_daemon

            source = plan_source.choose(settings, plan)
            if sandbox and plan is None and source.file is not None and not source.file.exists():
                settings, source = _try_out(settings, source.file)
            code = serve_daemon(
                settings,
                plan_source=source,
                clock=system_clock,
                sandbox=sandbox,
                host=host,
                port=port,
                plan_check_seconds=plan_check,
            )
        except SessionBotError as err:
            fail(err)
        raise typer.Exit(code)

    @app.command()
    def send(
        date: Annotated[str, typer.Argument(help="Session date, YYYY-MM-DD.")],
        kind: Annotated[str, typer.Option("--kind", help="invitation | reminder")],
        to: Annotated[
            str | None,
            typer.Option("--to", help="Send one test message ([TEST] in the subject) to ADDRESS."),
        ] = None,
        sandbox: Annotated[
            bool, typer.Option("--sandbox", help="Use the bundled Zoom sandbox.")
        ] = False,
        yes: Annotated[
            bool, typer.Option("--yes", "-y", help="Send to everyone without asking (scripts).")
        ] = False,
        plan: PlanOpt = None,
        env_file: EnvFile = Path(".env"),
    ) -> None:
        """Send a session's invitation or reminder again to all subscribers, now (or one test).

        Without --to it asks first (at a terminal) and names the scheduled mail it replaces."""
        try:
            settings = load(env_file)
            from session_bot import plan_source
            from session_bot.adapters.clock import system_clock

            the_plan = plan_source.load(settings, plan)
            if sandbox and to is None:
                from session_bot import wiring
                from session_bot.sandbox.zoom import ZoomSandbox

                state = wiring.var_path(settings, "zoom-sandbox.json")
                with ZoomSandbox(state_file=state) as sb:
                    code = send_mailing(
                        settings, the_plan, date, kind, to=None, clock=system_clock,
                        echo=typer.echo, zoom_api=(sb.api_url, sb.oauth_url), confirm=ask(yes),
                    )  # fmt: skip
            else:
                code = send_mailing(
                    settings, the_plan, date, kind, to=to, clock=system_clock, echo=typer.echo,
                    confirm=ask(yes),
                )  # fmt: skip
        except SessionBotError as err:
            fail(err)
        raise typer.Exit(code)
