"""Shared by the leadership tests: `serve` processes on one PostgreSQL database. No tests here."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx

TOKEN = "admin-token-0123456789abcdef-XYZ"
SECRET = "test-secret-key-0123456789abcdef"
SERVE = [sys.executable, "-m", "session_bot.cli", "serve", "--port", "0"]


def first_wednesday_after(days: int) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days)
    return day + dt.timedelta(days=(2 - day.weekday()) % 7)


def plan_text(first: dt.date, invitation_days: int) -> str:
    """One session (10–16 days ahead); its invitation is due now with ``invitation_days=20``
    and not for a week with ``invitation_days=2``."""
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=WEEKLY;BYDAY=WE"
    starts_on: {first.isoformat()}
    until: {first.isoformat()}
    start: "12:30"
    timezone: Europe/Berlin
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: {invitation_days}
      invitation_time: "09:00"
      reminder: false
    sessions:
      {first.isoformat()}:
        topic: Ankommen in der Kommune
"""


def base_env(tmp_path: Path, name: str, database_url: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    return {
        **env,
        "SESSION_BOT_DATABASE_URL": database_url,
        "SESSION_BOT_VAR_DIR": str(tmp_path / name / "var"),  # one var/ per "machine"
        "SESSION_BOT_PLAN": str(tmp_path / "plan.yaml"),
        "SESSION_BOT_ADMIN_TOKEN": TOKEN,
        "SESSION_BOT_SECRET_KEY": SECRET,
        "SESSION_BOT_PUBLIC_URL": "https://session-bot.example.org",
        **extra,
    }


class Serve:
    """One `serve` process; its JSON log lines are collected with the moment each arrived."""

    def __init__(self, name: str, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.name = name
        (cwd / name).mkdir(exist_ok=True)
        self.proc = subprocess.Popen(
            [*SERVE, "--log-format", "json", "--plan-check", "3600", *args],
            cwd=cwd / name,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, str]] = []  # (time.monotonic() on arrival, line)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self.url = ""

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append((time.monotonic(), line.rstrip("\n")))

    @property
    def pid(self) -> int:
        return self.proc.pid

    def output(self) -> str:
        return "\n".join(line for _, line in list(self.lines))

    def messages(self) -> list[str]:
        out = []
        for _, line in list(self.lines):
            try:
                out.append(str(json.loads(line)["msg"]))
            except (ValueError, KeyError):
                out.append(line)
        return out

    def wait_for_log(self, needle: str, timeout: float = 20) -> tuple[float, str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for at, line in list(self.lines):
                if needle in line:
                    return at, line
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                for at, line in list(self.lines):
                    if needle in line:
                        return at, line
                break
            time.sleep(0.02)
        raise AssertionError(f"{self.name}: no log line with {needle!r}; got:\n{self.output()}")

    def started(self) -> Serve:
        _, line = self.wait_for_log("web: listening on")
        self.url = json.loads(line)["msg"].rsplit(" ", 1)[-1]
        self.wait_for_log("daemon started")
        return self

    def health(self) -> dict[str, Any]:
        body: dict[str, Any] = httpx.get(f"{self.url}/healthz", timeout=5).json()
        return body

    def admin_run(self, timeout: float = 30) -> httpx.Response:
        return httpx.post(
            f"{self.url}/admin/run", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=timeout
        )

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)
