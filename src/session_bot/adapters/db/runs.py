"""The ``runs`` table: each run's trigger, start, end and outcome."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, select, update

from session_bot.adapters.db.database import Database
from session_bot.adapters.db.schema import runs


class RunRepository:
    def __init__(self, db: Database) -> None:
        self._db = db

    def start(self, trigger: str, now: dt.datetime) -> int:
        with self._db.begin() as c:
            return int(
                c.execute(
                    insert(runs).values(trigger=trigger, started_at=now).returning(runs.c.id)
                ).scalar_one()
            )

    def finish(
        self,
        run_id: int,
        now: dt.datetime,
        outcome: str,
        summary: str,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        counts_json = json.dumps(dict(counts), sort_keys=True) if counts is not None else None
        with self._db.begin() as c:
            c.execute(
                update(runs)
                .where(runs.c.id == run_id)
                .values(finished_at=now, outcome=outcome, summary=summary, counts_json=counts_json)
            )

    def last(self) -> dict[str, Any] | None:
        with self._db.connect() as c:
            r = c.execute(select(runs).order_by(runs.c.id.desc()).limit(1)).first()
        return _row(dict(r._mapping)) if r else None


def _row(row: dict[str, Any]) -> dict[str, Any]:
    """A run with ``counts`` (None for runs recorded before the counts were kept)."""
    text = row.pop("counts_json", None)
    row["counts"] = json.loads(text) if text else None
    return row
