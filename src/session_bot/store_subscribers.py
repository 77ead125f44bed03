"""Queries on subscribers (a mixin of ``Store``)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    Engine,
    func,
    insert,
    select,
)

from session_bot.schema import subscribers


class SubscriberQueries:
    """Subscriber rows; the consent workflow lives in ``subscribers.py``."""

    engine: Engine

    # --- subscribers (the subscribers module adds the consent workflow on top) ---------------
    def add_subscriber(
        self,
        email: str,
        *,
        name: str | None,
        language: str,
        status: str,
        now: dt.datetime,
        **consent: Any,
    ) -> int:
        with self.engine.begin() as c:
            return int(
                c.execute(
                    insert(subscribers).values(
                        email=email,
                        email_key=email.lower(),
                        name=name,
                        language=language,
                        status=status,
                        created_at=now,
                        updated_at=now,
                        hard_bounces=0,
                        **consent,
                    )
                ).inserted_primary_key[0]
            )

    def get_subscriber(self, email: str) -> dict[str, Any] | None:
        with self.engine.connect() as c:
            r = c.execute(
                select(subscribers).where(subscribers.c.email_key == email.lower())
            ).first()
        return dict(r._mapping) if r else None

    def count_subscribers(self, status: str | None = None) -> int:
        q = select(func.count()).select_from(subscribers)
        if status:
            q = q.where(subscribers.c.status == status)
        with self.engine.connect() as c:
            return int(c.execute(q).scalar_one())
