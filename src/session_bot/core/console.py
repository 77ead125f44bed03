"""The organisers' console as data: accounts, their signed-in sessions, the audit trail."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass


@dataclass(frozen=True)
class Organiser:
    id: int
    email: str
    name: str | None
    password_hash: str | None
    created_at: dt.datetime
    password_set_at: dt.datetime | None
    last_sign_in_at: dt.datetime | None

    @property
    def shown(self) -> str:
        return f"{self.name} <{self.email}>" if self.name else self.email


@dataclass(frozen=True)
class ConsoleSession:
    """One signed-in browser: the organiser, the form token it must send back, its age."""

    organiser: Organiser
    csrf: str
    created_at: dt.datetime
    last_seen_at: dt.datetime


@dataclass(frozen=True)
class AuditEntry:
    at: dt.datetime
    actor: str
    action: str
    detail: str
    client: str | None
