"""One reconcile run from the command line (`run`, `updates send`), under the run lock."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from session_bot.cli.common import wait_for_run_lock

if TYPE_CHECKING:
    import datetime as dt

    from session_bot.adapters.db.store import Store
    from session_bot.core.plan import Plan
    from session_bot.settings import Settings


def run_now(
    settings: Settings, plan: Plan, store: Store, clock: Callable[[], dt.datetime], trigger: str
) -> int:
    """Run now; 0 when everything due was done, 1 when mail is left (the reasons on stderr)."""
    from session_bot import wiring

    zoom = wiring.make_zoom(settings, store, clock)
    runner = wiring.build_runner(settings, plan, store, zoom, clock, progress=sys.stderr.isatty())
    alerter = wiring.make_alerter(settings, plan, store, runner.transport, clock)
    runner.on_hold, runner.on_alert = alerter, alerter.notice
    with wait_for_run_lock(settings, typer.echo):
        report = runner.run(trigger)
    typer.echo(report.summary())
    if report.outcome == "ok":
        return 0
    # Mail left undelivered is not success: say so, and let a script see it.
    for line in report.problems:
        typer.echo(f"Not done: {line}", err=True)
    typer.echo("`session-bot status` shows what is waiting.", err=True)
    return 1
