"""`session-bot init [DIR]`: a starter plan and `.env` for a new installation.

Only typer and the standard library: `session-bot --help` stays fast. Nothing existing is ever
overwritten; the `.env` (it holds the secret key, later the Zoom and SMTP passwords) is created
readable by its owner only.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import secrets
from pathlib import Path
from typing import Annotated

import typer

from session_bot.cli.common import Echo, shipped

MARK = "ÄNDERN"

STARTER_PLAN = """\
# The series plan. Lines marked {mark} (change) hold placeholders: write your own, then run
# `session-bot check` — it validates the plan and renders every mail before anything is sent.
# A complete example with every option: {example}
series:
  - id: reihe                    # {mark}: a short name for the series (a-z, 0-9, -)
    title: "Titel der Reihe"     # {mark}: the title in every mail and on the subscribe page
    # RFC 5545 RRULE: the last Wednesday of every month (BYDAY=4WE would be the fourth).
    rrule: "FREQ=MONTHLY;BYDAY=-1WE"   # {mark}: when the sessions take place
    starts_on: {starts_on}
    start: "12:30"               # {mark}: local start time
    duration: 60                 # minutes
    timezone: Europe/Berlin
    language: de
    organiser:                   # the sender of every mail; alerts go here too
      name: "Vorname Nachname"           # {mark}
      email: organisation@example.org    # {mark}
    lead:
      invitation_days: 14        # meeting + invitation 14 days before …
      invitation_time: "09:00"   # … at 09:00 local time
      reminder: true
      reminder_days: 1           # reminder the day before …
      reminder_time: "09:00"     # … at 09:00
    holidays:                    # sessions on public holidays of this German state are skipped
      country: DE
      subdiv: SN                 # {mark}: your state (BY, BE, NW, SN, …)
    breaks: [8]                  # months without a session (August)
    exceptions: []               # single dates without a session, e.g. [{year}-12-31]
    texts:
      invitation_lead: "Wir laden herzlich ein zum"
    # One entry per session, keyed by its date: topic, intro paragraphs, speakers. A session
    # whose invitation is due but which has no topic yet is held (and you are alerted).
    sessions:
      {first}:                   # {mark}: the first session's date, topic and speakers
        topic: "Thema der ersten Sitzung"
        intro:
          - >-
            Ein Absatz, worum es geht.
        speakers:
          - name: "Vorname Nachname"
            role: "Rolle"
            organisation: "Organisation"
"""


def _last_wednesday(year: int, month: int) -> dt.date:
    last = dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)
    return last - dt.timedelta(days=(last.weekday() - 2) % 7)


def starter_plan(today: dt.date) -> str:
    """The commented starter plan: one series from next month, its first session filled in."""
    month = dt.date(today.year + today.month // 12, today.month % 12 + 1, 1)
    return STARTER_PLAN.format(
        mark=MARK,
        example=shipped("willkommen.yaml"),
        starts_on=month.isoformat(),
        year=month.year,
        first=_last_wednesday(month.year, month.month).isoformat(),
    )


def starter_env(example: str, plan: str, var_dir: str | None) -> str:
    """``.env.example`` with a new secret key, the plan (and the data folder) filled in."""
    values = {"SESSION_BOT_SECRET_KEY": secrets.token_hex(32), "SESSION_BOT_PLAN": plan}
    if var_dir is not None:
        values["SESSION_BOT_VAR_DIR"] = var_dir
    for name, value in values.items():
        example, found = re.subn(rf"(?m)^{name}=.*$", f"{name}={value}", example, count=1)
        if not found:
            example += f"{name}={value}\n"
    return example


def write_new(path: Path, text: str, mode: int) -> None:
    """Create ``path`` with ``mode``; never replace an existing file (O_EXCL)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        out.write(text)
    os.chmod(path, mode)  # whatever the umask says


def init_installation(folder: Path, echo: Echo, today: dt.date) -> int:
    """Write ``plan.yaml`` and ``.env`` into ``folder``. Returns the exit code."""
    plan, env = folder / "plan.yaml", folder / ".env"
    existing = [p for p in (plan, env) if p.exists()]
    if existing:
        names = " and ".join(str(p) for p in existing)
        typer.secho(
            f"error: {names} already exist{'s' if len(existing) == 1 else ''}; session-bot init "
            "never overwrites a file. Move it away, or edit it instead. Nothing written.",
            err=True,
            fg=typer.colors.RED,
        )
        return 2
    example = shipped(".env.example")
    try:
        env_text = example.read_text(encoding="utf-8")
    except OSError as exc:
        typer.secho(f"error: cannot read {example} ({exc})", err=True, fg=typer.colors.RED)
        return 2
    here = folder.resolve() == Path.cwd().resolve()
    # In the current folder the paths stay relative, as in .env.example; elsewhere they are
    # absolute, so that commands find the plan and the data from wherever they are run.
    plan_setting = "plan.yaml" if here else str(plan.resolve())
    var_setting = None if here else str((folder / "var").resolve())
    folder.mkdir(parents=True, exist_ok=True)
    write_new(plan, starter_plan(today), 0o644)
    write_new(env, starter_env(env_text, plan_setting, var_setting), 0o600)
    echo(f"Wrote {plan} (a starter plan) and {env} (settings with a new secret key; mode 0600).")
    echo("Next steps:")
    echo(f"  1. Edit {plan}: every line marked {MARK} (title, schedule, organiser, first session).")
    echo(
        f"  2. Edit {env}: Zoom (SESSION_BOT_ZOOM_…), mail (SESSION_BOT_SMTP_…) and "
        "SESSION_BOT_PUBLIC_URL; every setting is explained there."
    )
    where = "" if here else f" (in {folder})"
    echo(
        f"  3. session-bot check{where}: validates settings and plan, renders every mail, "
        "tests Zoom and SMTP."
    )
    echo(
        '  4. session-bot organisers add ADDRESS --name "NAME": an account for the '
        "organisers' console."
    )
    return 0


def register(app: typer.Typer) -> None:
    """Add `init` to the session-bot app."""

    @app.command()
    def init(
        folder: Annotated[
            Path, typer.Argument(help="Where to write plan.yaml and .env (default: here).")
        ] = Path("."),
    ) -> None:
        """Start a new installation: a commented plan.yaml and a .env with a new secret key."""
        raise typer.Exit(init_installation(folder, typer.echo, dt.date.today()))
