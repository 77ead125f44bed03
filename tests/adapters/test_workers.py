"""Helper processes (``adapters.workers``): spares started after a mailing serve the next one,
and a spare nobody asks for ends by itself.

Real processes: each helper is a fresh ``python -m session_bot.adapters.workers`` that imports
this module to find its target.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import cast

import pytest

from session_bot.adapters import workers
from session_bot.adapters.workers import SPARES, HelperJob, ProcessHelpers
from session_bot.app.delivery_policy import DeliveryReport
from session_bot.core.records import DeliveryRow


@dataclass(frozen=True)
class Stamp:
    """A personaliser that pickles (as the mailings' ``Personaliser`` does)."""

    text: str

    def __call__(self, row: DeliveryRow) -> bytes:
        return self.text.encode()


def report_pid(setup: object, job: HelperJob, stop: threading.Event) -> DeliveryReport:
    """A helper's target: reports which process ran it (as ``sent``) and what it was given."""
    made = job.personalise(cast(DeliveryRow, None)).decode()
    return DeliveryReport(
        sent=os.getpid(), failures=[f"{setup}:{job.worker}:{job.connections}:{made}"]
    )


@pytest.fixture(autouse=True)
def no_spares() -> Iterator[None]:
    SPARES.close()
    yield
    SPARES.close()


def gone(pid: int, within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not os.path.exists(f"/proc/{pid}"):  # ended and reaped: no zombie left
            return True
        time.sleep(0.05)
    return False


def test_the_next_mailing_is_served_by_the_spares_the_last_one_left() -> None:
    helpers = ProcessHelpers(report_pid, "setup", processes=3, threshold=1)
    first = helpers.start(7, 2, worker="run", connections=2, personalise=Stamp("mail 7"))
    reports = first.wait()
    assert sorted(r.sent for r in reports) == sorted(first.pids)
    assert sorted(r.failures[0] for r in reports) == [
        "setup:run#1:2:mail 7",
        "setup:run#2:2:mail 7",
    ]
    spares = SPARES.pids
    assert len(spares) == 2 and not set(spares) & set(first.pids)

    second = helpers.start(8, 2, worker="run", connections=1, personalise=Stamp("8"))
    assert sorted(second.pids) == sorted(spares)
    assert sorted(r.sent for r in second.wait()) == sorted(spares)


def test_a_stopped_mailing_leaves_no_spares() -> None:
    helpers = ProcessHelpers(report_pid, "setup", processes=2, threshold=1)
    run = helpers.start(7, 1, worker="run", connections=1, personalise=Stamp("7"))
    stopping = threading.Event()
    stopping.set()
    run.wait(stopping)
    assert SPARES.pids == []


def test_a_spare_nobody_asks_for_ends_by_itself() -> None:
    helpers = ProcessHelpers(report_pid, "setup", processes=2, threshold=1)
    helpers.spare_idle = 1.0
    helpers.start(7, 1, worker="run", connections=1, personalise=Stamp("7")).wait()
    (spare,) = SPARES.pids
    assert gone(spare, within=30)
    assert SPARES.pids == []
    assert workers.SPARE_IDLE_SECONDS == 900.0  # the default the daemon keeps spares for


def report_frozen(setup: object, job: HelperJob, stop: threading.Event) -> DeliveryReport:
    return DeliveryReport(sent=gc.get_freeze_count())


def test_a_helper_keeps_what_its_imports_built_out_of_the_collectors_sight() -> None:
    helpers = ProcessHelpers(report_frozen, "setup", processes=2, threshold=1)
    (report,) = helpers.start(7, 1, worker="run", connections=1, personalise=Stamp("7")).wait()
    assert report.sent > 10_000  # the imported modules' objects, frozen before the order came


def report_niceness(setup: object, job: HelperJob, stop: threading.Event) -> DeliveryReport:
    return DeliveryReport(sent=os.getpriority(os.PRIO_PROCESS, 0))


def test_a_helper_runs_at_a_lower_priority_than_its_caller() -> None:
    helpers = ProcessHelpers(report_niceness, "setup", processes=2, threshold=1)
    (report,) = helpers.start(7, 1, worker="run", connections=1, personalise=Stamp("7")).wait()
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    assert report.sent == min(mine + workers.HELPER_NICENESS, 19)
