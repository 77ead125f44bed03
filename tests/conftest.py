"""Shared fixtures: real servers on 127.0.0.1 (Zoom sandbox, SMTP), a real SQLite store."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.core.plan import Plan, load_plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from tests.support.pg import fresh_database, require_pg
from tests.support.settings import make_settings
from tests.support.smtp_server import SmtpServer

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE_PLAN = ROOT / "examples" / "willkommen.yaml"
SEED_TEXT = ROOT / "tests" / "data" / "invitation-2025-02-26.txt"
SEED_MEETING = {"id": 66547677759, "password": "717531", "dial_in": "+496950500952"}
SEED_JOIN_HOST = "bertelsmann-stiftung-de.zoom.us"
# The invitation moment of the seed session: 14 days before at 09:00 Berlin (08:00 UTC).
SEED_INVITATION_AT = dt.datetime(2025, 2, 12, 8, 0, tzinfo=dt.UTC)


@pytest.fixture(autouse=True)
def _logging_as_before() -> Iterator[None]:
    """The root logger as it was: ``logs.setup_logging`` (the CLI, a helper) points it at the
    test's captured stderr, which pytest closes after the test; a server thread that outlived
    the test then logged into a closed file ("--- Logging error ---" in CI's output)."""
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


@pytest.fixture
def example_plan() -> Plan:
    return load_plan(EXAMPLE_PLAN)


@pytest.fixture
def clock() -> ManualClock:
    """The tests' clock, shared by session-bot and the sandbox; starts at the seed invitation."""
    return ManualClock(SEED_INVITATION_AT)


@pytest.fixture
def sandbox(tmp_path: Path, clock: ManualClock) -> Iterator[ZoomSandbox]:
    with ZoomSandbox(
        state_file=tmp_path / "zoom.json", join_host=SEED_JOIN_HOST, clock=clock
    ) as sb:
        yield sb


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    with SmtpServer() as srv:
        yield srv


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The store and runner tests run on SQLite and on the PostgreSQL server at 127.0.0.1:5432."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'var' / 'session-bot.db'}"
        return
    require_pg()
    with fresh_database() as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    """Settings on embedded defaults inside tmp_path (no .env is read)."""
    return make_settings(tmp_path, database_url=database_url)


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    s = Store(settings.resolved_database_url)
    s.ensure_schema()
    yield s
    s.close()
