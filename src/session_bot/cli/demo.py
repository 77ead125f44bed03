"""`session-bot demo`: the whole monthly job once, on embedded defaults, with a readable summary."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

import typer

from session_bot import wiring
from session_bot.adapters.clock import ShiftedClock, system_clock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.adapters.zoom import Meeting
from session_bot.app.plan_book import PlanBook, Who
from session_bot.cli.common import shipped
from session_bot.core.errors import SubscriberImportError
from session_bot.core.plan import load_plan
from session_bot.core.timeline import upcoming
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings

SEED_MEETING = {"id": 66547677759, "password": "717531", "dial_in": "+496950500952"}
SEED_JOIN_HOST = "bertelsmann-stiftung-de.zoom.us"


def seed_subscribers(store: Store, path: Path, now: dt.datetime) -> int:
    """Add the example subscribers once (as confirmed imports, with the file as consent source)."""
    if store.subscribers.count() or not path.exists():
        return 0
    try:
        rows = list(
            csv.DictReader(path.read_text(encoding="utf-8-sig").splitlines(), delimiter=";")
        )
    except (OSError, csv.Error) as exc:
        raise SubscriberImportError(f"{path}: cannot read example subscribers ({exc})") from None
    for row in rows:
        store.subscribers.add(
            row["email"].strip(),
            name=(row.get("name") or "").strip() or None,
            language=(row.get("language") or "de").strip(),
            status="confirmed",
            now=now,
            confirmed_at=now,
            import_file=str(path),
            imported_by="session-bot demo",
        )
    return len(rows)


def demo_file(path: Path) -> Path:
    """``examples/…`` in the current folder (a checkout), else the copy shipped with session-bot."""
    return path if path.exists() else shipped(path.name)


def demo_settings(settings: Settings) -> Settings:
    """The demo's own folder (``<var_dir>/demo``) with its own SQLite database and outbox: never
    a database or outbox of a live installation, whatever the environment says."""
    return settings.model_copy(
        update={"var_dir": settings.var_dir / "demo", "database_url": "", "outbox": None}
    )


def import_demo_plan(store: Store, plan_path: Path) -> None:
    """The demo's plan as the first revision of its database's plan, so that the console (over
    the demo's folder) can edit it; an edited one is kept."""
    if store.plans.latest_id() is None:
        text = plan_path.read_text(encoding="utf-8")
        PlanBook(store, system_clock).import_text(text, Who("demo"), name=str(plan_path))


def run_demo(settings: Settings, plan_path: Path, subscribers_csv: Path, now: dt.datetime) -> None:
    plan = load_plan(plan_path)
    settings = demo_settings(settings)
    store = wiring.open_store(settings, migrate=True, purpose="demo")
    import_demo_plan(store, plan_path)
    clock = ShiftedClock(now)
    added = seed_subscribers(store, subscribers_csv, clock())
    if added:
        typer.echo(f"Added {added} example subscribers from {subscribers_csv}.")
    outbox = settings.resolved_outbox
    with ZoomSandbox(
        state_file=wiring.var_path(settings, "zoom-sandbox.json"),
        join_host=SEED_JOIN_HOST,
        clock=clock,  # the sandbox must live at the demo's moment, or 2025 would be the past
    ) as sandbox:
        sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
        zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
        runner = wiring.build_runner(
            settings, plan, store, zoom, clock, transport=MaildirTransport(outbox)
        )
        typer.echo(
            f"Running as of {now.isoformat()} with the Zoom sandbox at {sandbox.base_url}, "
            f"database {settings.database_display}, outbox {outbox}."
        )
        with wiring.run_lock(settings).acquire(timeout=settings.lock_timeout):
            report = runner.run("demo")
        zoom.close()
    typer.echo("")
    nxt = [o for o in upcoming(clock(), plan, 60) if not o.skip_reason]
    for occ in nxt[:1]:
        row = store.sessions.get(occ.key)
        meeting = Meeting.from_json(row.meeting_json) if row and row.meeting_json else None
        sent = store.mailings.delivery_counts()
        typer.echo(f"Session:    {occ.start:%A %d %B %Y, %H:%M} ({occ.series.timezone})")
        typer.echo(f"Topic:      {occ.content.topic_one_line if occ.content else '(none yet)'}")
        if meeting:
            typer.echo(f"Join URL:   {meeting.join_url}")
            typer.echo(f"Meeting:    {meeting.display_id}, passcode {meeting.password}")
        typer.echo(f"Recipients: {sent.get('sent', 0)} delivered in total")
    typer.echo(
        f"Outbox:     {outbox.resolve()} ({sum(1 for _ in (outbox / 'new').iterdir())} messages)"
    )
    typer.echo("")
    if report.nothing_to_do:
        typer.echo(
            "Nothing to do: the meeting already exists and every invitation was already delivered "
            "— no second meeting, nothing sent twice."
        )
    else:
        typer.echo(f"This run: {report.summary()}.")
    if report.held:
        typer.echo("Held: " + "; ".join(report.held))
