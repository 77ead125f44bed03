"""PostgreSQL advisory locks and the names processes carry while they hold them.

``AdvisoryLock`` is the run lock on PostgreSQL: database-wide, so a manual `session-bot run` on
another machine waits for the leader's run. Both it and the leader lock (``leadership.py``) name
their holder in ``application_name`` (``session-bot:<role>:<pid>:<since>:<host>``), which
``instances`` and the lock messages read back from ``pg_stat_activity``. Only lock and
session-setting SQL here, never application data.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Literal

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.pool import NullPool

from session_bot.adapters.db.database import parse_database_url
from session_bot.core.clock import Clock
from session_bot.core.errors import LockBusy, StoreError

Role = Literal["leader", "standby"]

# Advisory lock keys: one bigint each; pg_locks shows them as classid (high) / objid (low).
KEY_HIGH = 0x5E55B07
LEADER_KEY = (KEY_HIGH << 32) | 1
RUN_KEY = (KEY_HIGH << 32) | 2

APP_PREFIX = "session-bot:"
APP_NAME_MAX = 63  # PostgreSQL truncates application_name to NAMEDATALEN - 1 bytes


def is_postgresql(url: str) -> bool:
    try:
        return parse_database_url(url).get_backend_name() == "postgresql"
    except StoreError:
        return False  # reported, without the password, where the store opens it


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


def lock_filter(key: int) -> str:
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
               EXISTS (SELECT 1 FROM pg_locks l WHERE l.pid = a.pid AND {lock_filter(LEADER_KEY)})
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
            f"WHERE {lock_filter(key)} LIMIT 1"
        )
    ).first()
    return Instance.from_app_name(str(row[0])) if row is not None else None


def lock_engine(url: str, timing: Timing, application_name: str) -> Engine:
    # NullPool: closing the Connection closes the socket, and with it the lock.
    return create_engine(
        url,
        poolclass=NullPool,
        isolation_level="AUTOCOMMIT",
        connect_args=timing.connect_args(application_name),
    )


def masked_url(url: str) -> str:
    return parse_database_url(url).render_as_string(hide_password=True)


def short_error(exc: BaseException) -> str:
    """The first line of the driver's message (no URL, no password: libpq does not echo them)."""
    lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__


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
        engine = self._engine or lock_engine(self.url, self.timing, me.app_name())
        self._engine = engine
        deadline = time.monotonic() + timeout
        try:
            conn = engine.connect()
        except SQLAlchemyError as exc:
            raise StoreError(
                f"cannot reach the database for the {self.what} lock ({short_error(exc)}); check "
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
                f"the database connection of the {self.what} lock failed ({short_error(exc)}); check "
                "SESSION_BOT_DATABASE_URL"
            ) from None
        conn.close()
        who = holder.describe() if holder else "another process"
        raise LockBusy(
            f"another session-bot {self.what} is active ({who}; PostgreSQL advisory lock "
            f"{self.key} in {masked_url(self.url)}). Waited {timeout:.0f} s. Try again when it "
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
