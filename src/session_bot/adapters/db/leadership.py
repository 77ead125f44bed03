"""Who acts when several `serve` processes share one PostgreSQL database: one leader, standbys.

The leader holds a session-level advisory lock (``LEADER_KEY``) on a connection of its own for as
long as it leads. PostgreSQL releases the lock when that connection ends, so a process that dies
(SIGKILL, OOM, power loss) hands over without anyone cleaning up. A standby keeps a connection
too and tries the lock every ``Timing.poll`` seconds; the first try that succeeds makes it leader.

How fast a dead leader is noticed:
- the process dies, its host lives: the kernel closes the socket, PostgreSQL ends the backend
  at once, the lock is free at the standby's next poll (≤ ``poll``);
- the host dies or the network splits: nothing closes the socket, so the connection asks the
  server for TCP keepalives (``tcp_keepalives_*``, ``tcp_user_timeout``) that end the backend
  after ``keepalive_idle + keepalive_count × keepalive_interval`` ≤ failover/2 seconds; with the
  standby's poll that is within ``failover_seconds``.
The leader checks its own connection every ``poll`` seconds with a client-side
``tcp_user_timeout`` of failover/4, so a leader cut off from the database stops acting
(``on_lost``) before the server frees the lock for a standby.

``advisory.AdvisoryLock`` is the run lock on PostgreSQL: database-wide, so a manual `session-bot run` on
another machine waits for the leader's run. Both locks name their holder in
``application_name`` (``session-bot:<role>:<pid>:<since>:<host>``), which ``instances`` and the
lock messages read back from ``pg_stat_activity``.

A standby runs nothing, but its web pages and the Zoom webhook may need a run (a late invitation
after a confirmation, a Zoom read-back). It leaves a ``RunRequest`` in the store's key/value table
(``RUN_REQUEST_KEY``); the leader looks for one at every check of its lock (``on_leading``,
``Election.run_requested``) and runs the reconcile, so the request is answered within ``poll``
seconds, not at the hourly tick. A polled row rather than NOTIFY/LISTEN: it survives a leader
change (the next leader's first run answers it) and works the same on SQLite.

This module writes only lock and session-setting SQL, never application data (that is the
repositories); the one application row it reads is the pending run request.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from sqlalchemy import Connection, select, text
from sqlalchemy.exc import SQLAlchemyError

from session_bot.adapters.db.advisory import (
    LEADER_KEY,
    Instance,
    Role,
    Timing,
    lock_engine,
    lock_filter,
    masked_url,
    short_error,
)
from session_bot.adapters.db.schema import kv
from session_bot.app.run_requests import RUN_REQUEST_KEY
from session_bot.core.clock import Clock

log = logging.getLogger("session_bot.leader")  # the component name admins filter by


class Election:
    """One process's seat in the election. Driven by one thread (``Leadership``); the web thread
    only reads ``instance``."""

    def __init__(
        self,
        url: str,
        *,
        host: str,
        pid: int,
        clock: Clock,
        failover_seconds: float,
        key: int = LEADER_KEY,
    ) -> None:
        self.url = url
        self.key = key
        self.clock = clock
        self.timing = Timing(failover_seconds)
        self.instance = Instance("standby", host, pid, clock())
        self._engine = lock_engine(url, self.timing, self.instance.app_name())
        self._conn: Connection | None = None
        self._failing = False  # the last try failed (logged once, not at every poll)

    @property
    def role(self) -> str:
        return self.instance.role

    @property
    def leads(self) -> bool:
        return self.instance.role == "leader"

    def try_lead(self) -> bool:
        """As standby: one try for the lock. True if this process leads now."""
        if self.leads:
            return self.still_leading()
        try:
            conn = self._connection()
            got = bool(
                conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar()
            )
            if got:
                self._become("leader")
            self._recovered()
        except SQLAlchemyError as exc:
            self._drop()
            self._failed(exc)
            if self.leads:  # granted, then the connection failed: the lock went with it
                self._demote()
            return False
        return got

    def still_leading(self) -> bool:
        """As leader: the lock's connection answers and still holds the lock."""
        if not self.leads or self._conn is None:
            return False
        try:
            held = self._conn.execute(
                text(
                    "SELECT count(*) FROM pg_locks l "
                    f"WHERE l.pid = pg_backend_pid() AND {lock_filter(self.key)}"
                )
            ).scalar()
        except SQLAlchemyError as exc:
            log.error("leadership: the lock's database connection failed (%s)", short_error(exc))
            held = 0
        if held:
            return True
        self._drop()
        self._demote()
        return False

    def run_requested(self) -> str | None:
        """As leader: the pending ``RunRequest`` (encoded), or None. Read on the lock's own
        connection, so its timeouts bound this read as they bound the lock check: a database
        that stops answering cannot stall the checks (the store's pool has no such timeouts)."""
        if not self.leads or self._conn is None:
            return None
        try:
            value = self._conn.execute(
                select(kv.c.value).where(kv.c.key == RUN_REQUEST_KEY)
            ).scalar()
        except SQLAlchemyError:
            return None  # the next lock check finds out what is wrong and says so
        return None if value is None else str(value)

    def close(self) -> None:
        """Give the seat up; a held lock is released with the connection."""
        self._drop()
        self._engine.dispose()

    # --- internals ---------------------------------------------------------------------------
    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._drop()
            self._conn = self._engine.connect()
        return self._conn

    def _become(self, role: Role) -> None:
        self.instance = Instance(role, self.instance.host, self.instance.pid, self.clock())
        if self._conn is not None:
            # The name is how `status` and the other instances tell who is who.
            self._conn.execute(
                text("SELECT set_config('application_name', :n, false)"),
                {"n": self.instance.app_name()},
            )

    def _demote(self) -> None:
        self.instance = Instance("standby", self.instance.host, self.instance.pid, self.clock())

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except SQLAlchemyError:
                conn.invalidate()

    def _failed(self, exc: SQLAlchemyError) -> None:
        if not self._failing:
            log.warning(
                "leadership: cannot reach the database %s (%s); trying again every %.1f s",
                masked_url(self.url),
                short_error(exc),
                self.timing.poll,
            )
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("leadership: the database answers again")
        self._failing = False


class Leadership:
    """Runs an ``Election`` in a thread: a standby tries every ``poll`` seconds, a leader checks
    its connection as often; ``on_elected``/``on_lost`` are called from that thread, and
    ``on_leading`` after every check that found the lock still held (the leader's chance to
    look for a ``RunRequest``; it must return quickly)."""

    def __init__(
        self,
        election: Election,
        *,
        on_elected: Callable[[], None],
        on_lost: Callable[[], None],
        on_leading: Callable[[], None] | None = None,
    ) -> None:
        self.election = election
        self.on_elected = on_elected
        self.on_lost = on_lost
        self.on_leading = on_leading
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def poll(self) -> float:
        return self.election.timing.poll

    def start(self) -> bool:
        """The first try now (so the caller starts knowing its role), then the thread."""
        self.step()
        self._thread = threading.Thread(target=self._loop, name="leadership", daemon=True)
        self._thread.start()
        return self.election.leads

    def step(self) -> None:
        if self.election.leads:
            if not self.election.still_leading():
                self.on_lost()
            elif self.on_leading is not None:
                self.on_leading()
        elif self.election.try_lead():
            self.on_elected()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll):
            try:
                self.step()
            except Exception:
                # The thread's outermost boundary: without it a leader would lead unchecked.
                log.exception("leadership: check failed; trying again in %.1f s", self.poll)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout=self.poll + self.election.timing.connect_timeout + 1)
        self.election.close()
