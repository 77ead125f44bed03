"""The ``plan_revisions`` table: every saved state of the plan, newest last."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.schema import plan_revisions
from session_bot.core.records import PlanRevision


def _revision(r: Any) -> PlanRevision:
    return PlanRevision(
        id=r.id,
        parent_id=r.parent_id,
        created_at=r.created_at,
        author=r.author,
        source=r.source,
        note=r.note,
        digest=r.digest,
        text=r.text,
    )


class PlanRevisionRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def latest(self) -> PlanRevision | None:
        with self._db.connect() as c:
            r = c.execute(
                select(plan_revisions).order_by(plan_revisions.c.id.desc()).limit(1)
            ).first()
        return _revision(r) if r else None

    def latest_id(self) -> int | None:
        with self._db.connect() as c:
            value = c.execute(select(func.max(plan_revisions.c.id))).scalar()
        return int(value) if value is not None else None

    def get(self, revision_id: int) -> PlanRevision | None:
        with self._db.connect() as c:
            r = c.execute(select(plan_revisions).where(plan_revisions.c.id == revision_id)).first()
        return _revision(r) if r else None

    def history(self, limit: int = 100) -> list[PlanRevision]:
        with self._db.connect() as c:
            rows = c.execute(
                select(plan_revisions).order_by(plan_revisions.c.id.desc()).limit(limit)
            ).all()
        return [_revision(r) for r in rows]

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
        with self._db.begin() as c:
            # Only the newest revision may be a parent: a save made from an older one lost the
            # race (the unique parent_id catches two saves from the same revision at once).
            newest = c.execute(select(func.max(plan_revisions.c.id))).scalar()
            if newest != parent_id:
                return None
            new_id: int | None = None
            with contextlib.suppress(IntegrityError), c.begin_nested():
                new_id = c.execute(
                    insert(plan_revisions)
                    .values(
                        parent_id=parent_id,
                        created_at=now,
                        author=author[:320],
                        source=source[:20],
                        note=note[:500],
                        digest=digest,
                        text=text,
                    )
                    .returning(plan_revisions.c.id)
                ).scalar_one()
            if new_id is None:
                return None
            r = c.execute(select(plan_revisions).where(plan_revisions.c.id == new_id)).one()
        return _revision(r)
