"""`session-bot deliver`: push open mailings, alone or as one of several parallel workers.

Each worker claims its rows with ``FOR UPDATE SKIP LOCKED`` (PostgreSQL), so any number of them —
several processes here, or on several machines — send every recipient once; the rate limits are
counted in the database and hold for all of them together.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.app.delivery import DeliveryReport
from session_bot.cli.common import load
from session_bot.core.errors import ConfigError
from session_bot.core.plan import Plan
from session_bot.settings import Settings


def deliver_open_mailings(
    settings: Settings, plan: Plan, worker: str, *, progress: bool = False
) -> DeliveryReport:
    """Deliver every open mailing's due rows in this process (no Zoom call is ever made)."""
    store = wiring.open_store(settings)
    runner = wiring.build_runner(settings, plan, store, None, system_clock, progress=progress)
    runner.worker = worker
    report = DeliveryReport()
    try:
        for mailing in store.mailings.open():
            report.add(runner.deliver(mailing))
    finally:
        runner.transport.close()
        store.close()
    return report


def worker_name(index: int | None = None) -> str:
    base = f"{socket.gethostname()}:{os.getpid()}"
    return base if index is None else f"{base}:{index}"


def run_workers(workers: int, plan_path: Path, env_file: Path, echo: Callable[[str], None]) -> int:
    """Start ``workers`` `session-bot deliver` processes and wait for them; the worst exit code."""
    if workers < 1 or workers > 64:
        raise ConfigError("--workers takes 1 to 64")
    cmd = [sys.executable, "-m", "session_bot.cli.main", "deliver", "--workers", "1", "--part"]
    cmd += ["--plan", str(plan_path), "--env-file", str(env_file)]
    procs = [subprocess.Popen(cmd) for _ in range(workers)]
    codes = [p.wait() for p in procs]
    echo(f"{workers} worker(s) finished with exit codes {codes}")
    # What one worker saw in flight may have been another's: only the end state says what is owed.
    owed = owed_messages(load(env_file))
    if owed:
        echo(f"Not done: {owed} message(s) not delivered yet; `session-bot status` shows them.")
    return max([*codes, 1 if owed else 0])


def owed_messages(settings: Settings) -> int:
    store = wiring.open_store(settings)
    try:
        return sum(
            counts.get("pending", 0) + counts.get("sending", 0)
            for counts in (store.mailings.delivery_counts(m.id) for m in store.mailings.open())
        )
    finally:
        store.close()
