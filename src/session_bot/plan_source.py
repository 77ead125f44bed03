"""Where the plan comes from: a file the organiser edits, or revisions in the database.

- ``--plan FILE`` or a configured ``SESSION_BOT_PLAN``: the file (today's workflow; the console
  shows the plan as file-managed and read-only).
- otherwise, once the database holds a plan revision (`session-bot plan import`, the demo, or
  the console): the newest revision — the one place both PostgreSQL servers see.
- otherwise ``plan.yaml`` (the setting's default), as before.

The daemon asks ``changed()`` every few seconds and reloads; a file counts as changed when its
content does, the database when a newer revision exists.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Protocol

from session_bot.adapters.db.store import Store
from session_bot.app.plan_book import plan_of
from session_bot.core.errors import PlanError
from session_bot.core.plan import Plan, load_plan
from session_bot.settings import Settings


class PlanSource(Protocol):
    @property
    def where(self) -> str:
        """The file's path or "the database" (for messages)."""
        ...

    @property
    def file(self) -> Path | None: ...

    def load(self) -> Plan: ...

    def remember(self) -> None:
        """What was loaded is the state to compare with."""
        ...

    def changed(self) -> bool:
        """True once per real change since ``remember``."""
        ...

    def close(self) -> None: ...


class FilePlan:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._stat: tuple[int, int] | None = None
        self._digest: str | None = None

    @property
    def where(self) -> str:
        return str(self.path)

    @property
    def file(self) -> Path | None:
        return self.path

    def load(self) -> Plan:
        return load_plan(self.path)

    def _current_stat(self) -> tuple[int, int] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size

    def _current_digest(self) -> str | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).hexdigest()
        except OSError:
            return None

    def remember(self) -> None:
        self._stat = self._current_stat()
        self._digest = self._current_digest()

    def changed(self) -> bool:
        # A touch without new content is not a change.
        st = self._current_stat()
        if st == self._stat:
            return False
        self._stat = st
        digest = self._current_digest()
        if digest == self._digest:
            return False
        self._digest = digest
        return True

    def close(self) -> None:
        pass


class DatabasePlan:
    """The newest plan revision; the store is opened on first use and kept for the checks."""

    where = "the database"
    file = None

    def __init__(self, settings: Settings, store: Store | None = None) -> None:
        self.settings = settings
        self._store = store
        self._own = store is None
        self._seen: int | None = None

    @property
    def store(self) -> Store:
        if self._store is None:
            from session_bot import wiring

            self._store = wiring.open_store(self.settings, purpose="look")
        return self._store

    def load(self) -> Plan:
        revision = self.store.plans.latest()
        if revision is None:
            raise PlanError(
                "the database holds no plan: import one with `session-bot plan import FILE`"
            )
        return plan_of(revision)

    def remember(self) -> None:
        self._seen = self.store.plans.latest_id()

    def changed(self) -> bool:
        latest = self.store.plans.latest_id()
        if latest == self._seen:
            return False
        self._seen = latest
        return True

    def close(self) -> None:
        if self._own and self._store is not None:
            self._store.close()
            self._store = None


def file_is_configured(settings: Settings) -> bool:
    return "plan" in settings.model_fields_set


def database_has_plan(settings: Settings) -> bool:
    """Whether the database holds a plan revision; a database that does not exist yet does not
    (and is not created by asking)."""
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).exists():
        return False
    from session_bot import wiring

    store = wiring.open_store(settings, purpose="look")
    try:
        return store.plans.latest_id() is not None
    finally:
        store.close()


def choose(settings: Settings, explicit: Path | None = None) -> PlanSource:
    if explicit is not None:
        return FilePlan(explicit)
    if not file_is_configured(settings) and database_has_plan(settings):
        return DatabasePlan(settings)
    return FilePlan(settings.plan)


def load(settings: Settings, explicit: Path | None = None) -> Plan:
    """The plan in force, from wherever it lives (see the module's docstring)."""
    source = choose(settings, explicit)
    try:
        return source.load()
    finally:
        source.close()
