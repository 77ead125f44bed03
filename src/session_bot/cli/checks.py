"""`session-bot check`: everything that can be verified before anything is sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.core.errors import SessionBotError
from session_bot.core.plan import load_plan, occurrences
from session_bot.core.timeline import upcoming
from session_bot.settings import Settings


def run_checks(settings: Settings, plan_path: Path | None, echo: Callable[[str], None]) -> bool:
    ok = True
    now = system_clock()
    plan = load_plan(plan_path or settings.plan)
    echo(f"ok   plan {plan.source}: {len(plan.series)} series")
    occs = [o for o in upcoming(now, plan, 400) if not o.skip_reason]
    if not occs:
        echo("note the plan has no upcoming session; templates are checked against its last ones")
        occs = [
            o
            for series in plan.series
            for o in list(occurrences(series, series.starts_on, now.date()))[-3:]
            if not o.skip_reason
        ]
    for series in plan.series:
        problems = wiring.renderer_factory(settings)(series).check(
            [o for o in occs if o.series.id == series.id], now
        )
        for p in problems:
            echo(f"FAIL template {p}")
            ok = False
    if ok:
        echo(f"ok   templates render for {len(occs)} upcoming session(s)")
    if settings.zoom_configured:
        store = wiring.open_store(settings, purpose="look")
        try:
            zoom = wiring.make_zoom(settings, store, system_clock)
            user = zoom.check()
            echo(f"ok   Zoom: token and host user {user.get('email', settings.zoom_user)}")
        except SessionBotError as exc:
            echo(f"FAIL Zoom: {exc}")
            ok = False
    else:
        echo(
            "note Zoom: no credentials set; `run`/`serve` refuse until they are (demo uses the sandbox)"
        )
    if settings.smtp_configured:
        transport = wiring.make_transport(settings)
        try:
            transport.check()
            echo(f"ok   SMTP: {transport.description}")
        except SessionBotError as exc:
            echo(f"FAIL SMTP: {exc}")
            ok = False
        finally:
            transport.close()
    else:
        echo(f"note mail goes to the Maildir outbox {settings.resolved_outbox}")
    _ = dt
    return ok
