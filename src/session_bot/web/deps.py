"""What web routes need, reached through ``Depends`` so tests swap it without patching."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, Request

from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import Transport
from session_bot.core.plan import Plan
from session_bot.settings import Settings


@dataclass
class WebContext:
    """Everything the web app uses; built once by the daemon (or a test) and put on app.state."""

    settings: Settings
    store: Store
    clock: Callable[[], dt.datetime]
    plan: Callable[[], Plan]  # the current plan (reloaded by the daemon on change)
    transport: Callable[[], Transport]  # a transport for single mails (confirmations, alerts)
    secret_key: str
    # Triggers a reconcile run (the daemon's runner, under its lock); returns a summary dict.
    # Where the daemon cannot run now (a standby, a run in progress) it answers at once and
    # leaves a run request that the leader answers within seconds.
    trigger_run: Callable[[str], dict[str, Any]] | None = None
    role: str = "leader"  # leader | standby (PostgreSQL) — shown by /healthz


def get_context(request: Request) -> WebContext:
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(get_context)]
