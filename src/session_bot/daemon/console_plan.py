"""The plan the web pages show: the daemon's, or the revision a console save has just made,
until the daemon runs it too.

The daemon takes a new plan in its worker thread once the run in flight is over, and a mailing
held back by the provider's rate limit can take minutes. Meanwhile the organiser who has just
saved must see what she saved ("Gespeichert", the session, the changes waiting for review), not
the plan from before her edit."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from session_bot.core.errors import SessionBotError
from session_bot.core.plan import Plan
from session_bot.daemon.runs import Runs
from session_bot.plan_source import PlanSource

log = logging.getLogger("session_bot.daemon")


class ConsolePlan:
    def __init__(self, runs: Runs, source: PlanSource, reload: Callable[[str], None]) -> None:
        self.runs = runs
        self.source = source
        self.reload = reload
        self._lock = threading.Lock()
        self._saved: Plan | None = None
        self._before: Plan | None = None  # the daemon's plan when she saved

    def __call__(self) -> Plan:
        """``WebContext.plan``: the saved plan while the daemon still runs the one before."""
        with self._lock:
            current = self.runs.plan
            if self._saved is not None and current is self._before:
                return self._saved
            self._saved = self._before = None
            return current

    def saved(self) -> None:
        """``WebContext.plan_saved``: show the new revision at once, and have the daemon load
        it after the run in flight."""
        try:
            plan: Plan | None = self.source.load()
        except SessionBotError as exc:  # the worker's reload reports it, with an alert
            log.warning("the saved plan cannot be shown yet: %s", exc)
            plan = None
        with self._lock:
            self._saved, self._before = plan, (self.runs.plan if plan is not None else None)
        self.reload("plan saved in the console")
