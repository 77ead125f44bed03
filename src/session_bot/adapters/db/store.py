"""The database as one object: small repositories behind a thin façade, and the schema's version.

Only this package writes SQL. Timestamps are stored as UTC; reads return aware UTC datetimes.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, text
from sqlalchemy.exc import OperationalError

from session_bot.adapters.db.console import (
    AuditRepository,
    ConsoleSessionRepository,
    OrganiserRepository,
)
from session_bot.adapters.db.database import Database
from session_bot.adapters.db.deliveries import DeliveryLedger
from session_bot.adapters.db.keyvalue import CounterRepository, KeyValueRepository
from session_bot.adapters.db.mailings import MailingRepository
from session_bot.adapters.db.plans import PlanRevisionRepository
from session_bot.adapters.db.runs import RunRepository
from session_bot.adapters.db.sessions import SessionRepository
from session_bot.adapters.db.subscribers import SubscriberRepository
from session_bot.app.ports import store as ports
from session_bot.core.errors import StoreError

SCHEMA_LOCK_KEY = (0x5E55B07 << 32) | 3  # advisory lock key, distinct from leadership's keys


class Store:
    """All persistent state. One instance per process; thread-safe through the engine's pool."""

    def __init__(self, url: str) -> None:
        self.db = Database(url)
        self.sessions = SessionRepository(self.db)
        self.runs = RunRepository(self.db)
        self.kv = KeyValueRepository(self.db)
        self.counters = CounterRepository(self.db)
        self.mailings = MailingRepository(self.db)
        # A port, not the class: the daemon wraps it to stop claiming on shutdown.
        self.deliveries: ports.DeliveryLedger = DeliveryLedger(self.db)
        self.subscribers = SubscriberRepository(self.db)
        self.organisers = OrganiserRepository(self.db)
        self.console_sessions = ConsoleSessionRepository(self.db)
        self.audit = AuditRepository(self.db)
        self.plans = PlanRevisionRepository(self.db)

    @property
    def url(self) -> str:
        return self.db.url

    @property
    def engine(self) -> Engine:
        return self.db.engine

    @property
    def dialect(self) -> str:
        return self.db.dialect

    def transaction(self) -> contextlib.AbstractContextManager[None]:
        """See ``ports.Store.transaction`` (``Database.unit``)."""
        return self.db.unit()

    def close(self) -> None:
        self.db.close()

    # The schema's version (Alembic). Its own messages: these failures come before any run.
    def _alembic(self) -> Any:
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        return cfg

    def schema_revision(self) -> tuple[str | None, str]:
        """(the database's revision or None for an empty database, the code's head revision)."""
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        head = ScriptDirectory.from_config(self._alembic()).get_current_head() or ""
        try:
            with self.engine.connect() as c:
                current = MigrationContext.configure(c).get_current_revision()
        except OperationalError as exc:
            raise StoreError(
                f"cannot open the database ({exc.orig}); check SESSION_BOT_DATABASE_URL"
            ) from None
        return current, head

    def upgrade(self) -> None:
        """Bring the schema to the code's revision (Alembic migrations)."""
        from alembic import command

        cfg = self._alembic()
        try:
            with self.engine.begin() as c:
                if self.dialect == "postgresql":
                    # Two servers starting at once on an empty database: one migrates, the
                    # other waits here and then finds nothing left to do.
                    c.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": SCHEMA_LOCK_KEY})
                cfg.attributes["connection"] = c
                command.upgrade(cfg, "head")
        except OperationalError as exc:
            raise StoreError(
                f"cannot migrate the database ({exc.orig}); check SESSION_BOT_DATABASE_URL and "
                "that the directory is writable"
            ) from None

    def ensure_schema(self) -> None:
        """Create a fresh database; refuse an existing one that is behind the code."""
        current, head = self.schema_revision()
        if current is None and not self._has_tables():
            self.upgrade()
        elif current != head:
            raise StoreError(
                f"the database schema is at revision {current or 'unknown'}, this version of "
                f"session-bot needs {head}. Back up the database, then run `session-bot db upgrade`."
            )

    def _has_tables(self) -> bool:
        from sqlalchemy import inspect

        return bool(inspect(self.engine).get_table_names())

    def create_schema(self) -> None:
        """Tests and the demo: migrate whatever is there to the current revision."""
        self.upgrade()


class StoreTokenCache:
    """Zoom token shared by all processes of one installation (moodle-mod_zoom#473)."""

    KEY = "zoom_token"

    def __init__(self, store: Store, clock: Callable[[], dt.datetime]) -> None:
        self._kv = store.kv
        self._clock = clock

    def load(self) -> tuple[str, dt.datetime] | None:
        return self._kv.get_with_expiry(self.KEY)

    def save(self, token: str, expires_at: dt.datetime) -> None:
        self._kv.set(self.KEY, token, expires_at)
