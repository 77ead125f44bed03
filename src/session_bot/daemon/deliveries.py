"""The delivery ledger as the daemon hands it to the runner: it stops claiming once halted."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence

from session_bot.app.ports.store import DeliveryLedger
from session_bot.core.records import Claim, DeliveryOutcome, RateWindows

log = logging.getLogger("session_bot.daemon")


class HaltableDeliveries:
    """A delivery ledger whose claims come back empty once ``halted()`` says so (shutdown has
    begun, or this instance lost the leadership).

    The batch already claimed (in flight) is sent and recorded; every other row stays
    ``pending``, untouched, and the mailing open, so the next run (after the restart, or the
    new leader's) carries on where this one stopped.
    """

    def __init__(self, ledger: DeliveryLedger, halted: Callable[[], bool]) -> None:
        self._ledger = ledger
        self.halted = halted

    def claim(
        self,
        mailing_id: int,
        *,
        clock: Callable[[], dt.datetime],
        worker: str,
        limit: int,
        after: int = 0,
        resume_before: dt.datetime | None = None,
        stale_after: dt.timedelta = dt.timedelta(minutes=15),
        outcomes: Sequence[DeliveryOutcome] = (),
        bounce_limit: int = 3,
        rate: RateWindows = (),
        inflight_bound: dt.timedelta = dt.timedelta(minutes=5),
    ) -> Claim:
        halted = self.halted()
        claim = self._ledger.claim(
            mailing_id,
            clock=clock,
            worker=worker,
            # Still record the outcomes of the batch that was in flight, but claim nothing new.
            limit=0 if halted else limit,
            after=after,
            resume_before=resume_before,
            stale_after=stale_after,
            outcomes=outcomes,
            bounce_limit=bounce_limit,
            rate=rate,
            inflight_bound=inflight_bound,
        )
        if not halted:
            return claim
        log.info("halted: the rest of mailing %s stays pending for the next run", mailing_id)
        return Claim(rows=[], wait_until=None)

    def record_outcomes(self, outcomes: Sequence[DeliveryOutcome], bounce_limit: int = 3) -> None:
        self._ledger.record_outcomes(outcomes, bounce_limit)
