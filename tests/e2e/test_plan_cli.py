"""`session-bot plan …`: the plan kept in the database, for those who keep it as a file too."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import EXAMPLE_PLAN
from tests.e2e.test_cli import cli

ENV = {"SESSION_BOT_VAR_DIR": "var"}


def test_import_then_export_round_trips_the_example_plan(tmp_path: Path) -> None:
    out = cli(tmp_path, "plan", "import", str(EXAMPLE_PLAN), env=ENV)
    assert out.returncode == 0, out.stderr
    assert "revision 1" in out.stdout
    exported = cli(tmp_path, "plan", "export", env=ENV)
    assert exported.returncode == 0
    assert exported.stdout == EXAMPLE_PLAN.read_text(encoding="utf-8")
    again = cli(tmp_path, "plan", "import", str(EXAMPLE_PLAN), env=ENV)
    assert "already this file" in again.stdout
    assert cli(tmp_path, "plan", "history", env=ENV).stdout.count("imported from") == 1


def test_without_a_plan_file_the_databases_plan_is_in_force(tmp_path: Path) -> None:
    changed = tmp_path / "changed.yaml"
    changed.write_text(
        EXAMPLE_PLAN.read_text(encoding="utf-8").replace(
            "Arbeitsmarktintegration von Geflüchteten:", "Arbeit und Ausbildung:"
        ),
        encoding="utf-8",
    )
    assert cli(tmp_path, "plan", "import", str(EXAMPLE_PLAN), env=ENV).returncode == 0
    assert cli(tmp_path, "plan", "import", str(changed), env=ENV).returncode == 0
    check = cli(tmp_path, "check", env=ENV)
    assert "plan database:2" in check.stdout, check.stdout + check.stderr
    diff = cli(tmp_path, "plan", "diff", "1", env=ENV)
    assert "-          Arbeitsmarktintegration von Geflüchteten:" in diff.stdout
    assert "+          Arbeit und Ausbildung:" in diff.stdout
    restored = cli(tmp_path, "plan", "restore", "1", env=ENV)
    assert restored.returncode == 0 and "as revision 3" in restored.stdout
    assert cli(tmp_path, "plan", "export", env=ENV).stdout == EXAMPLE_PLAN.read_text("utf-8")
    # A configured plan file wins over the database (today's workflow).
    own = cli(tmp_path, "check", env={**ENV, "SESSION_BOT_PLAN": str(changed)})
    assert f"plan {changed}" in own.stdout


def test_a_broken_file_is_refused_with_its_line_and_nothing_is_stored(tmp_path: Path) -> None:
    assert cli(tmp_path, "plan", "import", str(EXAMPLE_PLAN), env=ENV).returncode == 0
    broken = tmp_path / "broken.yaml"
    broken.write_text(
        EXAMPLE_PLAN.read_text(encoding="utf-8").replace('start: "12:30"', 'start: "12.30"'),
        encoding="utf-8",
    )
    out = cli(tmp_path, "plan", "import", str(broken), env=ENV)
    assert out.returncode == 2
    assert f"{broken}:10: series[willkommen].start" in out.stderr and "12:30" in out.stderr
    assert "Traceback" not in out.stderr
    assert cli(tmp_path, "plan", "history", env=ENV).stdout.count("imported") == 1


def test_export_does_not_overwrite_a_file(tmp_path: Path) -> None:
    assert cli(tmp_path, "plan", "import", str(EXAMPLE_PLAN), env=ENV).returncode == 0
    target = tmp_path / "mine.yaml"
    target.write_text("keep me", encoding="utf-8")
    out = cli(tmp_path, "plan", "export", "--output", str(target), env=ENV)
    assert out.returncode == 2 and target.read_text(encoding="utf-8") == "keep me"


def test_updates_list_says_when_nothing_waits(tmp_path: Path) -> None:
    assert cli(tmp_path, "plan", "import", str(EXAMPLE_PLAN), env=ENV).returncode == 0
    out = cli(tmp_path, "updates", "list", env=ENV)
    assert out.returncode == 0 and "Keine Änderung wartet" in out.stdout
    wrong = cli(tmp_path, "updates", "dismiss", "2025-02-30", env=ENV)
    assert wrong.returncode == 2 and "2025-03-26" in wrong.stderr
