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

``AdvisoryLock`` is the run lock on PostgreSQL: database-wide, so a manual `session-bot run` on
another machine waits for the leader's run. Both locks name their holder in
``application_name`` (``session-bot:<role>:<pid>:<since>:<host>``), which ``instances`` and the
lock messages read back from ``pg_stat_activity``.

A standby runs nothing, but its web pages and the Zoom webhook may need a run (a late invitation
after a confirmation, a Zoom read-back). It leaves a ``RunRequest`` in the store's key/value table
(``RUN_REQUEST_KEY``); the leader looks for one at every check of its lock (``on_leading``,
``Election.run_requested``) and runs the reconcile, so the request is answered within ``poll``
seconds, not at the hourly tick. A polled row rather than NOTIFY/LISTEN: it survives a leader
change (the next leader's first run answers it) and works the same on SQLite.

This module writes only lock and session-setting SQL, never application data (that is store*.py);
the one application row it reads is the pending run request.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, make_url, select, text
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from session_bot.adapters.db.schema import kv
from session_bot.core.errors import LockBusy, StoreError

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]
Role = Literal["leader", "standby"]

# Advisory lock keys: one bigint each; pg_locks shows them as classid (high) / objid (low).
KEY_HIGH = 0x5E55B07
LEADER_KEY = (KEY_HIGH << 32) | 1
RUN_KEY = (KEY_HIGH << 32) | 2

RUN_REQUEST_KEY = "run_requested"  # kv key of the pending ``RunRequest``

APP_PREFIX = "session-bot:"
APP_NAME_MAX = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1 bytes


def is_postgresql(url: str) -> bool:
    try:
        return make_url(url).get_backend_name() == "postgresql"
    except ArgumentError:
        return False


@dataclass(frozen=True)
class Timing:
    """Every interval of the election, derived from SESSION_BOT_FAILOVER_SECONDS.

    PostgreSQL counts keepalives in whole seconds, so a dead *host* is replaced within the
    setting from about 6 s up; below that only a dead process (the usual case) is.
    """

    failover: float

    @property
    def poll(self) -> float:
        """Seconds between a standby's tries and between the leader's checks."""
        return min(5.0, max(0.2, self.failover / 6))

    @property
    def keepalive_idle(self) -> int:
        return max(1, int(self.failover / 4))

    @property
    def keepalive_interval(self) -> int:
        return max(1, int(self.failover / 12))

    keepalive_count: int = 3

    @property
    def user_timeout_ms(self) -> int:
        return max(1000, int(self.failover * 1000 / 4))

    @property
    def connect_timeout(self) -> int:
        return max(2, int(self.failover / 4))

    def connect_args(self, application_name: str) -> dict[str, Any]:
        """libpq parameters: keepalives on both ends, so a dead peer is noticed in time."""
        server = (
            f"-c tcp_keepalives_idle={self.keepalive_idle} "
            f"-c tcp_keepalives_interval={self.keepalive_interval} "
            f"-c tcp_keepalives_count={self.keepalive_count} "
            f"-c tcp_user_timeout={self.user_timeout_ms} "
            f"-c statement_timeout={self.user_timeout_ms}"
        )
        return {
            "application_name": application_name[:APP_NAME_MAX],
            "connect_timeout": self.connect_timeout,
            "keepalives": 1,
            "keepalives_idle": self.keepalive_idle,
            "keepalives_interval": self.keepalive_interval,
            "keepalives_count": self.keepalive_count,
            "tcp_user_timeout": self.user_timeout_ms,
            "options": server,
        }


@dataclass(frozen=True)
class Instance:
    """One session-bot process as the database (or the process itself) sees it."""

    role: str  # leader | standby | run
    host: str
    pid: int
    since: dt.datetime | None

    def app_name(self) -> str:
        since = int(self.since.timestamp()) if self.since else 0
        return f"{APP_PREFIX}{self.role}:{self.pid}:{since}:{self.host}"[:APP_NAME_MAX]

    @classmethod
    def from_app_name(cls, name: str) -> Instance | None:
        if not name.startswith(APP_PREFIX):
            return None
        parts = name.removeprefix(APP_PREFIX).split(":", 3)
        if len(parts) != 4 or not parts[1].isdigit() or not parts[2].isdigit():
            return None
        role, pid, since, host = parts
        moment = dt.datetime.fromtimestamp(int(since), dt.UTC) if int(since) else None
        return cls(role=role, host=host, pid=int(pid), since=moment)

    def as_dict(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "host": self.host,
            "pid": self.pid,
            "since": self.since.isoformat() if self.since else None,
        }

    def describe(self) -> str:
        since = f" since {self.since.isoformat(timespec='seconds')}" if self.since else ""
        return f"pid {self.pid} on {self.host}{since}"


@dataclass(frozen=True)
class RunRequest:
    """A run asked of the leader by a process that could not run it itself: a standby's web
    trigger, or a trigger that found a run already in progress.

    One pending request at most: a newer one replaces the older, and the one run answers both.
    """

    reason: str  # the trigger that asked (confirm | webhook); the leader's run carries it
    by: str  # who asked, for the log: "standby pid 12 on host-b"
    at: dt.datetime

    def encode(self) -> str:
        return json.dumps({"reason": self.reason, "by": self.by, "at": self.at.isoformat()})

    @classmethod
    def decode(cls, raw: str) -> RunRequest:
        """Never fails: whatever the row says, it asks for a run."""
        try:
            data = json.loads(raw)
            return cls(str(data["reason"]), str(data["by"]), dt.datetime.fromisoformat(data["at"]))
        except (ValueError, KeyError, TypeError):
            return cls("requested", "unknown", dt.datetime.fromtimestamp(0, dt.UTC))

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "by": self.by, "at": self.at.isoformat()}


def _lock_filter(key: int) -> str:
    high, low = key >> 32, key & 0xFFFFFFFF
    return (
        f"l.locktype = 'advisory' AND l.granted AND l.classid = {high} "
        f"AND l.objid = {low} AND l.objsubid = 1"
    )


def instances(engine: Engine) -> list[Instance]:
    """The `serve` processes connected to this database, the leader first.

    The role comes from who holds the leader lock (the truth), not from the name a process gave
    itself; a process that has just taken over may still carry its standby name for a moment.
    """
    query = text(
        f"""
        SELECT a.application_name AS name,
               EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND {_lock_filter(LEADER_KEY)})
                 AS leads
        FROM pg_stat_activity a
        WHERE a.datname = current_database() AND a.application_name LIKE :prefix
        ORDER BY a.backend_start
        """
    )
    try:
        with engine.connect() as c:
            rows = c.execute(query, {"prefix": APP_PREFIX + "%"}).all()
    except SQLAlchemyError as exc:
        raise StoreError(
            f"cannot list the session-bot instances ({type(exc).__name__}); check "
            "SESSION_BOT_DATABASE_URL"
        ) from None
    found: list[Instance] = []
    for name, leads in rows:
        inst = Instance.from_app_name(str(name))
        if inst is None or inst.role not in ("leader", "standby"):
            continue
        role = "leader" if leads else "standby"
        # "since" belongs to the role the name states; a name that lags behind has none yet.
        since = inst.since if role == inst.role else None
        found.append(Instance(role, inst.host, inst.pid, since))
    found.sort(key=lambda i: i.role != "leader")
    return found


def lock_holder(conn: Connection, key: int) -> Instance | None:
    """Who holds ``key``, by the name its connection carries (None: unknown or nobody)."""
    row = conn.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            f"WHERE {_lock_filter(key)} LIMIT 1"
        )
    ).first()
    return Instance.from_app_name(str(row[0])) if row is not None else None


def _engine(url: str, timing: Timing, application_name: str) -> Engine:
    # NullPool: closing the Connection closes the socket, and with it the lock.
    return create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=timing.connect_args(application_name),
    )


def _database(url: str) -> str:
    return make_url(url).render_as_string(hide_password=True)


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
        self._engine = _engine(url, self.timing, self.instance.app_name())
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
                    f"WHERE l.pid = pg_backend_pid() AND {_lock_filter(self.key)}"
                )
            ).scalar()
        except SQLAlchemyError as exc:
            log.error("leadership: the lock's database connection failed (%s)", _short(exc))
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
                _database(self.url),
                _short(exc),
                self.timing.poll,
            )
        self._failing = True

    def _recovered(self) -> None:
        if self._failing:
            log.info("leadership: the database answers again")
        self._failing = False


def _short(exc: BaseException) -> str:
    """The first line of the driver's message (no URL, no password: libpq does not echo them)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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


class AdvisoryLock:
    """The run lock on PostgreSQL: one run at a time in the whole installation, on any host.

    Same interface as ``lock.FileLock``; released when its connection ends, also by a crash.
    """

    def __init__(
        self,
        url: str,
        *,
        host: str,
        pid: int,
        clock: Clock,
        failover_seconds: float = 60.0,
        key: int = RUN_KEY,
        what: str = "run",
    ) -> None:
        self.url = url
        self.key = key
        self.what = what
        self.timing = Timing(failover_seconds)
        self.holder = Instance("run", host, pid, None)
        self._clock = clock
        self._engine: Engine | None = None
        self._conn: Connection | None = None

    def acquire(self, timeout: float = 0.0, poll: float = 0.2) -> AdvisoryLock:
        me = Instance("run", self.holder.host, self.holder.pid, self._clock())
        engine = self._engine or _engine(self.url, self.timing, me.app_name())
        self._engine = engine
        deadline = time.monotonic() + timeout
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot reach the database for the {self.what} lock ({_short(exc)}); check "
                "SESSION_BOT_DATABASE_URL"
            ) from None
        try:
            while True:
                if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar():
                    self._conn = conn
                    return self
                if time.monotonic() >= deadline:
                    holder = lock_holder(conn, self.key)
                    break
                time.sleep(poll)
        except SQLAlchemyError as exc:
            conn.close()
            raise StoreError(
                f"the database connection of the {self.what} lock failed ({_short(exc)}); check "
                "SESSION_BOT_DATABASE_URL"
            ) from None
        conn.close()
        who = holder.describe() if holder else "another process"
        raise LockBusy(
            f"another session-bot {self.what} is active ({who}; PostgreSQL advisory lock "
            f"{self.key} in {_database(self.url)}). Waited {timeout:.0f} s. Try again when it "
            "has finished, or stop it first."
        )

    def release(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
                conn.close()
            except SQLAlchemyError:
                conn.invalidate()  # the connection is gone, and the lock with it
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def __enter__(self) -> AdvisoryLock:
        return self if self._conn is not None else self.acquire()

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()
