"""What every command shares: the option types, loading settings, failing with exit code 2.

Only typer and the standard library at the top: `session-bot --help` stays fast.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn

import typer

from session_bot.core.errors import SessionBotError

if TYPE_CHECKING:
    from session_bot.adapters.lock import RunLock
    from session_bot.core.plan import Plan
    from session_bot.settings import Settings

Echo = Callable[[str], None]
EXAMPLE_NOW = "2025-02-12T09:00:00+01:00"

EnvFile = Annotated[Path, typer.Option("--env-file", help="Settings file (python-dotenv format).")]
PlanOpt = Annotated[
    Path | None, typer.Option("--plan", help="Plan file (default: SESSION_BOT_PLAN).")
]


def shipped(name: str) -> Path:
    """A file shipped with session-bot: ``examples/<name>`` inside the wheel (``.env.example``
    too), else the source checkout's ``examples/<name>`` or top-level ``<name>``."""
    package = Path(__file__).resolve().parents[1]
    root = package.parents[1]
    for candidate in (package / "examples" / name, root / "examples" / name, root / name):
        if candidate.is_file():
            return candidate
    return package / "examples" / name  # missing: the error then names where it should be


def _flags_show_no_type() -> None:
    """Typer's rich help prints the value type after every option, ``<bool>`` after flags (and
    ``--help``) too, though a flag takes no value: show none for flags."""
    from typer.core import TyperOption

    shown = getattr(TyperOption, "display_type_rich", None)
    if shown is None or getattr(shown, "flags_show_no_type", False):
        return

    def display_type_rich(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag else shown(self, ctx)

    display_type_rich.flags_show_no_type = True  # type: ignore[attr-defined]
    TyperOption.display_type_rich = display_type_rich  # type: ignore[method-assign]


_flags_show_no_type()


def load(env_file: Path, **overrides: Any) -> Settings:
    """Settings from the environment and ``env_file`` (if it exists); an override of None is
    "not given". Sets up logging as the settings say."""
    from session_bot.logs import setup_logging
    from session_bot.settings import load_settings

    settings = load_settings(
        env_file if env_file.exists() else None,
        **{k: v for k, v in overrides.items() if v is not None},
    )
    setup_logging(settings.log_format)
    return settings


def load_plan(settings: Settings, path: Path | None) -> Plan:
    """The plan in force: ``--plan``, a configured SESSION_BOT_PLAN, else the database's newest
    revision if it has one, else plan.yaml (``session_bot.plan_source``)."""
    from session_bot import plan_source

    return plan_source.load(settings, path)


def parse_now(value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not an ISO date-time like {EXAMPLE_NOW}") from None
    if moment.tzinfo is None:
        raise typer.BadParameter("give a UTC offset, e.g. 2025-02-12T09:00:00+01:00")
    return moment


def clock_at(now: dt.datetime | None) -> Callable[[], dt.datetime]:
    """The real clock, or one that starts at ``now`` and runs on (testing, the demo)."""
    from session_bot.adapters.clock import ShiftedClock, system_clock

    return ShiftedClock(now) if now is not None else system_clock


def fail(err: SessionBotError) -> NoReturn:
    """The user's error as one red line on stderr, exit code 2; never a traceback."""
    typer.secho(f"error: {err}", err=True, fg=typer.colors.RED)
    raise typer.Exit(err.exit_code)


def wait_for_run_lock(settings: Settings, echo: Echo) -> RunLock:
    """The run lock; if another run holds it, say so and wait up to SESSION_BOT_LOCK_TIMEOUT.

    On PostgreSQL the lock is database-wide: the run waits for the leader's run on any host."""
    from session_bot import wiring
    from session_bot.core.errors import LockBusy

    lock = wiring.run_lock(settings)
    try:
        return lock.acquire(timeout=0)
    except LockBusy:
        echo(
            f"Another session-bot run is active (the daemon?); waiting up to "
            f"{settings.lock_timeout:.0f} s for it to finish …"
        )
        return lock.acquire(timeout=settings.lock_timeout)
