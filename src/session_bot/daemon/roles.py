"""Who acts: this instance's role (leader or standby) and the switches between them.

On SQLite the file lock made this process the only one, so it leads from the start. On
PostgreSQL every instance starts as a standby and the one that wins the leader lock
(``Leadership``) takes up the run jobs; when the leader dies a standby wins the lock and runs
the reconcile at once. A leader that loses its lock's connection drops its run jobs, halts the
run in progress and stands by. The leader also turns a pending run request into a `requested`
job: at every check of its lock (every ``Timing.poll`` seconds) and after every run.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from session_bot.adapters.db.advisory import Instance, instances
from session_bot.adapters.db.leadership import Election, Leadership
from session_bot.adapters.db.store import Store
from session_bot.app.run_requests import RUN_REQUEST_KEY
from session_bot.core.clock import Clock
from session_bot.core.errors import StoreError
from session_bot.settings import Settings

if TYPE_CHECKING:
    from session_bot.daemon.jobs import Jobs
    from session_bot.daemon.runs import Runs
    from session_bot.web.deps import WebContext

log = logging.getLogger("session_bot.daemon")

REQUESTED = "requested"  # the job (and pseudo-trigger) that answers a ``RunRequest``


class Role:
    """This instance's role, the lock every change of it holds, and whether it may act."""

    def __init__(self, *, shared: bool, wall: Clock, stopping: threading.Event) -> None:
        self.shared = shared  # on PostgreSQL: several instances, one leader
        self.wall = wall
        self.stopping = stopping  # shutdown has begun
        self.lock = threading.Lock()  # role changes (leadership thread) vs. scheduling
        self.instance = Instance(
            "standby" if shared else "leader", socket.gethostname(), os.getpid(), wall()
        )
        self.web: WebContext | None = None  # the web app's context; its role follows ours

    @property
    def leads(self) -> bool:
        return self.instance.role == "leader"

    def halted(self) -> bool:
        """No new delivery claims: shutting down, or no longer the leader."""
        return self.stopping.is_set() or not self.leads

    def switch(self, role: str) -> Instance:
        """Act as ``role`` from now (under ``lock``); returns the instance it was until now."""
        previous = self.instance
        self.instance = Instance(role, previous.host, previous.pid, self.wall())
        if self.web is not None:
            self.web.role = role
        return previous

    def leader(self, store: Store) -> Instance | None:
        if self.leads:
            return self.instance
        if not self.shared:
            return None
        try:
            return next((i for i in instances(store.engine) if i.role == "leader"), None)
        except StoreError:
            return None

    def info(self, store: Store) -> dict[str, Any]:
        """This process for /healthz: role, host, pid, since; a standby names the leader."""
        info = self.instance.as_dict()
        if not self.leads:
            leader = self.leader(store)
            info["leader"] = leader.as_dict() if leader else None
        return info

    def standby_message(self, store: Store) -> str:
        leader = self.leader(store)
        where = f"the leader ({leader.describe()})" if leader else "the leader"
        return (
            f"this instance (pid {self.instance.pid} on {self.instance.host}) is a standby: "
            f"{where} runs the reconcile. Send the request to the leader; this one takes over "
            "by itself when the leader is gone."
        )


class Roles:
    """Becoming leader or standby, and the leader's pick-up of run requests."""

    def __init__(self, role: Role, *, jobs: Jobs, runs: Runs) -> None:
        self.role = role
        self.jobs = jobs
        self.runs = runs
        self.leadership: Leadership | None = None
        self._started = False
        self._request_queued = threading.Event()  # a `requested` job is queued or running

    def start(self, settings: Settings, stack: contextlib.ExitStack) -> None:
        """Lead at once (SQLite), or enter the election and stand by until it is won."""
        role = self.role
        if not role.shared:
            self.become_leader("start")  # the file lock made this process the only one
            self._started = True
            return
        election = Election(
            settings.resolved_database_url,
            host=role.instance.host,
            pid=role.instance.pid,
            clock=role.wall,
            failover_seconds=settings.failover_seconds,
        )
        self.leadership = Leadership(
            election,
            on_elected=self._on_elected,
            on_lost=self.lose_leadership,
            on_leading=self._on_leading,
        )
        stack.callback(self.leadership.stop)  # closed first: a standby takes over at once
        if not self.leadership.start():
            leader = role.leader(self.runs.store)
            log.info(
                "leadership: standby (pid %s on %s); the leader is %s; trying every %.1f s, "
                "taking over within %.0f s of its end",
                role.instance.pid,
                role.instance.host,
                leader.describe() if leader else "unknown",
                self.leadership.poll,
                settings.failover_seconds,
            )
        self._started = True

    def _on_elected(self) -> None:
        self.become_leader("takeover" if self._started else "start")

    def become_leader(self, trigger: str) -> None:
        """Take up the run jobs; the first run happens now (catch-up, or the takeover)."""
        role = self.role
        with role.lock:
            if role.stopping.is_set():
                return
            standby_since = role.switch("leader").since
            self.jobs.add_run_jobs(trigger)
        if trigger == "takeover":
            log.warning(
                "leadership: took over as leader (pid %s on %s, standby since %s): the previous "
                "leader is gone; running the reconcile now",
                role.instance.pid,
                role.instance.host,
                standby_since.isoformat(timespec="seconds") if standby_since else "?",
            )
        elif role.shared:
            log.info("leadership: leader (pid %s on %s)", role.instance.pid, role.instance.host)

    def lose_leadership(self) -> None:
        """The leader lock's connection failed: stop acting now, stand by, try again later."""
        with self.role.lock:
            self.role.switch("standby")
            self.jobs.drop_run_jobs()
            self._request_queued.clear()  # its job is gone; the request stays for the leader
            self.runs.halt()
        log.error(
            "leadership lost: the database connection holding the leader lock failed; this "
            "instance stops acting (the message in flight finishes, the rest stays pending for "
            "the next leader) and stands by"
        )

    def _on_leading(self) -> None:
        """The leadership thread, after every check that found the lock held."""
        assert self.leadership is not None
        self.pick_up_request(self.leadership.election.run_requested)

    def pick_up_request(self, peek: Callable[[], str | None] | None = None) -> None:
        """As leader: a pending run request becomes a `requested` job. Called by the leadership
        thread at every check of the lock (``peek`` reads on the lock's connection) and after
        every run; returns quickly."""
        role = self.role
        if (
            not role.leads
            or role.stopping.is_set()
            or not self.jobs.started
            or self._request_queued.is_set()
            or self.runs.busy  # a run in progress calls this again when it ends
        ):
            return
        try:
            pending = peek() if peek is not None else self.runs.store.kv.get(RUN_REQUEST_KEY)
        except StoreError:
            return  # the next run, or the lock's next check, tries again
        if pending is None:
            return
        with role.lock:
            if not role.leads or self._request_queued.is_set():
                return
            self._request_queued.set()
            self.jobs.add(self._job_requested, REQUESTED)

    def _job_requested(self) -> None:
        try:
            self.runs.run_once(REQUESTED)
        finally:
            self._request_queued.clear()
        self.pick_up_request()  # one that came in while this run ran
