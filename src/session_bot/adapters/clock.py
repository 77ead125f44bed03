"""Clocks to inject: the real one, and one that starts at a chosen moment (demo, tests)."""

from __future__ import annotations

import datetime as dt
import time


def system_clock() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class ShiftedClock:
    """Starts at ``start`` and advances with real elapsed time, so order of events is kept."""

    def __init__(self, start: dt.datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ShiftedClock needs an aware datetime")
        self._start = start.astimezone(dt.UTC)
        self._t0 = time.monotonic()

    def __call__(self) -> dt.datetime:
        return self._start + dt.timedelta(seconds=time.monotonic() - self._t0)


class ManualClock:
    """A clock tests move by hand."""

    def __init__(self, start: dt.datetime) -> None:
        self.now = start.astimezone(dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)

    def set(self, moment: dt.datetime) -> None:
        self.now = moment.astimezone(dt.UTC)
