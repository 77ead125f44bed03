"""`session-bot serve --sandbox` as a real process: SIGHUP after a plan edit, SIGTERM, one instance.

The process runs on the real clock, so the plan is built around today: a weekly series whose
first session is a Wednesday at least a month ahead (nothing is due while the test runs).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest

from session_bot.adapters.lock import FileLock

BERLIN = ZoneInfo("Europe/Berlin")
TOKEN = "admin-token-0123456789abcdef-XYZ"
SECRET = "test-secret-key-0123456789abcdef"
SERVE = [sys.executable, "-m", "session_bot.cli", "serve", "--sandbox", "--port", "0"]


def first_wednesday_after(days: int) -> dt.date:
    day = dt.date.today() + dt.timedelta(days=days)
    return day + dt.timedelta(days=(2 - day.weekday()) % 7)


def plan_text(first: dt.date, invitation_time: str) -> str:
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=WEEKLY;BYDAY=WE"
    starts_on: {first.isoformat()}
    start: "12:30"
    timezone: Europe/Berlin
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 14
      invitation_time: "{invitation_time}"
"""


class Serve:
    """One `serve` process, its log lines collected by a thread."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.proc = subprocess.Popen(
            [*SERVE, *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in list(self.lines)]

    def wait_for_log(self, needle: str, timeout: float = 20) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.proc.poll() is not None:
                self._reader.join(timeout=2)
                break
            time.sleep(0.05)
        raise AssertionError(f"no log line with {needle!r}; got:\n" + "\n".join(self.lines))

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=10)
        self._reader.join(timeout=5)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    return {
        **base,
        "SESSION_BOT_VAR_DIR": str(tmp_path / "var"),
        "SESSION_BOT_PLAN": str(tmp_path / "plan.yaml"),
        "SESSION_BOT_ADMIN_TOKEN": TOKEN,
        "SESSION_BOT_SECRET_KEY": SECRET,
        "SESSION_BOT_PUBLIC_URL": "https://session-bot.example.org",
    }


@pytest.fixture
def daemon(tmp_path: Path, env: dict[str, str]) -> Iterator[tuple[Serve, str, dt.date]]:
    first = first_wednesday_after(35)
    (tmp_path / "plan.yaml").write_text(plan_text(first, "09:00"), encoding="utf-8")
    serve = Serve(tmp_path, env, "--log-format", "json", "--plan-check", "3600")
    try:
        line = serve.wait_for_log("web: listening on")
        url = json.loads(line)["msg"].rsplit(" ", 1)[-1]
        serve.wait_for_log("next due:")
        yield serve, url, first
    finally:
        serve.stop()


def next_due(url: str) -> dt.datetime:
    body = httpx.get(f"{url}/healthz", timeout=5).json()
    assert body["ok"] is True
    return dt.datetime.fromisoformat(body["next_due"])


def test_sighup_after_a_plan_edit_rebuilds_the_jobs_and_sigterm_exits_0(
    tmp_path: Path, daemon: tuple[Serve, str, dt.date]
) -> None:
    serve, url, first = daemon
    invite_day = first - dt.timedelta(days=14)
    assert next_due(url) == dt.datetime.combine(invite_day, dt.time(9, 0), BERLIN)

    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text(first, "10:15"), encoding="utf-8")
    assert next_due(url) == dt.datetime.combine(invite_day, dt.time(9, 0), BERLIN)  # not yet
    serve.proc.send_signal(signal.SIGHUP)
    serve.wait_for_log("plan reloaded (SIGHUP)")
    assert next_due(url) == dt.datetime.combine(invite_day, dt.time(10, 15), BERLIN)
    serve.wait_for_log(f"next due: {invite_day.isoformat()}T10:15:00+")
    serve.wait_for_log("jobs rebuilt")

    r = httpx.post(f"{url}/admin/run", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    assert r.status_code == 200 and r.json()["trigger"] == "admin"
    assert httpx.get(f"{url}/admin/run", timeout=5).status_code == 405

    serve.proc.send_signal(signal.SIGTERM)
    assert serve.proc.wait(timeout=30) == 0
    serve.stop()
    records = serve.records()  # --log-format json: every line is one JSON object
    assert any(r["msg"] == "SIGTERM: stopping after the message in flight" for r in records)
    assert records[-1]["msg"] == "daemon stopped"
    output = "\n".join(serve.lines)
    assert TOKEN not in output and SECRET not in output
    # The instance lock went with the process.
    FileLock(tmp_path / "var" / "daemon.lock", "daemon").acquire(timeout=0).release()


def test_a_second_serve_on_the_same_database_is_refused(
    tmp_path: Path, env: dict[str, str], daemon: tuple[Serve, str, dt.date]
) -> None:
    serve, url, _ = daemon
    second = subprocess.run(
        SERVE, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60
    )
    assert second.returncode == 2
    assert "another `session-bot serve` is already running on this database" in second.stderr
    assert f"pid {serve.proc.pid}" in second.stderr
    assert "Traceback" not in second.stderr
    assert httpx.get(f"{url}/healthz", timeout=5).json()["ok"] is True  # the first is unharmed
    assert serve.proc.poll() is None


def test_serve_without_zoom_credentials_and_without_sandbox_refuses(
    tmp_path: Path, env: dict[str, str]
) -> None:
    (tmp_path / "plan.yaml").write_text(
        plan_text(first_wednesday_after(35), "09:00"), encoding="utf-8"
    )
    out = subprocess.run(
        [sys.executable, "-m", "session_bot.cli", "serve", "--port", "0"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 2
    assert "No Zoom credentials are set" in out.stderr
    assert "serve --sandbox" in out.stderr
