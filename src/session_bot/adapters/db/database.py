"""The connection to the database, and the one seam where SQLAlchemy's errors become ours.

Every repository opens its transactions through ``Database.begin()`` / ``connect()``: a
``SQLAlchemyError`` that leaves one of them (the server went away, the disk is full, a lock timed
out) arrives at the caller as a ``StoreError``. Repositories that expect an ``IntegrityError``
(a concurrent insert) catch it inside the transaction, on a savepoint.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.exc import SQLAlchemyError

from session_bot.core.errors import StoreError


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets status/web readers work while a run writes; NORMAL is durable at checkpoints.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=10000")
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
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            folder = Path(url.removeprefix("sqlite:///")).parent
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"cannot create the database folder {folder} ({exc.strerror}); fix "
                    "SESSION_BOT_DATABASE_URL or SESSION_BOT_VAR_DIR"
                ) from None
        try:
            self.engine: Engine = create_engine(url, future=True)
        except ImportError as exc:
            raise StoreError(
                f"the database driver for SESSION_BOT_DATABASE_URL is not installed ({exc.name}); "
                "for PostgreSQL install the `postgres` extra: pip install 'session-bot[postgres]'"
            ) from None
        except SQLAlchemyError as exc:
            raise StoreError(
                f"SESSION_BOT_DATABASE_URL is not a usable database URL ({type(exc).__name__}); "
                "use sqlite:///var/session-bot.db or postgresql+psycopg://user:password@host/db"
            ) from None
        self.dialect: str = self.engine.dialect.name
        if self.dialect == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas)
        # SQLite writers of this process queue on a mutex and wake at once, instead of in
        # SQLite's busy handler, which sleeps milliseconds. Other processes still meet the
        # database lock (busy_timeout).
        self._write_mutex = threading.Lock()

    @contextlib.contextmanager
    def begin(self) -> Iterator[Connection]:
        """A transaction: committed when the block ends, rolled back on an exception."""
        try:
            with self.engine.begin() as c:
                yield c
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    @contextlib.contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection for reading."""
        try:
            with self.engine.connect() as c:
                yield c
        except SQLAlchemyError as exc:
            raise translate(exc) from exc

    def writer(self) -> contextlib.AbstractContextManager[Any]:
        """Serialises this process's SQLite writers (see ``__init__``); nothing on PostgreSQL."""
        return self._write_mutex if self.dialect == "sqlite" else contextlib.nullcontext()

    @staticmethod
    def cursor(c: Connection) -> Any:
        """The driver's cursor under the transaction of ``c`` (for the delivery hot path)."""
        dbapi = c.connection.dbapi_connection
        assert dbapi is not None
        return dbapi.cursor()

    def close(self) -> None:
        self.engine.dispose()
