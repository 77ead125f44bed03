"""The daemon's scheduler and its jobs, rebuilt from the plan, never stored.

One job at ``timeline.next_due`` (placed again after every run), an hourly safety tick
(retries, missed moments, a clock that jumped) and a catch-up run when leadership begins: the
run jobs, which only the leader has. Every instance checks the plan file's mtime/size/hash and
reloads the plan when it changed. All jobs run in one worker thread, so a run, a plan reload
and the next run never overlap.

The scheduler runs on wall time (``wall``); ``clock`` is what the runner and the web app see. They
are the same outside tests; a test clock is mapped onto wall time by its offset when scheduling.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
from collections.abc import Callable

from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.date import DateTrigger
from apscheduler.triggers.interval import IntervalTrigger

from session_bot.app.runner import state_from_store
from session_bot.core.clock import Clock
from session_bot.core.errors import PlanError
from session_bot.core.timeline import due_actions, next_due
from session_bot.daemon.roles import REQUESTED, Role
from session_bot.daemon.runs import Runs
from session_bot.plan_source import PlanSource

log = logging.getLogger("session_bot.daemon")

TICK_SECONDS = 3600.0
PLAN_CHECK_SECONDS = 30.0
RUN_JOBS = ("safety-tick", "next-due", "start", "takeover", REQUESTED)


def plan_rejected_text(error: str) -> str:
    return (
        "session-bot hat Ihre gespeicherte Änderung am Plan nicht übernommen, weil die Datei "
        f"einen Fehler enthält:\n\n  {error}\n\nBis Sie den Fehler beheben und die Datei "
        "erneut speichern, arbeitet session-bot mit dem bisherigen Plan weiter. Es wurde nichts "
        "verschickt, was auf der fehlerhaften Fassung beruht.\n"
    )


class Jobs:
    """The scheduler (one worker thread) with the plan check, and the leader's run jobs."""

    def __init__(
        self,
        runs: Runs,
        role: Role,
        plan_file: PlanSource,
        *,
        clock: Clock,
        wall: Clock,
        tick_seconds: float = TICK_SECONDS,
        plan_check_seconds: float = PLAN_CHECK_SECONDS,
    ) -> None:
        self.runs = runs
        self.role = role
        self.plan_file = plan_file
        self.clock = clock
        self.wall = wall
        self.tick_seconds = tick_seconds
        self.plan_check_seconds = plan_check_seconds
        self.scheduler: BackgroundScheduler | None = None
        self._scheduled: dt.datetime | None = None
        # Why the plan in force is not the plan on disk (None: it is); /healthz reports it.
        self.plan_problem: str | None = None

    @property
    def started(self) -> bool:
        return self.scheduler is not None

    @property
    def scheduled(self) -> dt.datetime | None:
        """The moment the next-due job fires (None: nothing planned)."""
        return self._scheduled

    def start(self) -> None:
        """Jobs every instance runs; the run jobs come with the leadership (``add_run_jobs``)."""
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

    def shutdown(self) -> None:
        """No job starts from now on; the one running goes on (``Runs.wait_idle``)."""
        if self.scheduler is not None and self.scheduler.running:
            # Jobs out first, under the scheduler's lock: ``shutdown`` marks it stopped before
            # taking that lock, and a one-off job its thread is just handing over then cannot
            # be removed (APScheduler 3 looks among pending jobs only): JobLookupError ended
            # that thread with a traceback in the log of a clean stop.
            self.scheduler.remove_all_jobs()
            self.scheduler.shutdown(wait=False)

    def add(self, func: Callable[[], None], job_id: str) -> None:
        """A job to run as soon as the worker thread is free."""
        assert self.scheduler is not None
        self.scheduler.add_job(func, id=job_id, replace_existing=True)

    def add_run_jobs(self, trigger: str) -> None:
        """The leader's safety tick, and a run now (``trigger``) for whatever fell due."""
        assert self.scheduler is not None
        self.scheduler.add_job(
            self._job_run,
            IntervalTrigger(seconds=self.tick_seconds, timezone=dt.UTC),
            args=["tick"],
            id="safety-tick",
            replace_existing=True,
        )
        # Catch up at once on whatever fell due while nobody acted.
        self.scheduler.add_job(self._job_run, args=[trigger], id=trigger, replace_existing=True)

    def drop_run_jobs(self) -> None:
        """No longer the leader: no run job stays (a job already running goes on)."""
        if self.scheduler is not None:
            for job in RUN_JOBS:
                with contextlib.suppress(JobLookupError):
                    self.scheduler.remove_job(job)
        self._scheduled = None

    def reload_soon(self, reason: str) -> None:
        """Reload the plan in the worker thread (``reason`` is logged): after the run in flight."""
        assert self.scheduler is not None
        self.scheduler.add_job(self._job_reload, args=[reason], id="reload")

    def _job_run(self, trigger: str) -> None:
        self.runs.run_once(trigger)

    def _job_check_plan(self) -> None:
        if self.plan_file.changed():
            log.info("plan in %s changed", self.plan_file.where)
            self.reload_plan("file changed" if self.plan_file.file else "new plan revision")

    def _job_reload(self, reason: str) -> None:
        self.plan_file.remember()
        self.reload_plan(reason)

    def reload_plan(self, reason: str) -> bool:
        """Load the plan again and rebuild the jobs; a broken plan keeps the previous one."""
        try:
            plan = self.plan_file.load()
        except PlanError as exc:
            log.error("plan not reloaded (%s), keeping the previous one: %s", reason, exc)
            self.plan_problem = (
                f"the plan {'file ' if self.plan_file.file else 'in '}{self.plan_file.where} is "
                "not valid, so this daemon still runs "
                f"the previous plan: {exc}"
            )
            # The organiser saved it and believes it is in force: she must hear it is not.
            self.runs.alerter.send_notice(
                f"Ihre Änderung am Plan wurde nicht übernommen ({exc.file or 'Plan'}"
                f"{f', Zeile {exc.line}' if exc.line else ''})",
                plan_rejected_text(str(exc)),
                self.wall(),
            )
            return False
        self.plan_problem = None
        self.runs.use_plan(plan)
        self.schedule_next(force_log=True)
        log.info("plan reloaded (%s): %d series; jobs rebuilt", reason, len(plan.series))
        if self.role.leads and self.scheduler is not None:
            state = state_from_store(self.runs.store)
            if any(a.kind != "hold" for a in due_actions(self.clock(), plan, state)):
                # The edit made something due already (a session added after its invitation
                # moment, a cancellation): act now, not at the next safety tick.
                log.info("the reloaded plan has actions due now: running")
                self.add(lambda: self._job_run("plan-change"), "plan-change")
        return True

    def schedule_next(self, force_log: bool = False) -> None:
        """(Re)place the job at the next due moment of the current plan and state."""
        role, runs = self.role, self.runs
        if role.stopping.is_set() or self.scheduler is None or not role.leads:
            return
        now = self.clock()
        due = next_due(now, runs.plan, state_from_store(runs.store))
        retry = runs.retry_at
        if retry is not None and retry > now and (due is None or retry < due):
            due = retry
        if due is None:
            with contextlib.suppress(JobLookupError):
                self.scheduler.remove_job("next-due")
        else:
            # The scheduler fires on wall time; a test clock is mapped by its offset.
            fire_at = self.wall() + (due - self.clock())
            with role.lock:
                if not role.leads:  # lost the leadership meanwhile: the run jobs are gone
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
                local = due.astimezone(runs.plan.series[0].zone)
                log.info("next due: %s (%s)", due.isoformat(), f"{local:%Y-%m-%d %H:%M %Z}")
