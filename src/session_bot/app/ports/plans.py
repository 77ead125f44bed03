"""Plan revisions as the use cases see them (``adapters.db.plans`` implements it)."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from session_bot.core.records import PlanRevision


class PlanRevisions(Protocol):
    def latest(self) -> PlanRevision | None: ...

    def latest_id(self) -> int | None:
        """Cheap: the daemon asks every few seconds whether the plan changed."""
        ...

    def get(self, revision_id: int) -> PlanRevision | None: ...

    def history(self, limit: int = 100) -> list[PlanRevision]:
        """Newest first, without their texts' weight mattering to the caller."""
        ...

    def add(
        self,
        *,
        parent_id: int | None,
        text: str,
        digest: str,
        author: str,
        source: str,
        note: str,
        now: dt.datetime,
    ) -> PlanRevision | None:
        """Store a revision made from ``parent_id``; None when another revision was made from
        it first (the caller refuses the save and says what changed)."""
        ...
