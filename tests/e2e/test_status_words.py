"""Issue 19: `status` and `preview` as the organiser reads them — German first, local times with
weekdays, states and reasons in words; right after `make demo` too."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.conftest import EXAMPLE_PLAN, ROOT
from tests.e2e.test_cli import SUBSCRIBERS, cli

CANCELLED = (
    "    sessions:\n      2025-02-26:\n",
    "    sessions:\n      2025-02-26:\n        cancelled: true\n"
    "        reason: Die Referentin ist erkrankt.\n",
)


@pytest.fixture
def after_demo(tmp_path: Path) -> Path:
    """A folder as `make demo` leaves it: ./examples, and ./var/demo with the demo's database."""
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    demo = cli(tmp_path, "demo")
    assert demo.returncode == 0, demo.stderr
    return tmp_path


def test_status_right_after_the_demo_shows_the_demo_in_words(after_demo: Path) -> None:
    out = cli(after_demo, "status")
    assert out.returncode == 0, out.stderr
    text = out.stdout
    assert "Dies ist die Demo (./var/demo)" in text
    assert "Stand: Mittwoch, 12. Februar 2025, 09:00 Uhr (Europe/Berlin)" in text
    assert "  Mittwoch, 26. Februar 2025, 12:30 Uhr: eingeladen" in text
    assert "Einladung am Mittwoch, 12. Februar 2025, 09:00 Uhr (an 5 verschickt)" in text
    assert "Erinnerung am Dienstag, 25. Februar 2025, 09:00 Uhr" in text
    assert (
        "Einladung an 5 Abonnent:innen am Mittwoch, 12. März 2025, 09:00 Uhr "
        "für den Termin am Mittwoch, 26. März 2025"
    ) in text
    assert "Letzter Lauf: Mittwoch, 12. Februar 2025, 09:00 Uhr (Demo) – erfolgreich" in text
    for jargon in ("frozen", "adopted", "sequence", "+00:00", "mailing"):
        assert jargon not in text

    english = cli(after_demo, "status", "--language", "en")
    assert english.returncode == 0, english.stderr
    assert "This is the demo (./var/demo)" in english.stdout
    assert "  Wednesday, 26 February 2025, 12:30: invited" in english.stdout
    assert "Invitation to 5 subscribers on Wednesday, 12 March 2025, 09:00" in english.stdout

    # The JSON stays machine-readable.
    data = cli(after_demo, "status", "--json")
    assert '"state": "invited"' in data.stdout and '"next_steps"' in data.stdout


def test_status_without_a_plan_or_demo_plan_says_how_to_look_at_the_demo(
    after_demo: Path,
) -> None:
    shutil.rmtree(after_demo / "examples")
    out = cli(after_demo, "status", env={"SESSION_BOT_VAR_DIR": "var"})
    # The shipped example plan stands in when ./examples is gone (installed from the wheel).
    if out.returncode == 0:
        assert "Dies ist die Demo" in out.stdout
    else:
        assert out.returncode == 2
        assert "SESSION_BOT_VAR_DIR=var/demo" in out.stderr


def test_status_names_a_cancelled_session_with_its_reason(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(EXAMPLE_PLAN.read_text().replace(*CANCELLED, 1))
    out = cli(tmp_path, "status", "--now", "2025-02-13T09:00:00+01:00", "--plan", str(plan))
    assert out.returncode == 0, out.stderr
    assert "Mittwoch, 26. Februar 2025, 12:30 Uhr: abgesagt – Die Referentin ist erkrankt." in (
        out.stdout
    )
    assert "  Mittwoch, 27. August 2025: entfällt – Pause im August" not in out.stdout  # >120 d


def test_status_names_skipped_dates_with_their_reason(tmp_path: Path) -> None:
    out = cli(tmp_path, "status", "--now", "2025-07-01T09:00:00+02:00",
              "--plan", str(EXAMPLE_PLAN))  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "  Mittwoch, 27. August 2025: entfällt – Pause im August" in out.stdout
    english = cli(tmp_path, "status", "--now", "2025-07-01T09:00:00+02:00", "--language", "en",
                  "--plan", str(EXAMPLE_PLAN))  # fmt: skip
    assert "  Wednesday, 27 August 2025: skipped – break in August" in english.stdout


def test_preview_of_a_break_month_says_why_and_renders_nothing(tmp_path: Path) -> None:
    out = cli(tmp_path, "preview", "2025-08-27", "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 2
    assert "Am Mittwoch, 27. August 2025 findet kein Termin statt: Pause im August" in out.stderr
    assert out.stdout == ""
    english = cli(tmp_path, "preview", "2025-08-27", "--language", "en",
                  "--plan", str(EXAMPLE_PLAN))  # fmt: skip
    assert english.returncode == 2
    assert "There is no session on Wednesday, 27 August 2025: break in August" in english.stderr


def test_preview_of_a_cancelled_session_shows_the_cancellation(tmp_path: Path) -> None:
    plan = tmp_path / "plan.yaml"
    plan.write_text(EXAMPLE_PLAN.read_text().replace(*CANCELLED, 1))
    out = cli(tmp_path, "preview", "2025-02-26", "--plan", str(plan))
    assert out.returncode == 0, out.stderr
    assert "Dieser Termin ist abgesagt (Grund: Die Referentin ist erkrankt.)" in out.stderr
    assert "absagen" in out.stdout and "Die Referentin ist erkrankt." in out.stdout


def test_preview_text_has_the_greeting_and_takes_a_language(tmp_path: Path) -> None:
    german = cli(tmp_path, "preview", "2025-02-26", "--plan", str(EXAMPLE_PLAN))
    assert german.returncode == 0, german.stderr
    assert german.stdout.lstrip().startswith("Guten Tag,")
    english = cli(tmp_path, "preview", "2025-02-26", "--language", "en",
                  "--plan", str(EXAMPLE_PLAN))  # fmt: skip
    assert english.returncode == 0, english.stderr
    assert english.stdout.startswith("Hello,") and "Wednesday, February 26, 2025" in english.stdout
    assert "Mittwoch" not in english.stdout


def test_preview_of_a_session_without_a_topic_says_it_is_held(tmp_path: Path) -> None:
    out = cli(tmp_path, "preview", "2025-07-30", "--plan", str(EXAMPLE_PLAN))
    assert out.returncode == 0, out.stderr
    assert "noch kein Thema im Plan" in out.stderr


def test_subscribers_of_the_demo_are_counted_in_words(after_demo: Path) -> None:
    out = cli(after_demo, "status")
    assert "Abonnent:innen: 0 unbestätigt, 5 bestätigt, 0 abgemeldet, 0 unzustellbar" in out.stdout
    assert SUBSCRIBERS.exists()
