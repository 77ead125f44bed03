"""`session-bot serve`: the reconcile loop on a schedule, the web app, signals, one instance.

Jobs are rebuilt from the plan, never stored: one job at ``timeline.next_due`` (rescheduled after
every run), an hourly safety tick (retries, missed moments, a clock that jumped), and a cheap
check of the plan file's mtime/size/hash. All jobs run in one worker thread, so a run, a plan
reload and the next run never overlap; the web thread's admin run waits for the same mutex.

Signals: SIGHUP reloads the plan and rebuilds the jobs; SIGTERM/SIGINT stop taking new work,
let the message in flight finish (the rest of a mailing stays pending in the store and goes out
right after the restart) and exit 0 within seconds.

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

The scheduler runs on wall time (``wall``); ``clock`` is what the runner and the web app see. They
are the same outside tests; a test clock is mapped onto wall time by its offset when scheduling.
Year-long schedules are tested by driving ``Runner.run`` at every ``next_due`` directly.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import logging
import os
import signal
import socket
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.adapters.db.advisory import Instance, instances, is_postgresql
from session_bot.adapters.db.leadership import Election, Leadership
from session_bot.adapters.db.store import Store
from session_bot.adapters.lock import FileLock
from session_bot.adapters.mail import Transport
from session_bot.adapters.zoom import ZoomClient
from session_bot.app.alerts import Alerter, make_alerter
from session_bot.app.ports.store import DeliveryLedger
from session_bot.app.run_requests import RUN_REQUEST_KEY, RunRequest
from session_bot.app.runner import Runner, RunReport, state_from_store
from session_bot.core.errors import ConfigError, LockBusy, PlanError, SessionBotError, StoreError
from session_bot.core.plan import Plan, load_plan
from session_bot.core.records import Claim, DeliveryOutcome, RateWindows
from session_bot.core.timeline import next_due
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings

if TYPE_CHECKING:
    from session_bot.web.deps import WebContext

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]

TICK_SECONDS = 3600.0
PLAN_CHECK_SECONDS = 30.0
STOP_GRACE_SECONDS = 20.0
REQUESTED = "requested"  # the job (and pseudo-trigger) that answers a ``RunRequest``
RUN_JOBS = ("safety-tick", "next-due", "start", "takeover", REQUESTED)
# The delivery worker of whoever leads on PostgreSQL: one name for all hosts, so a new leader
# resumes at once the rows its dead predecessor left in `sending` (holding the leader lock
# proves that predecessor is gone) instead of waiting for them to go stale.
LEADER_WORKER = "daemon@leader"


def daemon_lock(settings: Settings, note: str = "") -> FileLock:
    """The single-instance lock: next to the SQLite file (``var/daemon.lock`` by default)."""
    return wiring.daemon_lock(settings, note)


def acquire_daemon_lock(settings: Settings, note: str = "") -> FileLock:
    lock = daemon_lock(settings, note)
    try:
        # A moment's patience: `session-bot status` looks at the lock for an instant.
        return lock.acquire(timeout=1.0, poll=0.1)
    except LockBusy:
        holder = lock.path.read_text(errors="replace").strip() or "another process"
        raise LockBusy(
            f"another `session-bot serve` is already running on this database ({holder}; lock "
            f"{lock.path}; database {settings.database_display}). Only one daemon may act "
            "on a SQLite database. Stop the other one first (e.g. `systemctl stop session-bot`), "
            "or give this one its own SESSION_BOT_VAR_DIR / SESSION_BOT_DATABASE_URL."
        ) from None


class QuietServer(uvicorn.Server):
    """uvicorn waking once a second instead of ten times: a daemon should idle quietly."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # on_tick refreshes the Date header whenever counter % 10 == 0
            await asyncio.sleep(1.0)


class HaltableDeliveries:
    """A delivery ledger whose claims come back empty once ``halted()`` says so (shutdown has
    begun, or this instance lost the leadership).

    The batch already claimed (in flight) is sent and recorded; every other row stays
    ``pending``, untouched, and the mailing open, so the next run (after the restart, or the
    new leader's) carries on where this one stopped.
    """

    def __init__(self, ledger: DeliveryLedger, halted: Callable[[], bool]) -> None:
        self._ledger = ledger
        self.halted = halted

    def claim(
        self,
        mailing_id: int,
        *,
        clock: Callable[[], dt.datetime],
        worker: str,
        limit: int,
        after: int = 0,
        resume_before: dt.datetime | None = None,
        stale_after: dt.timedelta = dt.timedelta(minutes=15),
        outcomes: Sequence[DeliveryOutcome] = (),
        bounce_limit: int = 3,
        rate: RateWindows = (),
        inflight_bound: dt.timedelta = dt.timedelta(minutes=5),
    ) -> Claim:
        halted = self.halted()
        claim = self._ledger.claim(
            mailing_id,
            clock=clock,
            worker=worker,
            # Still record the outcomes of the batch that was in flight, but claim nothing new.
            limit=0 if halted else limit,
            after=after,
            resume_before=resume_before,
            stale_after=stale_after,
            outcomes=outcomes,
            bounce_limit=bounce_limit,
            rate=rate,
            inflight_bound=inflight_bound,
        )
        if not halted:
            return claim
        log.info("halted: the rest of mailing %s stays pending for the next run", mailing_id)
        return Claim(rows=[], wait_until=None)

    def record_outcomes(self, outcomes: Sequence[DeliveryOutcome], bounce_limit: int = 3) -> None:
        self._ledger.record_outcomes(outcomes, bounce_limit)


def report_dict(report: RunReport) -> dict[str, Any]:
    return {
        "ok": not report.delivery.permanent,
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
    }


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a busy port is a clear error and port 0 works."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another port with "
            "`serve --port` or SESSION_BOT_PORT, or stop what uses it"
        ) from None
    sock.set_inheritable(True)
    return sock


@dataclass
class _PlanFile:
    path: Path
    stat: tuple[int, int] | None = None
    digest: str | None = None

    def _stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def remember(self) -> None:
        self.stat = self._stat()
        self.digest = self._digest()

    def _digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def changed(self) -> bool:
        """True once per real change: a touch without new content is not a change."""
        st = self._stat()
        if st == self.stat:
            return False
        self.stat = st
        digest = self._digest()
        if digest == self.digest:
            return False
        self.digest = digest
        return True


class Daemon:
    """The long-running process behind `session-bot serve`."""

    def __init__(
        self,
        settings: Settings,
        *,
        plan_path: Path,
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
        self.plan_file = _PlanFile(plan_path)
        self.stopping = threading.Event()
        self._run_stop = threading.Event()  # the current run's delivery stop (see _build_runner)
        self._wake = threading.Event()
        self._signals: list[int] = []
        self._mutex = threading.Lock()  # one run or reload at a time inside this process
        self._role_lock = threading.Lock()  # role changes (leadership thread) vs. scheduling
        self._request_queued = threading.Event()  # a `requested` job is queued or running
        self.shared = is_postgresql(settings.resolved_database_url)
        self.instance = Instance(
            "standby" if self.shared else "leader", socket.gethostname(), os.getpid(), wall()
        )
        self.leadership: Leadership | None = None
        self._started = False
        self._ctx: WebContext | None = None  # the web app's context; its role follows ours
        self._stack = contextlib.ExitStack()
        self._scheduled: dt.datetime | None = None
        self._retry_at: dt.datetime | None = None  # deliveries waiting for a retry
        self.web_url = ""
        # Set by start():
        self.plan: Plan
        self.store: Store
        self.zoom: ZoomClient
        self.transport: Transport
        self.runner: Runner
        self.alerter: Alerter
        self.scheduler: BackgroundScheduler | None = None
        self._web_server: QuietServer | None = None
        self._web_thread: threading.Thread | None = None
        self.sandbox: ZoomSandbox | None = None

    # --- lifecycle ---------------------------------------------------------------------------
    def start(self) -> None:
        """Take the instance lock, build everything, start web and scheduler; raise on problems."""
        try:
            self._start()
        except BaseException:
            self._stack.close()
            raise

    def _start(self) -> None:
        settings = self.settings
        if not self.shared:
            since = self.instance.since or self.wall()
            note = f"on {self.instance.host} since {since.isoformat(timespec='seconds')}"
            self._stack.callback(acquire_daemon_lock(settings, note).release)
        self.plan = load_plan(self.plan_file.path)
        self.plan_file.remember()
        self.store = Store(settings.resolved_database_url)
        self.store.deliveries = HaltableDeliveries(self.store.deliveries, self.halted)
        self._stack.callback(self.store.close)
        self.store.ensure_schema()
        if self.sandbox_mode and self.shared:
            log.warning(
                "--sandbox on PostgreSQL: every instance runs its own Zoom sandbox, so a standby "
                "that takes over cannot see the meetings of the leader's sandbox. For a shared "
                "one, run `session-bot sandbox` once and point SESSION_BOT_ZOOM_API_URL and "
                "SESSION_BOT_ZOOM_OAUTH_URL of every instance at it (without --sandbox)."
            )
        if self.sandbox_mode:
            sandbox = ZoomSandbox(state_file=wiring.var_path(settings, "zoom-sandbox.json"))
            sandbox.start()
            self._stack.callback(sandbox.stop)
            self.sandbox = sandbox
            self.zoom = wiring.make_zoom(
                settings,
                self.store,
                self.clock,
                api_url=sandbox.api_url,
                oauth_url=sandbox.oauth_url,
                sandbox_credentials=True,
            )
            zoom_desc = f"Zoom sandbox at {sandbox.base_url}"
        else:
            self.zoom = wiring.make_zoom(settings, self.store, self.clock)
            zoom_desc = f"Zoom API {settings.zoom_api_url}"
        self._stack.callback(self.zoom.close)
        self.transport = wiring.make_transport(settings)
        self._stack.callback(self.transport.close)
        self.alerter = make_alerter(settings, self.plan, self.store, self.transport, self.clock)
        self.runner = self._build_runner(self.plan)
        sock = listen_socket(self.host, self.port)
        self._stack.callback(sock.close)
        self._start_web(sock)
        self._start_scheduler()
        self._start_leadership()
        db = self.store.engine.url.render_as_string(hide_password=True)
        log.info(
            "daemon started (pid %s, %s): plan %s, database %s, %s, mail via %s, web %s",
            os.getpid(),
            self.instance.role,
            self.plan_file.path,
            db,
            zoom_desc,
            self.transport.description,
            self.web_url,
        )

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
        runner.worker = LEADER_WORKER if self.shared else f"daemon@{socket.gethostname()}"
        return runner

    def _start_web(self, sock: socket.socket) -> None:
        from session_bot.web.app import create_app
        from session_bot.web.deps import WebContext

        settings = self.settings
        ctx = WebContext(
            settings=settings,
            store=self.store,
            clock=self.clock,
            plan=lambda: self.plan,
            # A fresh transport per use: the runner's SMTP connection belongs to its thread.
            transport=lambda: wiring.make_transport(settings),
            secret_key=wiring.secret_key(settings),
            trigger_run=self.admin_run,
            role=self.instance.role,
        )
        self._ctx = ctx
        config = uvicorn.Config(
            create_app(ctx, instance=self.instance_info),
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=3,
        )
        server = QuietServer(config)
        host, port = sock.getsockname()[:2]
        self.web_url = f"http://{host}:{port}"
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web")
        thread.start()
        self._web_server, self._web_thread = server, thread
        self._stack.callback(self._stop_web)
        log.info("web: listening on %s", self.web_url)

    def _start_scheduler(self) -> None:
        """Jobs every instance runs; the run jobs come with the leadership (``_become_leader``)."""
        self.scheduler = BackgroundScheduler(
            executors={"default": ThreadPoolExecutor(1)},
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
            timezone=dt.UTC,
        )
        self.scheduler.add_job(
            self._job_check_plan,
            IntervalTrigger(seconds=self.plan_check_seconds, timezone=dt.UTC),
            id="plan-check",
        )
        self.scheduler.start()

    def _start_leadership(self) -> None:
        if not self.shared:
            self._become_leader("start")  # the file lock made this process the only one
            self._started = True
            return
        election = Election(
            self.settings.resolved_database_url,
            host=self.instance.host,
            pid=self.instance.pid,
            clock=self.wall,
            failover_seconds=self.settings.failover_seconds,
        )
        self.leadership = Leadership(
            election,
            on_elected=self._on_elected,
            on_lost=self._lose_leadership,
            on_leading=self._on_leading,
        )
        self._stack.callback(self.leadership.stop)  # closed first: a standby takes over at once
        if not self.leadership.start():
            leader = self._leader_instance()
            log.info(
                "leadership: standby (pid %s on %s); the leader is %s; trying every %.1f s, "
                "taking over within %.0f s of its end",
                self.instance.pid,
                self.instance.host,
                leader.describe() if leader else "unknown",
                self.leadership.poll,
                self.settings.failover_seconds,
            )
        self._started = True

    def _on_elected(self) -> None:
        self._become_leader("takeover" if self._started else "start")

    def _become_leader(self, trigger: str) -> None:
        """Take up the run jobs; the first run happens now (catch-up, or the takeover)."""
        assert self.scheduler is not None
        with self._role_lock:
            if self.stopping.is_set():
                return
            standby_since = self.instance.since
            self.instance = Instance("leader", self.instance.host, self.instance.pid, self.wall())
            if self._ctx is not None:
                self._ctx.role = "leader"
            self.scheduler.add_job(
                self._job_run,
                IntervalTrigger(seconds=self.tick_seconds, timezone=dt.UTC),
                args=["tick"],
                id="safety-tick",
                replace_existing=True,
            )
            # Catch up at once on whatever fell due while nobody acted.
            self.scheduler.add_job(self._job_run, args=[trigger], id=trigger, replace_existing=True)
        if trigger == "takeover":
            log.warning(
                "leadership: took over as leader (pid %s on %s, standby since %s): the previous "
                "leader is gone; running the reconcile now",
                self.instance.pid,
                self.instance.host,
                standby_since.isoformat(timespec="seconds") if standby_since else "?",
            )
        elif self.shared:
            log.info("leadership: leader (pid %s on %s)", self.instance.pid, self.instance.host)

    def _lose_leadership(self) -> None:
        """The leader lock's connection failed: stop acting now, stand by, try again later."""
        with self._role_lock:
            self.instance = Instance("standby", self.instance.host, self.instance.pid, self.wall())
            if self._ctx is not None:
                self._ctx.role = "standby"
            if self.scheduler is not None:
                for job in RUN_JOBS:
                    with contextlib.suppress(JobLookupError):
                        self.scheduler.remove_job(job)
            self._scheduled = None
            self._request_queued.clear()  # its job is gone; the request stays for the leader
            self._run_stop.set()
        log.error(
            "leadership lost: the database connection holding the leader lock failed; this "
            "instance stops acting (the message in flight finishes, the rest stays pending for "
            "the next leader) and stands by"
        )

    @property
    def leads(self) -> bool:
        return self.instance.role == "leader"

    def halted(self) -> bool:
        """No new delivery claims: shutting down, or no longer the leader."""
        return self.stopping.is_set() or not self.leads

    def _leader_instance(self) -> Instance | None:
        if self.leads:
            return self.instance
        if not self.shared:
            return None
        try:
            return next((i for i in instances(self.store.engine) if i.role == "leader"), None)
        except StoreError:
            return None

    def instance_info(self) -> dict[str, Any]:
        """This process for /healthz: role, host, pid, since; a standby names the leader."""
        info = self.instance.as_dict()
        if not self.leads:
            leader = self._leader_instance()
            info["leader"] = leader.as_dict() if leader else None
        return info

    def serve(self) -> int:
        """Run until SIGTERM/SIGINT; SIGHUP reloads the plan. Returns the exit code."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            self.start()
            while True:
                self._wake.wait()
                self._wake.clear()
                pending, self._signals = self._signals, []
                if signal.SIGTERM in pending or signal.SIGINT in pending:
                    name = "SIGTERM" if signal.SIGTERM in pending else "SIGINT"
                    log.info("%s: stopping after the message in flight", name)
                    break
                if signal.SIGHUP in pending:
                    log.info("SIGHUP: reloading the plan and rebuilding the jobs")
                    assert self.scheduler is not None
                    self.scheduler.add_job(self._job_reload, args=["SIGHUP"], id="reload")
            finished = self.stop()
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        if not finished:
            # A Zoom call or SMTP server that hangs must not keep systemd waiting; every
            # delivery row's state is in the store already.
            logging.shutdown()
            os._exit(0)
        return 0

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only flags: the main loop acts outside the signal handler.
        if signum in (signal.SIGTERM, signal.SIGINT):
            self.begin_stop()
        self._signals.append(signum)
        self._wake.set()

    def begin_stop(self) -> None:
        """What SIGTERM does first: no new messages go out from now on (the one in flight does)."""
        self.stopping.set()
        self._run_stop.set()

    def stop(self) -> bool:
        """Stop new work, wait for the run in flight (bounded), then close everything.

        Returns False if the run in flight did not finish within the grace period.
        """
        self.begin_stop()
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        finished = self._mutex.acquire(timeout=self.stop_grace)
        if finished:
            self._mutex.release()
        else:
            log.warning("the run in flight did not finish within %.0f s", self.stop_grace)
        if finished:
            self._stack.close()  # web, transport, Zoom, sandbox, store, lock: in reverse order
        else:
            self._stop_web()
        log.info("daemon stopped")
        return finished

    def _stop_web(self) -> None:
        if self._web_server is not None:
            self._web_server.should_exit = True
        if self._web_thread is not None:
            self._web_thread.join(timeout=5)
        self._web_server = self._web_thread = None

    # --- jobs --------------------------------------------------------------------------------
    def _job_run(self, trigger: str) -> None:
        self.run_once(trigger)

    def run_once(
        self, trigger: str, *, lock_timeout: float | None = None, raise_busy: bool = False
    ) -> dict[str, Any]:
        """One reconcile under the run lock; never raises for user-fixable problems."""
        timeout = self.settings.lock_timeout if lock_timeout is None else lock_timeout
        if not self.leads:
            err = LockBusy(self.standby_message())
            if raise_busy:
                raise err
            return {"ok": False, "error": str(err)}
        if not self._mutex.acquire(timeout=timeout):
            err = LockBusy(f"a run is already in progress in this daemon; waited {timeout:.0f} s")
            if raise_busy:
                raise err
            return {"ok": False, "error": str(err)}
        try:
            if self.stopping.is_set():
                return {"ok": False, "error": "the daemon is stopping"}
            if not self.leads:
                return {"ok": False, "error": self.standby_message()}
            return self._run_locked(trigger, timeout, raise_busy)
        finally:
            self._mutex.release()
            self._schedule_next()
            self._pick_up_request()  # a request that came in during the run

    def _run_locked(self, trigger: str, timeout: float, raise_busy: bool) -> dict[str, Any]:
        runner = self.runner
        self._run_stop = runner.stop = threading.Event()
        if self.halted():  # SIGTERM or a lost leadership just before the new event was in place
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
        except SessionBotError as exc:
            log.error("run (%s) failed: %s", trigger, exc)
            self.alerter.run_failed(exc, self.clock(), runner.plan)
            return {"ok": False, "error": str(exc)}
        except Exception as exc:
            # The daemon's outermost boundary: a bug in one run must not end the schedule.
            log.exception("run (%s) crashed", trigger)
            self.alerter.run_failed(exc, self.clock(), runner.plan)
            return {"ok": False, "error": f"internal error ({type(exc).__name__}); see the log"}
        self._retry_at = report.delivery.next_attempt_at
        return report_dict(report)

    def standby_message(self) -> str:
        leader = self._leader_instance()
        where = f"the leader ({leader.describe()})" if leader else "the leader"
        return (
            f"this instance (pid {self.instance.pid} on {self.instance.host}) is a standby: "
            f"{where} runs the reconcile. Send the request to the leader; this one takes over "
            "by itself when the leader is gone."
        )

    def admin_run(self, trigger: str) -> dict[str, Any]:
        """The web app's trigger: a run now. For POST /admin/run a busy lock raises LockBusy
        (answered 409). A confirmation's or webhook's run that cannot start here and now (this
        is a standby, or a run is in progress that may have read the state before this request)
        becomes a run request, which the leader answers within seconds."""
        if trigger == "admin":
            return self.run_once(trigger, raise_busy=True)
        if self.leads and not self._mutex.locked():
            try:
                return self.run_once(trigger, raise_busy=True)
            except LockBusy:
                pass  # lost the leadership meanwhile, or the run lock stayed busy
        return self.request_run(trigger)

    def request_run(self, trigger: str) -> dict[str, Any]:
        """Leave a run request for the leader (``leader.RunRequest``) and return at once."""
        me = self.instance
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
        if self.leads:
            log.info(
                "run (%s) requested: this leader is busy; a run follows when it is free", trigger
            )
            self._pick_up_request()  # the run may have ended meanwhile
        else:
            log.info("run (%s) requested from the leader: this instance is a standby", trigger)
        return {"ok": True, "trigger": trigger, "requested": request.as_dict()}

    def _on_leading(self) -> None:
        """The leadership thread, after every check that found the lock held."""
        assert self.leadership is not None
        self._pick_up_request(self.leadership.election.run_requested)

    def _pick_up_request(self, peek: Callable[[], str | None] | None = None) -> None:
        """As leader: a pending run request becomes a `requested` job. Called by the leadership
        thread at every check of the lock (``peek`` reads on the lock's connection) and after
        every run; returns quickly."""
        if (
            not self.leads
            or self.stopping.is_set()
            or self.scheduler is None
            or self._request_queued.is_set()
            or self._mutex.locked()  # a run in progress calls this again when it ends
        ):
            return
        try:
            pending = peek() if peek is not None else self.store.kv.get(RUN_REQUEST_KEY)
        except StoreError:
            return  # the next run, or the lock's next check, tries again
        if pending is None:
            return
        with self._role_lock:
            if not self.leads or self._request_queued.is_set():
                return
            self._request_queued.set()
            self.scheduler.add_job(self._job_requested, id=REQUESTED, replace_existing=True)

    def _job_requested(self) -> None:
        try:
            self.run_once(REQUESTED)
        finally:
            self._request_queued.clear()
        self._pick_up_request()  # one that came in while this run ran

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

    def _job_check_plan(self) -> None:
        if self.plan_file.changed():
            log.info("plan file %s changed", self.plan_file.path)
            self.reload_plan("file changed")

    def _job_reload(self, reason: str) -> None:
        self.plan_file.remember()
        self.reload_plan(reason)

    def reload_plan(self, reason: str) -> bool:
        """Load the plan again and rebuild the jobs; a broken plan keeps the previous one."""
        try:
            plan = load_plan(self.plan_file.path)
        except PlanError as exc:
            log.error("plan not reloaded (%s), keeping the previous one: %s", reason, exc)
            return False
        with self._mutex:
            self.plan = plan
            self.alerter.plan_source = plan.source
            self.alerter.zone = plan.series[0].zone
            self.alerter.organiser = plan.series[0].organiser.email
            self.runner = self._build_runner(plan)
        self._schedule_next(force_log=True)
        log.info("plan reloaded (%s): %d series; jobs rebuilt", reason, len(plan.series))
        return True

    def _schedule_next(self, force_log: bool = False) -> None:
        """(Re)place the job at the next due moment of the current plan and state."""
        if self.stopping.is_set() or self.scheduler is None or not self.leads:
            return
        now = self.clock()
        due = next_due(now, self.plan, state_from_store(self.store))
        retry = self._retry_at
        if retry is not None and retry > now and (due is None or retry < due):
            due = retry
        if due is None:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job("next-due")
        else:
            # The scheduler fires on wall time; a test clock is mapped by its offset.
            fire_at = self.wall() + (due - self.clock())
            with self._role_lock:
                if not self.leads:  # lost the leadership meanwhile: the run jobs are gone
                    return
                self.scheduler.add_job(
                    self._job_run,
                    DateTrigger(run_date=fire_at, timezone=dt.UTC),
                    args=["schedule"],
                    id="next-due",
                    replace_existing=True,
                )
        if due != self._scheduled or force_log:
            self._scheduled = due
            if due is None:
                log.info("next due: nothing planned")
            else:
                local = due.astimezone(self.plan.series[0].zone)
                log.info("next due: %s (%s)", due.isoformat(), f"{local:%Y-%m-%d %H:%M %Z}")

    @property
    def scheduled(self) -> dt.datetime | None:
        """The moment the next-due job fires (None: nothing planned)."""
        return self._scheduled


def serve(
    settings: Settings,
    *,
    plan_path: Path,
    clock: Clock,
    sandbox: bool = False,
    host: str | None = None,
    port: int | None = None,
    plan_check_seconds: float = PLAN_CHECK_SECONDS,
) -> int:
    """`session-bot serve`: blocks until stopped; returns the exit code."""
    daemon = Daemon(
        settings,
        plan_path=plan_path,
        clock=clock,
        sandbox=sandbox,
        host=host,
        port=port,
        plan_check_seconds=plan_check_seconds,
    )
    return daemon.serve()
