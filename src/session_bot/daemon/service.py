"""`session-bot serve`: the reconcile loop on a schedule, the web app, signals, one instance.

``Daemon`` composes the parts and owns their order of start and stop:

- ``lifecycle``: the single-instance file lock (SQLite), the backends (store, Zoom or sandbox,
  mail), the listening socket, the web thread and the signals;
- ``jobs``: the scheduler with its jobs (next due, hourly safety tick, plan file check/reload);
- ``roles``: leader or standby, the switches between them and the pick-up of run requests;
- ``runs``: the reconcile under the run lock, and the web app's run trigger.

One instance acts. On SQLite a file lock next to the database refuses a second `serve`. On
PostgreSQL every `serve` starts as a standby (web pages and /healthz, no runs) and the one that
wins the leader lock (``leader.Leadership``) schedules and runs; when the leader dies a standby
wins the lock, runs the reconcile at once (which drains the open mailing where it stopped) and
schedules from then on. A leader that loses its lock's connection stops acting and stands by.

A confirmation (late invitation) or a Zoom webhook reaching a standby asks for a run it may not
do: it leaves a ``leader.RunRequest`` in the store and answers at once. The leader looks for one
at every check of its lock (every ``Timing.poll`` seconds) and after every run, and runs the
reconcile as a ``requested`` job in the scheduler's worker thread, under the same mutex and run
lock as every other run. Every run takes (reads and clears) the pending request before it reads
any state, so a request is answered by the first run that starts after it: the takeover run of
a new leader too. The leader's own confirmation that finds a run in progress leaves a request
the same way, instead of waiting for the lock in a web thread.

Year-long schedules are tested by driving ``Runner.run`` at every ``next_due`` directly.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import gc
import logging
import os
import socket
import threading
from pathlib import Path
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.adapters.db.advisory import Instance, is_postgresql
from session_bot.adapters.db.leadership import Leadership
from session_bot.adapters.db.store import Store
from session_bot.core.clock import Clock
from session_bot.core.plan import Plan
from session_bot.daemon.console_plan import ConsolePlan
from session_bot.daemon.jobs import PLAN_CHECK_SECONDS, TICK_SECONDS, Jobs
from session_bot.daemon.lifecycle import (
    STOP_GRACE_SECONDS,
    Backends,
    Signals,
    WebThread,
    acquire_daemon_lock,
    listen_socket,
    open_backends,
)
from session_bot.daemon.roles import Role, Roles
from session_bot.daemon.runs import Runs, report_dict
from session_bot.plan_source import FilePlan, PlanSource
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from session_bot.wiring import make_alerter

__all__ = ["Daemon", "report_dict", "serve"]  # report_dict: for tests/test_web_admin.py

log = logging.getLogger("session_bot.daemon")


class Daemon:
    """The long-running process behind `session-bot serve`."""

    def __init__(
        self,
        settings: Settings,
        *,
        plan_path: Path | None = None,
        plan_source: PlanSource | None = None,
        clock: Clock,
        sandbox: bool = False,
        host: str | None = None,
        port: int | None = None,
        tick_seconds: float = TICK_SECONDS,
        plan_check_seconds: float = PLAN_CHECK_SECONDS,
        stop_grace: float = STOP_GRACE_SECONDS,
        wall: Clock = system_clock,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.wall = wall
        self.sandbox_mode = sandbox
        self.host = host or settings.host
        self.port = settings.port if port is None else port
        self.tick_seconds = tick_seconds
        self.plan_check_seconds = plan_check_seconds
        self.stop_grace = stop_grace
        if plan_source is None:
            assert plan_path is not None, "a plan file or a plan source"
            plan_source = FilePlan(plan_path)
        self.plan_file = plan_source
        self.stopping = threading.Event()
        shared = is_postgresql(settings.resolved_database_url)
        self.role = Role(shared=shared, wall=wall, stopping=self.stopping)
        self.sandbox: ZoomSandbox | None = None
        self._stack = contextlib.ExitStack()
        self._web = WebThread()
        # Built by start():
        self._runs: Runs | None = None
        self._jobs: Jobs | None = None
        self._roles: Roles | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Take the instance lock, build everything, start web and scheduler; raise on problems."""
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> None:
        settings, role, stack = self.settings, self.role, self._stack
        if not role.shared:
            since = role.instance.since or self.wall()
            note = f"on {role.instance.host} since {since.isoformat(timespec='seconds')}"
            stack.callback(acquire_daemon_lock(settings, note).release)
        stack.callback(self.plan_file.close)
        plan = self.plan_file.load()
        self.plan_file.remember()
        backends = open_backends(
            settings,
            clock=self.clock,
            sandbox=self.sandbox_mode,
            shared=role.shared,
            halted=role.halted,
            stack=stack,
        )
        self.sandbox = backends.sandbox
        runs = self._runs = self._build_runs(plan, backends)
        self._start_web(listen_socket(self.host, self.port), runs)
        jobs = self._jobs = Jobs(
            runs,
            role,
            self.plan_file,
            clock=self.clock,
            wall=self.wall,
            tick_seconds=self.tick_seconds,
            plan_check_seconds=self.plan_check_seconds,
        )
        roles = self._roles = Roles(role, jobs=jobs, runs=runs)
        runs.reschedule = jobs.schedule_next
        runs.pick_up_request = roles.pick_up_request
        jobs.start()
        roles.start(settings, stack)
        # What start-up built (modules, templates, the app, the engine) lives as long as the
        # process: out of the collector's sight, a full collection no longer walks all of it
        # (it stopped a busy POST /subscribe for tens of milliseconds: p99 ≈ 120 → 30 ms in
        # bench/web.py, issue 18). Its garbage is collected first, not kept for good.
        gc.collect()
        gc.freeze()
        log.info(
            "daemon started (pid %s, %s): plan %s, database %s, %s, mail via %s, web %s",
            os.getpid(),
            role.instance.role,
            self.plan_file.where,
            backends.store.engine.url.render_as_string(hide_password=True),
            backends.zoom_description,
            backends.transport.description,
            self.web_url,
        )

    def _build_runs(self, plan: Plan, backends: Backends) -> Runs:
        store, transport = backends.store, backends.transport
        return Runs(
            self.settings,
            plan=plan,
            store=store,
            zoom=backends.zoom,
            transport=transport,
            alerter=make_alerter(self.settings, plan, store, transport, self.clock),
            clock=self.clock,
            role=self.role,
        )

    def _start_web(self, sock: socket.socket, runs: Runs) -> None:
        from session_bot.web.deps import WebContext

        settings = self.settings
        # The jobs start after the web: look them up at the save.
        shown = ConsolePlan(runs, self.plan_file, lambda why: self.jobs.reload_soon(why))
        ctx = WebContext(
            settings=settings,
            store=runs.store,
            clock=self.clock,
            plan=shown,
            # A fresh transport per use: the runner's SMTP connection belongs to its thread.
            transport=lambda: wiring.make_transport(settings),
            secret_key=wiring.secret_key(settings),
            trigger_run=runs.admin_run,
            role=self.role.instance.role,
            problems=self._problems,
            plan_file=self.plan_file.file,
            plan_saved=shown.saved,
        )
        self.role.web = ctx
        self._web.start(ctx, sock, instance=functools.partial(self.role.info, runs.store))
        self._stack.callback(self._web.stop)

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the plan. Returns the exit code."""
        signals = Signals(on_stop=self.begin_stop)
        with signals.installed():
            self.start()
            signals.wait_for_stop(reload=lambda: self.jobs.reload_soon("SIGHUP"))
            finished = self.stop()
        if not finished:
            # A Zoom call or SMTP server that hangs must not keep systemd waiting; every
            # delivery row's state is in the store already.
            logging.shutdown()
            os._exit(0)
        return 0

    def begin_stop(self) -> None:
        """What SIGTERM does first: no new messages go out from now on (the one in flight does)."""
        self.stopping.set()
        if self._runs is not None:
            self._runs.halt()

    def stop(self) -> bool:
        """Stop new work, wait for the run in flight (bounded), then close everything.

        Returns False if the run in flight did not finish within the grace period.
        """
        self.begin_stop()
        if self._jobs is not None:
            self._jobs.shutdown()
        finished = self._runs is None or self._runs.wait_idle(self.stop_grace)
        if not finished:
            log.warning("the run in flight did not finish within %.0f s", self.stop_grace)
        if finished:
            self._stack.close()  # web, transport, Zoom, sandbox, store, lock: in reverse order
        else:
            self._web.stop()
        log.info("daemon stopped")
        return finished

    # --- the parts, once started ---------------------------------------------------------------
    @property
    def runs(self) -> Runs:
        assert self._runs is not None, "the daemon has not started"
        return self._runs

    @property
    def jobs(self) -> Jobs:
        assert self._jobs is not None, "the daemon has not started"
        return self._jobs

    @property
    def store(self) -> Store:
        return self.runs.store

    @property
    def plan(self) -> Plan:
        return self.runs.plan

    @property
    def scheduler(self) -> BackgroundScheduler | None:
        return self._jobs.scheduler if self._jobs is not None else None

    @property
    def scheduled(self) -> dt.datetime | None:
        """The moment the next-due job fires (None: nothing planned)."""
        return self._jobs.scheduled if self._jobs is not None else None

    @property
    def leadership(self) -> Leadership | None:
        return self._roles.leadership if self._roles is not None else None

    @property
    def web_url(self) -> str:
        return self._web.url

    @property
    def shared(self) -> bool:
        return self.role.shared

    @property
    def instance(self) -> Instance:
        return self.role.instance

    @property
    def leads(self) -> bool:
        return self.role.leads

    def halted(self) -> bool:
        """No new delivery claims: shutting down, or no longer the leader."""
        return self.role.halted()

    def instance_info(self) -> dict[str, Any]:
        return self.role.info(self.store)

    def run_once(
        self, trigger: str, *, lock_timeout: float | None = None, raise_busy: bool = False
    ) -> dict[str, Any]:
        return self.runs.run_once(trigger, lock_timeout=lock_timeout, raise_busy=raise_busy)

    def admin_run(self, trigger: str) -> dict[str, Any]:
        return self.runs.admin_run(trigger)

    def request_run(self, trigger: str) -> dict[str, Any]:
        return self.runs.request_run(trigger)

    def _problems(self) -> list[str]:
        """What /healthz must report: the plan on disk is not in force, the database failed."""
        found = [self._jobs.plan_problem if self._jobs is not None else None]
        found.append(self._runs.store_problem if self._runs is not None else None)
        return [p for p in found if p]

    def reload_plan(self, reason: str) -> bool:
        return self.jobs.reload_plan(reason)


def serve(
    settings: Settings,
    *,
    plan_source: PlanSource,
    clock: Clock,
    sandbox: bool = False,
    host: str | None = None,
    port: int | None = None,
    plan_check_seconds: float = PLAN_CHECK_SECONDS,
) -> int:
    """`session-bot serve`: blocks until stopped; returns the exit code."""
    daemon = Daemon(
        settings,
        plan_source=plan_source,
        clock=clock,
        sandbox=sandbox,
        host=host,
        port=port,
        plan_check_seconds=plan_check_seconds,
    )
    return daemon.serve()
