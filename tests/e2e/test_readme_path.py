"""A person following only the README reaches a working `status`, `preview` and `check`
(issue 19): the README's own commands, run as written, in fresh folders."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def run(
    cwd: Path, command: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``command`` as the README writes it (``session-bot …``, optional VAR=value prefixes)."""
    words = command.split()
    extra = {}
    while words and re.fullmatch(r"SESSION_BOT_[A-Z_]+=\S+", words[0]):
        key, _, value = words.pop(0).partition("=")
        extra[key] = value
    assert words[0] in ("session-bot", ".venv/bin/session-bot"), command
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    return subprocess.run(
        [sys.executable, "-m", "session_bot.cli", *words[1:]],
        cwd=cwd, env={**base, **extra, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def acted_on(out: subprocess.CompletedProcess[str]) -> None:
    """Success, or an error she can act on: one paragraph, no traceback."""
    assert "Traceback" not in out.stdout + out.stderr
    assert out.returncode == 0, out.stdout + out.stderr


def test_after_the_demo_status_preview_and_check_work(tmp_path: Path) -> None:
    assert "make demo" in README
    acted_on(run(tmp_path, "session-bot demo"))  # what `make demo` runs
    look = "SESSION_BOT_VAR_DIR=var/demo session-bot status"
    assert f"`{look}`" in README
    status = run(
        tmp_path, look, env={"SESSION_BOT_PLAN": str(ROOT / "examples" / "willkommen.yaml")}
    )
    acted_on(status)
    assert "eingeladen" in status.stdout
    plain = run(tmp_path, "session-bot status")  # without the prefix it shows the demo too
    acted_on(plain)
    assert "Demo" in plain.stdout


def test_going_live_from_init_reaches_check_status_and_preview(tmp_path: Path) -> None:
    assert re.search(r"^session-bot init\b", README, re.M)
    acted_on(run(tmp_path, "session-bot init"))
    assert (tmp_path / "plan.yaml").exists() and (tmp_path / ".env").exists()
    check = run(tmp_path, "session-bot check")
    acted_on(check)
    assert "ok   plan" in check.stdout
    status = run(tmp_path, "session-bot status")
    acted_on(status)
    first = re.search(r"^\s+(\d{4}-\d\d-\d\d):", (tmp_path / "plan.yaml").read_text(), re.M)
    assert first is not None
    preview = run(tmp_path, f"session-bot preview {first.group(1)}")
    acted_on(preview)
    assert "Guten Tag" in preview.stdout
    # Without Zoom credentials a real run refuses and says what to set (an error she can act on).
    real = run(tmp_path, "session-bot run")
    assert real.returncode == 2 and "SESSION_BOT_ZOOM_ACCOUNT_ID" in real.stderr
    assert "Traceback" not in real.stderr
