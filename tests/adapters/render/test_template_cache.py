"""The template environment is kept between mailings (``adapters.render.templates``), and an
override file added, edited or removed is still seen by the next renderer."""

from __future__ import annotations

import os
from pathlib import Path

from session_bot.adapters.render.templates import Templates

NAME = "de/probe.txt"


def test_a_renderer_compiles_once_and_sees_every_change_of_the_overrides(tmp_path: Path) -> None:
    first, second = Templates(tmp_path), Templates(tmp_path)
    assert first.env is second.env  # nothing changed: the compiled templates are shared

    override = tmp_path / NAME
    override.parent.mkdir(parents=True)
    override.write_text("Neu: {{ 1 + 1 }}", encoding="utf-8")
    added = Templates(tmp_path)
    assert added.env is not first.env
    assert added.render(NAME, {}) == "Neu: 2"

    override.write_text("Geändert: {{ 2 + 2 }}", encoding="utf-8")
    os.utime(override, ns=(0, override.stat().st_mtime_ns + 1_000_000))
    assert Templates(tmp_path).render(NAME, {}) == "Geändert: 4"

    override.unlink()
    assert Templates(tmp_path).env is first.env
