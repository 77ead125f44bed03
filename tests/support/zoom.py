"""Helpers and fixtures for tests that need Zoom: a real sandbox on 127.0.0.1 and a real client.

The lead imports the fixtures into tests/conftest.py::

    from tests.support.zoom import zoom_clock, zoom_client, zoom_sandbox, zoom_sleeps  # noqa: F401

Zoom's own test modules build on the helpers below (``running_sandbox``, ``make_client``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.zoom import (
    MeetingRequest,
    MemoryTokenCache,
    RetryPolicy,
    TokenCache,
    ZoomClient,
    marker,
)
from session_bot.sandbox.zoom import ZoomSandbox

UTC = dt.UTC
BERLIN = ZoneInfo("Europe/Berlin")
#: 14 days before the seed session, 09:00 Berlin: when the invitation goes out.
START = dt.datetime(2025, 2, 12, 8, 0, tzinfo=UTC)
SEED_DATE = dt.date(2025, 2, 26)
SEED_MEETING: dict[str, Any] = {"id": 66547677759, "password": "717531", "dial_in": "+496950500952"}
SEED_JOIN_HOST = "bertelsmann-stiftung-de.zoom.us"
CREDS = ("acct-8f3K2", "clientid-Q7xP", "s3cr3t-Zoom-Client-Secret-value")
HOST_EMAIL = "kristina.neumann@bertelsmann-stiftung.de"


class SleepRecorder:
    """``RetryPolicy.sleep`` that records the waits instead of sleeping."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


@contextmanager
def running_sandbox(
    clock: Callable[[], dt.datetime] | None = None, **kw: Any
) -> Iterator[ZoomSandbox]:
    kw.setdefault("require", CREDS)
    kw.setdefault("join_host", SEED_JOIN_HOST)
    with ZoomSandbox(clock=clock, **kw) as sandbox:
        yield sandbox


def make_client(
    sandbox: ZoomSandbox,
    clock: Callable[[], dt.datetime],
    *,
    sleeps: Callable[[float], None] | None = None,
    timeout: float = 2.0,
    attempts: int = 4,
    cache: TokenCache | None = None,
    counter: Callable[[str], None] | None = None,
    creds: tuple[str, str, str] = CREDS,
    user: str = HOST_EMAIL,
    dial_in_countries: tuple[str, ...] = ("DE",),
) -> ZoomClient:
    account, client_id, secret = creds
    return ZoomClient(
        api_url=sandbox.api_url,
        oauth_url=sandbox.oauth_url,
        account_id=account,
        client_id=client_id,
        client_secret=secret,
        user=user,
        clock=clock,
        dial_in_countries=dial_in_countries,
        timeout=timeout,
        token_cache=cache if cache is not None else MemoryTokenCache(),
        retry=RetryPolicy(attempts=attempts, sleep=sleeps or SleepRecorder()),
        call_counter=counter,
    )


def session_request(
    date: dt.date = SEED_DATE,
    *,
    series: str = "willkommen",
    hhmm: tuple[int, int] = (12, 30),
    topic: str = "Willkommen: Online Austausch – Akteursübergreifende Zusammenarbeit",
    extra_agenda: str = "Impulse: Anna Lena Hemmer; Dr. Kristian Garthus-Niegel",
    duration: int = 60,
    alternative_hosts: tuple[str, ...] = (),
) -> MeetingRequest:
    """The request the runner sends for one session of a series."""
    return MeetingRequest(
        topic=topic,
        agenda=f"{marker(series, date)} {extra_agenda}",
        start=dt.datetime.combine(date, dt.time(*hhmm), BERLIN),
        duration=duration,
        timezone="Europe/Berlin",
        alternative_hosts=alternative_hosts,
    )


# --- fixtures for other test modules (runner, CLI) ------------------------------------------------


@pytest.fixture
def zoom_clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def zoom_sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def zoom_sandbox(zoom_clock: ManualClock) -> Iterator[ZoomSandbox]:
    """A running sandbox sharing ``zoom_clock``, requiring ``CREDS``, with the seed queued."""
    with running_sandbox(zoom_clock) as sandbox:
        sandbox.queue_meeting(**SEED_MEETING)
        yield sandbox


@pytest.fixture
def zoom_client(
    zoom_sandbox: ZoomSandbox, zoom_clock: ManualClock, zoom_sleeps: SleepRecorder
) -> Iterator[ZoomClient]:
    client = make_client(zoom_sandbox, zoom_clock, sleeps=zoom_sleeps)
    yield client
    client.close()
