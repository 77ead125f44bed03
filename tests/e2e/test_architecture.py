"""The import direction is a contract: a deliberate wrong import makes `lint-imports` fail.

Runs import-linter (the same command `make lint` runs) on a copy of the package, once as it is
and once with a core module that imports an adapter.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint(src: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(ROOT / "pyproject.toml")],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    if not LINT_IMPORTS.exists():
        pytest.skip("import-linter is not installed (make dev installs it)")
    src = tmp_path / "src"
    shutil.copytree(
        ROOT / "src" / "session_bot",
        src / "session_bot",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    return src


def test_the_package_keeps_its_import_contracts(package_copy: Path, tmp_path: Path) -> None:
    result = _lint(package_copy, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 kept, 0 broken" in result.stdout


def test_a_core_module_importing_an_adapter_breaks_the_contracts(
    package_copy: Path, tmp_path: Path
) -> None:
    (package_copy / "session_bot" / "core" / "wrong.py").write_text(
        "from session_bot.adapters.db.store import Store\n\n__all__ = ['Store']\n"
    )
    result = _lint(package_copy, tmp_path)
    assert result.returncode != 0
    assert "session_bot.core.wrong -> session_bot.adapters.db.store" in result.stdout
    assert "BROKEN" in result.stdout
