"""The reconcile runs of the daemon: one at a time, each under the run lock.

A run may start from a job of the scheduler's worker thread or from a web thread (POST
/admin/run, a confirmation, a Zoom webhook); the mutex keeps them, and plan reloads, apart.
Every run first takes (reads and clears) the pending run request, so a request is answered by
the first run that starts after it. A web thread that cannot run here and now leaves a request.
"""

from __future__ import annotations

import datetime as dt
import logging
import socket
import threading
from collections.abc import Callable
from typing import Any

from session_bot import wiring
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import Transport
from session_bot.adapters.zoom import ZoomClient
from session_bot.app.alerts import Alerter
from session_bot.app.run_requests import RUN_REQUEST_KEY, RunRequest
from session_bot.app.runner import Runner, RunReport
from session_bot.core.clock import Clock
from session_bot.core.errors import LockBusy, SessionBotError, StoreError
from session_bot.core.plan import Plan
from session_bot.daemon.roles import REQUESTED, Role
from session_bot.settings import Settings

log = logging.getLogger("session_bot.daemon")

# The delivery worker of whoever leads on PostgreSQL: one name for all hosts, so a new leader
# resumes at once the rows its dead predecessor left in `sending` (holding the leader lock
# proves that predecessor is gone) instead of waiting for them to go stale.
LEADER_WORKER = "daemon@leader"


def report_dict(report: RunReport) -> dict[str, Any]:
    return {
        "ok": report.outcome == "ok",
        "outcome": report.outcome,
        "problems": report.problems,
        "trigger": report.trigger,
        "started_at": report.started_at.isoformat(),
        "summary": report.summary(),
        "done": report.done,
        "held": report.held,
        "meetings_created": report.meetings_created,
        "mailings_frozen": report.mailings_frozen,
        "sent": report.delivery.sent,
        "temporary": report.delivery.temporary,
        "failed": report.delivery.permanent,
        "counts": report.counts(),
    }


def _nothing() -> None:
    return None


class Runs:
    """The runner of the current plan, and every way a reconcile run starts or is asked for."""

    def __init__(
        self,
        settings: Settings,
        *,
        plan: Plan,
        store: Store,
        zoom: ZoomClient,
        transport: Transport,
        alerter: Alerter,
        clock: Clock,
        role: Role,
    ) -> None:
        self.settings = settings
        self.store = store
        self.zoom = zoom
        self.transport = transport
        self.alerter = alerter
        self.clock = clock
        self.role = role
        self._mutex = threading.Lock()  # one run or reload at a time inside this process
        self._run_stop = threading.Event()  # the current run's delivery stop (see _build_runner)
        self.retry_at: dt.datetime | None = None  # deliveries waiting for a retry
        self.store_problem: str | None = None  # the last run failed in the database (healthz)
        # Wired by the daemon once its jobs and roles exist: after every run the next-due job is
        # placed again, then a request that came in meanwhile is picked up (also after a request
        # this leader leaves itself). Until then there is nothing to schedule.
        self.reschedule: Callable[[], None] = _nothing
        self.pick_up_request: Callable[[], None] = _nothing
        self.plan = plan
        self.runner = self._build_runner(plan)

    def _build_runner(self, plan: Plan) -> Runner:
        runner = wiring.build_runner(
            self.settings, plan, self.store, self.zoom, self.clock, transport=self.transport
        )
        runner.on_hold = self.alerter
        runner.on_alert = self.alerter.notice
        # SIGTERM or a lost leadership: every connection finishes the message it is sending,
        # the rest stays pending. One event per run (``_run_locked``): delivery also sets it
        # itself when it fails, which must end that run only, not mark the daemon as stopping.
        runner.stop = self._run_stop
        # A stable name: after a restart the daemon resumes its own unfinished claims at once.
        runner.worker = LEADER_WORKER if self.role.shared else f"daemon@{socket.gethostname()}"
        return runner

    def use_plan(self, plan: Plan) -> None:
        """From the next run on, run ``plan`` (waits for the run in progress)."""
        with self._mutex:
            self.plan = plan
            self.alerter.plan_source = plan.source
            self.alerter.zone = plan.series[0].zone
            self.alerter.organiser = plan.series[0].organiser.email
            self.runner = self._build_runner(plan)

    @property
    def busy(self) -> bool:
        """A run (or a plan reload) is in progress."""
        return self._mutex.locked()

    def halt(self) -> None:
        """The run in progress sends no new message (the one in flight finishes)."""
        self._run_stop.set()

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds for the run in progress; False if it did not end."""
        if not self._mutex.acquire(timeout=timeout):
            return False
        self._mutex.release()
        return True

    def run_once(
        self, trigger: str, *, lock_timeout: float | None = None, raise_busy: bool = False
    ) -> dict[str, Any]:
        """One reconcile under the run lock; never raises for user-fixable problems."""
        timeout = self.settings.lock_timeout if lock_timeout is None else lock_timeout
        role = self.role
        if not role.leads:
            err = LockBusy(role.standby_message(self.store))
            if raise_busy:
                raise err
            return {"ok": False, "error": str(err)}
        if not self._mutex.acquire(timeout=timeout):
            err = LockBusy(f"a run is already in progress in this daemon; waited {timeout:.0f} s")
            if raise_busy:
                raise err
            return {"ok": False, "error": str(err)}
        try:
            if role.stopping.is_set():
                return {"ok": False, "error": "the daemon is stopping"}
            if not role.leads:
                return {"ok": False, "error": role.standby_message(self.store)}
            return self._run_locked(trigger, timeout, raise_busy)
        finally:
            self._mutex.release()
            self.reschedule()
            self.pick_up_request()  # a request that came in during the run

    def _run_locked(self, trigger: str, timeout: float, raise_busy: bool) -> dict[str, Any]:
        runner = self.runner
        self._run_stop = runner.stop = threading.Event()
        # SIGTERM or a lost leadership just before the new event was in place:
        if self.role.halted():
            self._run_stop.set()
        try:
            with wiring.run_lock(self.settings).acquire(timeout=timeout):
                answering = self._take_request(trigger)
                if answering is None:
                    return {"ok": True, "trigger": trigger, "summary": "answered by an earlier run"}
                trigger = answering
                try:
                    report = runner.run(trigger)
                finally:
                    # Hours may pass until the next run: no idle SMTP connection to go stale.
                    self.transport.close()
        except LockBusy as exc:
            log.warning("run (%s) skipped: %s", trigger, exc)
            if raise_busy:
                raise
            return {"ok": False, "error": str(exc)}
        except StoreError as exc:
            log.error("run (%s) failed: %s", trigger, exc)
            self.store_problem = f"the database refused the last run: {exc}"
            self.alerter.run_failed(exc, self.clock(), runner.plan)
            return {"ok": False, "error": str(exc)}
        except SessionBotError as exc:
            log.error("run (%s) failed: %s", trigger, exc)
            self.alerter.run_failed(exc, self.clock(), runner.plan)
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            # The daemon's outermost boundary: a bug in one run must not end the schedule.
            log.exception("run (%s) crashed", trigger)
            self.alerter.run_failed(exc, self.clock(), runner.plan)
            return {"ok": False, "error": f"internal error ({type(exc).__name__}); see the log"}
        self.retry_at = report.delivery.next_attempt_at
        self.store_problem = None
        return report_dict(report)

    def _take_request(self, trigger: str) -> str | None:
        """Before a run reads any state: this run answers the pending request (if any).

        Returns the trigger to run under: the request's own for a `requested` job, which gets
        None when an earlier run has answered its request already.
        """
        raw = self.store.kv.take(RUN_REQUEST_KEY)
        if raw is None:
            return None if trigger == REQUESTED else trigger
        request = RunRequest.decode(raw)
        asked = f"{request.by} ({request.reason} at {request.at.isoformat(timespec='seconds')})"
        if trigger == REQUESTED:
            log.info("run requested by %s: running the reconcile now", asked)
            return request.reason[:20]  # runs.trigger is a String(20)
        log.info("run (%s) also answers the run request of %s", trigger, asked)
        return trigger

    def admin_run(self, trigger: str) -> dict[str, Any]:
        """The web app's trigger: a run now. For POST /admin/run a busy lock raises LockBusy
        (answered 409). A confirmation's or webhook's run that cannot start here and now (this
        is a standby, or a run is in progress that may have read the state before this request)
        becomes a run request, which the leader answers within seconds."""
        if trigger == "admin":
            return self.run_once(trigger, raise_busy=True)
        if self.role.leads and not self._mutex.locked():
            try:
                return self.run_once(trigger, raise_busy=True)
            except LockBusy:
                pass  # lost the leadership meanwhile, or the run lock stayed busy
        return self.request_run(trigger)

    def request_run(self, trigger: str) -> dict[str, Any]:
        """Leave a run request for the leader (``leader.RunRequest``) and return at once."""
        me = self.role.instance
        request = RunRequest(trigger, f"{me.role} pid {me.pid} on {me.host}", self.clock())
        try:
            self.store.kv.replace(RUN_REQUEST_KEY, request.encode())
        except StoreError as exc:
            log.error(
                "run (%s) could not be requested (%s); the next scheduled run does its work",
                trigger,
                exc,
            )
            return {"ok": False, "error": "the database did not take the run request"}
        if self.role.leads:
            log.info(
                "run (%s) requested: this leader is busy; a run follows when it is free", trigger
            )
            self.pick_up_request()  # the run may have ended meanwhile
        else:
            log.info("run (%s) requested from the leader: this instance is a standby", trigger)
        return {"ok": True, "trigger": trigger, "requested": request.as_dict()}
