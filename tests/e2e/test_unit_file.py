"""deploy/session-bot.service passes systemd's own check (issue 19): `systemd-analyze verify`
on a copy whose /opt/session-bot is a folder laid out as the README's service steps make it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ANALYZE = shutil.which("systemd-analyze")


@pytest.mark.skipif(ANALYZE is None, reason="needs Debian's systemd (systemd-analyze)")
def test_the_unit_file_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    home = tmp_path / "opt-session-bot"
    (home / ".venv" / "bin").mkdir(parents=True)
    (home / "var").mkdir()
    (home / ".env").write_text("")
    (home / ".venv" / "bin" / "session-bot").symlink_to(Path(sys.executable).parent / "session-bot")
    unit = (ROOT / "deploy" / "session-bot.service").read_text(encoding="utf-8")
    assert "/opt/session-bot" in unit
    copy = tmp_path / "session-bot.service"
    copy.write_text(unit.replace("/opt/session-bot", str(home)), encoding="utf-8")
    assert ANALYZE is not None
    out = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert out.stderr.strip() == "", out.stderr  # no warning either


@pytest.mark.skipif(ANALYZE is None, reason="needs Debian's systemd (systemd-analyze)")
def test_a_broken_unit_file_is_caught(tmp_path: Path) -> None:
    """The check above can fail: a typo in a directive is reported."""
    copy = tmp_path / "session-bot.service"
    copy.write_text("[Service]\nExecStrat=/bin/true\nType=simple\n", encoding="utf-8")
    assert ANALYZE is not None
    out = subprocess.run(
        [ANALYZE, "verify", "--man=no", str(copy)], capture_output=True, text=True, timeout=60
    )
    assert "ExecStrat" in out.stderr
