"""A real `session-bot serve` process for browser tests: started with an environment, awaited
until it answers, stopped with SIGTERM (killed if it hangs)."""

from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]
# The daemon as the CLI serves it; register() is idempotent once cli.py mounts the command.
SERVE = (
    "import sys; from session_bot.cli.main import app; from session_bot.cli.serve import register; "
    "register(app); sys.exit(app())"
)


@contextmanager
def serve_process(
    args: list[str], env: dict[str, str], log_path: Path, up: Callable[[], bool]
) -> Iterator[subprocess.Popen[bytes]]:
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVE, "serve", *args],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            wait_for(lambda: up() or proc.poll() is not None, "the daemon to listen")
            assert proc.poll() is None, log_path.read_text()
            yield proc
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
