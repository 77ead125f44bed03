"""Checks before anything is done: is this the right database, are the mail addresses usable?

`run`, `serve` and `send` call them before any Zoom call or mail; `session-bot check` reports
them. Below ``wiring`` (which calls them when it opens the store and builds the runner).
"""

from __future__ import annotations

from typing import Literal

from session_bot.adapters.db.store import Store
from session_bot.app.addresses import NAME_MAX, normalise_address
from session_bot.core.errors import ConfigError, InvalidAddress, PlanError
from session_bot.core.plan import Plan
from session_bot.settings import Settings

PURPOSE_KEY = "database.purpose"
Purpose = Literal["live", "demo", "look"]


def check_purpose(store: Store, settings: Settings, purpose: Purpose) -> None:
    marked = store.kv.get(PURPOSE_KEY)
    where = settings.database_display
    if purpose == "live" and marked == "demo":
        raise ConfigError(
            f"the database {where} belongs to `session-bot demo` (its example subscribers and "
            "sandbox meetings); a live command never uses it. Leave SESSION_BOT_VAR_DIR and "
            "SESSION_BOT_DATABASE_URL at their defaults (./var) or choose another folder or "
            f"database for going live; `make clean` removes the demo's data."
        )
    if purpose == "demo" and marked != "demo":
        if store.subscribers.count() or store.sessions.all():
            raise ConfigError(
                f"the database {where} holds subscribers or sessions the demo did not make; the "
                "demo never writes into a live database. Run `session-bot demo` without "
                "--env-file (it keeps its own folder, ./var/demo) or point it at an empty database."
            )
        store.kv.set(PURPOSE_KEY, "demo")


def check_mail_addresses(settings: Settings, plan: Plan) -> None:
    """Every address a mail is sent from or answered to is a plain, valid address — checked
    before a run does anything (a display name here used to fail after the meeting existed)."""
    fix = (
        "write only the address, like organiser@example.org (the name shown comes from the "
        "plan's organiser.name)"
    )
    for name in ("mail_from", "bounce_address"):
        value = getattr(settings, name)
        if value is not None and not _plain_address(value):
            raise ConfigError(
                f"SESSION_BOT_{name.upper()}={value!r} is not a plain e-mail address; {fix}"
            )
    for series in plan.series:
        if len(series.organiser.name) > NAME_MAX:
            # It is every mail's From name: beyond this a header line cannot be folded.
            raise PlanError(
                f"is {len(series.organiser.name)} characters long; at most {NAME_MAX} fit a "
                "sender's name",
                file=plan.source,
                field=f"series[{series.id}].organiser.name",
            )
        for field, value in (
            ("organiser.email", series.organiser.email),
            ("reply_to", series.reply_to),
        ):
            if value is not None and not _plain_address(value):
                raise PlanError(
                    f"{value!r} is not a plain e-mail address; {fix}",
                    file=plan.source,
                    field=f"series[{series.id}].{field}",
                )


def _plain_address(value: str) -> bool:
    try:
        return normalise_address(value) == value.strip() or ("@" in value and " " not in value)
    except InvalidAddress:
        return False
