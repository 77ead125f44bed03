"""What the benchmarks share: a quiet plan, a daemon's environment, and a process's CPU time
and memory from /proc.

A leading underscore keeps `make bench` from running it as a benchmark of its own."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

TICKS = os.sysconf("SC_CLK_TCK")


def plan_text() -> str:
    """A plan whose first session is weeks ahead: nothing falls due during a benchmark."""
    day = dt.date.today() + dt.timedelta(days=35)
    day += dt.timedelta(days=(2 - day.weekday()) % 7)
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYDAY=-1WE"
    starts_on: {day.isoformat()}
    start: "12:30"
    timezone: Europe/Berlin
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
"""


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of stat(5)
    return (utime + stime) / TICKS


def busy_seconds() -> float:
    """CPU time the whole machine spent busy since boot (all cores; not idle, not iowait)."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields) - fields[3] - fields[4]) / TICKS


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


# Never contacted: nothing falls due during a benchmark.
_UNREACHABLE_ZOOM = {
    "SESSION_BOT_ZOOM_ACCOUNT_ID": "bench-account",
    "SESSION_BOT_ZOOM_CLIENT_ID": "bench-client",
    "SESSION_BOT_ZOOM_CLIENT_SECRET": "bench-secret-not-used",
    "SESSION_BOT_ZOOM_USER": "organiser@example.org",
    "SESSION_BOT_ZOOM_API_URL": "http://127.0.0.1:9/v2",
    "SESSION_BOT_ZOOM_OAUTH_URL": "http://127.0.0.1:9",
}


def daemon_env(workdir: Path, *, zoom: bool = True, **extra: str) -> dict[str, str]:
    """The environment of a `serve` in ``workdir`` on the quiet plan (written there); ``zoom``:
    credentials for a Zoom nobody calls (off for ``--sandbox``)."""
    (workdir / "plan.yaml").write_text(plan_text(), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    env.update(
        SESSION_BOT_VAR_DIR=str(workdir / "var"),
        SESSION_BOT_PLAN=str(workdir / "plan.yaml"),
        SESSION_BOT_SECRET_KEY="bench-secret-key-0123456789abcdef",
        **(_UNREACHABLE_ZOOM if zoom else {}),
        **extra,
    )
    return env
