"""Delivery progress for a human (a rich bar on stderr) or for the log (a line every 10 s)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from session_bot.app.delivery_policy import DeliveryReport

if TYPE_CHECKING:
    from rich.progress import Progress

log = logging.getLogger("session_bot.delivery")


class Display:
    """Progress for a human (rich, on stderr) or for the log (a line every 10 s)."""

    def __init__(self, bar: Progress | None, mailing_id: int, total: int) -> None:
        self._bar = bar
        self._task = bar.add_task("deliver", total=total, mailing=mailing_id) if bar else None
        self._mailing_id = mailing_id
        self._total = total
        self._last_log = time.monotonic()
        self._lock = threading.Lock()

    def advance(self, done: int, report: DeliveryReport) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=done)
            return
        with self._lock:
            now = time.monotonic()
            if now - self._last_log < 10.0:
                return
            self._last_log = now
        log.info(
            "mailing %s: %d/%d done (%d sent, %d failed, %d retries)",
            self._mailing_id,
            done,
            self._total,
            report.sent,
            report.permanent,
            report.retries,
        )

    def done(self, report: DeliveryReport) -> None:
        if self._bar is None:
            return
        self._bar.stop()
        console = self._bar.console
        console.print(f"[bold]mailing {self._mailing_id}[/]: {report.summary()}")
        for failure in report.failures[:10]:
            console.print(f"  [red]failed[/] {failure}", markup=True, highlight=False)
        if len(report.failures) > 10:
            console.print(f"  … and {len(report.failures) - 10} more")


@contextmanager
def display(progress: bool, mailing_id: int, total: int) -> Iterator[Display]:
    if not progress:
        yield Display(None, mailing_id, total)
        return
    # rich only when a human watches: `session-bot --help` and the daemon stay light.
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    bar = Progress(
        TextColumn("mailing {task.fields[mailing]}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=Console(stderr=True),
    )
    shown = Display(bar, mailing_id, total)
    bar.start()
    try:
        yield shown
    finally:
        bar.stop()
