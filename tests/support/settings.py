"""One settings factory: embedded defaults inside a test's tmp_path; no .env is read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from session_bot.settings import Settings, load_settings

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_PLAN = ROOT / "examples" / "willkommen.yaml"
SECRET_KEY = "test-secret-key-0123456789abcdef"
PUBLIC_URL = "https://session-bot.example.org"


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "var_dir": tmp_path / "var",
        "plan": EXAMPLE_PLAN,
        "secret_key": SECRET_KEY,
        "public_url": PUBLIC_URL,
        **overrides,
    }
    return load_settings(None, **values)
