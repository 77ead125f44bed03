"""Worker processes that deliver a large mailing alongside the process that runs (issue 18).

One Python process sends a few thousand messages a second and no more, however many connections
it opens (the GIL); a large mailing goes faster with a process per core. The use case
(``app.mailings``) decides when and how many; an outer layer (``wiring``) starts them, each
claiming rows from the same ledger, so every recipient still gets one message and the rate
limits, counted in the database, hold for all of them together.

Helper ``i`` of the worker ``w`` claims as ``w#i``: after a crash, ``w`` resumes what its
helpers left in ``sending`` as its own (see ``adapters.db.deliveries``).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol

from session_bot.app.delivery_policy import DeliveryReport
from session_bot.core.records import DeliveryRow


def helper_name(worker: str, index: int) -> str:
    return f"{worker}#{index}"


def is_helper(worker: str) -> bool:
    return "#" in worker


class HelperRun(Protocol):
    """Helpers started for one mailing."""

    def stop(self) -> None:
        """Ask every helper to finish the message it is sending and end."""
        ...

    def wait(self, stopping: threading.Event | None = None) -> list[DeliveryReport]:
        """Wait for every helper; their reports. ``stopping`` (an event, if given) is watched
        while waiting and passed on with ``stop``. Raises the first helper's failure (as a
        ``SessionBotError``) after all have ended."""
        ...


class DeliveryHelpers(Protocol):
    """Starts worker processes that deliver one mailing alongside the caller."""

    processes: int  # the most processes a mailing may use, the caller's included
    threshold: int  # owed rows from which a mailing uses more than one process

    def start(
        self,
        mailing_id: int,
        count: int,
        *,
        worker: str,
        connections: int,
        personalise: Callable[[DeliveryRow], bytes],
    ) -> HelperRun:
        """Start ``count`` helpers, each delivering the mailing over ``connections``.
        ``personalise`` goes to them as it is (it must pickle): they render nothing."""
        ...
