"""The connection to the database, and the one seam where SQLAlchemy's errors become ours.

Every repository opens its transactions through ``Database.begin()`` / ``connect()``: a
``SQLAlchemyError`` that leaves one of them (the server went away, the disk is full, a lock timed
out) arrives at the caller as a ``StoreError``. Repositories that expect an ``IntegrityError``
(a concurrent insert) catch it inside the transaction, on a savepoint.
"""

from __future__ import annotations

import contextlib
import logging
import os
import stat
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from session_bot.adapters.db.write_lock import LOCK_SUFFIX, WriteLock
from session_bot.core.errors import StoreError

log = logging.getLogger("session_bot.store")  # the component name admins filter by

_URL_HELP = (
    "write it as sqlite:///var/session-bot.db or postgresql+psycopg://user:password@host:5432/db; "
    "percent-encode an @, :, / or % in the user name or password (@ as %40, e.g. geheim%40123 "
    "for geheim@123)"
)
# The database holds the Zoom access token and every subscriber: for its owner's eyes only.
_PRIVATE = 0o600
# SQLite's companions of the database file (created with its mode), and the writers' lock.
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal", LOCK_SUFFIX)
BUSY_SECONDS = 10.0  # how long a writer waits for another process's write to end


def parse_database_url(raw: str) -> URL:
    """SESSION_BOT_DATABASE_URL, parsed; ``StoreError`` for one that is not a database URL.

    The one place it is parsed: no message shows its password, not even a part of one.
    """
    try:
        url = make_url(raw)
    except (ArgumentError, ValueError) as exc:
        # ValueError: the port is no number; its text may hold a piece of the password.
        why = "the port is not a number" if isinstance(exc, ValueError) else "not a URL"
        raise StoreError(
            f"SESSION_BOT_DATABASE_URL {_masked_raw(raw)} is not a usable database URL ({why}); "
            f"{_URL_HELP}"
        ) from None
    if url.host and "@" in url.host:
        # The URL ends its user name and password at the first "@": the rest of a password with
        # an "@" in it became the host name, where a driver's error would show it.
        shown = url.set(host=url.host.rsplit("@", 1)[1]).render_as_string(hide_password=True)
        raise StoreError(
            f"SESSION_BOT_DATABASE_URL {shown}: the user name or password contains an @, which "
            f"ends them early; {_URL_HELP}"
        )
    return url


def masked_url(url: URL) -> str:
    return url.render_as_string(hide_password=True)


def _masked_raw(raw: str) -> str:
    """An unparsable URL for a message: everything up to its last "@" hidden."""
    scheme, sep, rest = raw.partition("://")
    if not sep:
        return "(not a URL)"
    if "@" in rest:
        rest = "***@" + rest.rsplit("@", 1)[1]
    return f"{scheme}://{rest}"


def _sqlite_file(url: URL) -> Path | None:
    """The file of a SQLite URL; None for another database or one in memory."""
    database = url.database
    if url.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return None
    if database.startswith("file:") or url.query.get("mode") == "memory":
        return None
    return Path(database)


def _keep_private(path: Path) -> None:
    """Create the SQLite file owner-only before SQLite opens it (its -wal and -shm take the
    database file's mode), and tighten one that others may read.

    An existing file is never opened here: closing any descriptor of a file drops every POSIX
    lock this process holds on it, SQLite's too. A second store in a process that has the
    database open already (the daemon's plan source and its store) would leave that process
    without its locks, and the next other process to close the database would take itself for
    the last one and delete the WAL under it: its writes lost, the file "malformed"."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, _PRIVATE)
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(
            f"cannot create the database file {path} ({exc.strerror}); fix "
            "SESSION_BOT_DATABASE_URL or SESSION_BOT_VAR_DIR"
        ) from None
    else:
        os.close(fd)
    for file in (path, *(path.with_name(path.name + s) for s in _SQLITE_SIDE_FILES)):
        _tighten(file)


def _tighten(file: Path) -> None:
    try:
        mode = stat.S_IMODE(file.stat().st_mode)
    except FileNotFoundError:
        return
    if not mode & 0o077:
        return
    try:
        file.chmod(mode & 0o700)
    except OSError as exc:
        log.warning(
            "the database file %s can be read by others (mode %04o) and could not be made "
            "private (%s); it holds the Zoom access token and every subscriber: run "
            "chmod 600 on it as its owner",
            file,
            mode,
            exc.strerror,
        )
        return
    log.warning(
        "the database file %s could be read by others (mode %04o); it holds the Zoom access "
        "token and every subscriber, so it is now %04o",
        file,
        mode,
        mode & 0o700,
    )


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets status/web readers work while a run writes; NORMAL is durable at checkpoints.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA busy_timeout={int(BUSY_SECONDS * 1000)}")
    cur.close()


def translate(exc: SQLAlchemyError) -> StoreError:
    """The database failed under a working configuration. Not the URL: it may hold a password."""
    detail = str(getattr(exc, "orig", None) or type(exc).__name__).splitlines()[0]
    return StoreError(
        f"the database failed ({type(exc).__name__}: {detail}); check that it is reachable and "
        "has space, then run again"
    )


class Database:
    """The engine of one database URL; thread-safe through the engine's pool."""

    def __init__(self, url: str) -> None:
        self.url = url
        parsed = parse_database_url(url)
        file = _sqlite_file(parsed)
        if file is not None:
            try:
                file.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database folder {file.parent} ({exc.strerror}); fix "
                    "SESSION_BOT_DATABASE_URL or SESSION_BOT_VAR_DIR"
                ) from None
            _keep_private(file)
        try:
            self.engine: Engine = create_engine(parsed, future=True)
        except ImportError as exc:
            raise StoreError(
                f"the database driver for SESSION_BOT_DATABASE_URL is not installed ({exc.name}); "
                "for PostgreSQL install the `postgres` extra: pip install 'session-bot[postgres]'"
            ) from None
        except SQLAlchemyError as exc:
            raise StoreError(
                f"SESSION_BOT_DATABASE_URL {masked_url(parsed)} is not a usable database URL "
                f"({type(exc).__name__}); {_URL_HELP}"
            ) from None
        self.dialect: str = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite writers queue here and wake at once, instead of in SQLite's busy handler,
        # which sleeps milliseconds (``write_lock``).
        self._write_lock = WriteLock(file, BUSY_SECONDS)
        # The connection of this thread's open ``unit()``, if any.
        self._unit = threading.local()

    def _unit_connection(self) -> Connection | None:
        c: Connection | None = getattr(self._unit, "connection", None)
        return c

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back on an exception. Inside
        a ``unit()`` of this thread: that unit's transaction, which ends with the unit."""
        shared = self._unit_connection()
        if shared is not None:
            yield shared
            return
        try:
            with self.engine.begin() as c:
                yield c
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading (inside a ``unit()``: the unit's, which sees its writes)."""
        shared = self._unit_connection()
        if shared is not None:
            yield shared
            return
        try:
            with self.engine.connect() as c:
                yield c
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    @contextlib.contextmanager
    def unit(self) -> Iterator[None]:
        """One short write transaction for every ``begin()``/``connect()`` of this thread inside
        the block, under the deliveries' write discipline: this process's writers queue on the
        mutex, and SQLite's write lock is taken at the start (``BEGIN IMMEDIATE``), so no
        statement waits in the busy handler for a writer of this process, and a read that
        comes first cannot go stale before the first write (SQLITE_BUSY_SNAPSHOT).

        Nested units join the outer one. Keep the block to database work: every writer of
        the process waits for it."""
        if self._unit_connection() is not None:
            yield
            return
        with self._write_lock if self.dialect == "sqlite" else contextlib.nullcontext():
            try:
                with self.engine.begin() as c:
                    if self.dialect == "sqlite":
                        # The driver has not begun a transaction yet (it does before DML).
                        c.exec_driver_sql("BEGIN IMMEDIATE")
                    self._unit.connection = c
                    try:
                        yield
                    finally:
                        self._unit.connection = None
            except SQLAlchemyError as exc:
                raise translate(exc) from exc

    def writer(self) -> contextlib.AbstractContextManager[Any]:
        """Serialises this process's SQLite writers (see ``__init__``); nothing on PostgreSQL,
        nor inside a ``unit()``, which holds the mutex already."""
        if self.dialect != "sqlite" or self._unit_connection() is not None:
            return contextlib.nullcontext()
        return self._write_lock

    @staticmethod
    def cursor(c: Connection) -> Any:
        """The driver's cursor under the transaction of ``c`` (for the delivery hot path)."""
        dbapi = c.connection.dbapi_connection
        assert dbapi is not None
        return dbapi.cursor()

    def close(self) -> None:
        self.engine.dispose()
        self._write_lock.close()
