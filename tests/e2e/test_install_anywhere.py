"""Installed from the wheel and run from an empty folder: `demo`, `init`, and `send` asking first.

The wheel is built from this tree and unpacked into a folder of its own; the commands run with
that folder first on ``sys.path`` (the dependencies come from the test environment), so the
installed copy — not the source checkout — is what they import.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.cli.serve import send_mailing
from session_bot.core.plan import Plan
from tests.conftest import ROOT, SEED_INVITATION_AT
from tests.support.settings import make_settings

RUN = """\
import sys
sys.path.insert(0, sys.argv.pop(1))
import session_bot
assert session_bot.__file__.startswith(sys.path[0]), session_bot.__file__
from session_bot.cli.main import main
sys.argv[0] = "session-bot"
main()
"""


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel's files in a folder of their own (``pip install --target``)."""
    work = tmp_path_factory.mktemp("wheel")
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(work), str(ROOT)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    if built.returncode and "hatchling" in built.stderr:
        pytest.skip(f"cannot fetch the build backend: {built.stderr.strip()[-300:]}")
    assert built.returncode == 0, built.stderr
    wheel = next(work.glob("session_bot-*.whl"))
    site = work / "site"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site),
         str(wheel)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (work / "run.py").write_text(RUN, encoding="utf-8")
    return site


def session_bot(
    site: Path, cwd: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    base.pop("PYTHONPATH", None)
    return subprocess.run(
        [sys.executable, str(site.parent / "run.py"), str(site), *args],
        cwd=cwd, env={**base, **(env or {})}, stdin=subprocess.DEVNULL,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_demo_runs_from_an_empty_folder_on_the_shipped_examples(
    installed: Path, tmp_path: Path
) -> None:
    out = session_bot(installed, tmp_path, "demo")
    assert out.returncode == 0, out.stderr
    shipped = installed / "session_bot" / "examples"
    assert f"Added 5 example subscribers from {shipped / 'subscribers.csv'}." in out.stdout
    assert "Topic:      Akteursübergreifende Zusammenarbeit" in out.stdout
    assert len(list((tmp_path / "var" / "demo" / "outbox" / "new").iterdir())) == 5
    assert sorted(p.name for p in tmp_path.iterdir()) == ["var"]  # nothing but the demo's data


def test_init_writes_a_starter_plan_and_env_and_never_overwrites(
    installed: Path, tmp_path: Path
) -> None:
    out = session_bot(installed, tmp_path, "init")
    assert out.returncode == 0, out.stderr
    plan, env = tmp_path / "plan.yaml", tmp_path / ".env"
    assert stat.S_IMODE(env.stat().st_mode) == 0o600
    settings = env.read_text(encoding="utf-8")
    secret = re.search(r"(?m)^SESSION_BOT_SECRET_KEY=(.*)$", settings)
    assert secret is not None and re.fullmatch(r"[0-9a-f]{64}", secret.group(1))
    assert re.search(r"(?m)^SESSION_BOT_PLAN=plan\.yaml$", settings)
    assert "SESSION_BOT_SMTP_HOST=" in settings  # the rest is .env.example, comments and all
    assert "ÄNDERN" in plan.read_text(encoding="utf-8")
    for step in ("Edit plan.yaml", "Edit .env", "session-bot check", "session-bot organisers add"):
        assert step in out.stdout
    # The starter plan is valid as it stands: `check` gets past plan and templates.
    check = session_bot(installed, tmp_path, "check")
    assert "ok   plan plan.yaml: 1 series" in check.stdout, check.stdout + check.stderr
    assert "ok   templates render" in check.stdout

    before = (plan.read_bytes(), env.read_bytes())
    again = session_bot(installed, tmp_path, "init")
    assert again.returncode == 2
    assert str(plan) in again.stderr or "plan.yaml" in again.stderr
    assert ".env" in again.stderr and "never overwrites" in again.stderr
    assert (plan.read_bytes(), env.read_bytes()) == before


def test_init_into_another_folder_points_at_it(installed: Path, tmp_path: Path) -> None:
    target = tmp_path / "opt" / "session-bot"
    out = session_bot(installed, tmp_path, "init", str(target))
    assert out.returncode == 0, out.stderr
    settings = (target / ".env").read_text(encoding="utf-8")
    assert f"SESSION_BOT_PLAN={target.resolve() / 'plan.yaml'}\n" in settings
    assert f"SESSION_BOT_VAR_DIR={target.resolve() / 'var'}\n" in settings
    (tmp_path / "opt" / "session-bot" / "plan.yaml").unlink()
    refused = session_bot(installed, tmp_path, "init", str(target))
    assert refused.returncode == 2 and ".env already exists" in refused.stderr
    assert not (target / "plan.yaml").exists()  # nothing written when anything is in the way


def test_help_shows_no_type_after_flags(installed: Path, tmp_path: Path) -> None:
    for args in (["--help"], ["run", "--help"], ["send", "--help"]):
        out = session_bot(installed, tmp_path, *args, env={"COLUMNS": "100"})
        assert out.returncode == 0, out.stderr
        assert "<bool>" not in out.stdout
        assert "--help" in out.stdout


def _future_plan(path: Path, day: dt.date) -> None:
    path.write_text(
        f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYMONTHDAY={day.day}"
    starts_on: {day.isoformat()}
    start: "12:30"
    timezone: Europe/Berlin
    organiser: {{name: Kristina Neumann, email: kristina.neumann@example.org}}
    sessions:
      {day.isoformat()}:
        topic: "Ein Thema"
""",
        encoding="utf-8",
    )


def test_send_to_everyone_without_a_terminal_needs_yes(tmp_path: Path) -> None:
    day = dt.date.today() + dt.timedelta(days=40)
    plan = tmp_path / "plan.yaml"
    _future_plan(plan, day)
    store = wiring.open_store(make_settings(tmp_path, plan=plan))
    for address in ("anna@example.org", "ben@example.org"):
        store.subscribers.add(
            address, name=None, language="de", status="confirmed", now=dt.datetime.now(dt.UTC)
        )
    store.close()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
    env.update(SESSION_BOT_VAR_DIR=str(tmp_path / "var"), SESSION_BOT_PLAN=str(plan))
    out = subprocess.run(
        [sys.executable, "-m", "session_bot.cli", "send", day.isoformat(), "--kind",
         "invitation", "--sandbox"],
        cwd=tmp_path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
        timeout=120,
    )  # fmt: skip
    assert out.returncode == 2, out.stdout + out.stderr
    assert "Die Einladung geht an 2 Abonnent:innen" in out.stderr
    assert "add --yes" in out.stderr and "Nichts gesendet" in out.stderr
    assert "Traceback" not in out.stderr
    store = wiring.open_store(make_settings(tmp_path, plan=plan))
    assert store.mailings.delivery_counts().get("sent", 0) == 0
    assert store.sessions.get(f"willkommen/{day.isoformat()}") is None  # not even a meeting
    store.close()
    outbox = tmp_path / "var" / "outbox" / "new"
    assert not outbox.exists() or not any(outbox.iterdir())


def test_the_question_names_the_scheduled_reminder_a_send_replaces(
    tmp_path: Path, example_plan: Plan
) -> None:
    settings = make_settings(tmp_path)
    store = wiring.open_store(settings)
    for address in ("anna@example.org", "ben@example.org", "cem@example.org"):
        store.subscribers.add(
            address, name=None, language="de", status="confirmed", now=SEED_INVITATION_AT
        )
    store.close()
    clock = ManualClock(SEED_INVITATION_AT + dt.timedelta(days=1))
    asked: list[str] = []

    def decline(text: str) -> bool:
        asked.append(text)
        return False

    said: list[str] = []
    for kind in ("reminder", "invitation"):
        code = send_mailing(
            settings, example_plan, "2025-02-26", kind, to=None, clock=clock, echo=said.append,
            confirm=decline,
        )  # fmt: skip
        assert code == 1
    assert asked == [
        "Die Erinnerung geht an 3 Abonnent:innen; die geplante Erinnerung am Dienstag, "
        "25.02.2025 um 09:00 Uhr geht trotzdem hinaus.",
        "Die Einladung geht an 3 Abonnent:innen; die geplante Erinnerung am Dienstag, "
        "25.02.2025 um 09:00 Uhr geht trotzdem hinaus.",
    ]
    assert said == ["Nichts gesendet.", "Nichts gesendet."]
    store = wiring.open_store(settings)
    assert store.sessions.get("willkommen/2025-02-26") is None  # nothing done, no meeting
    store.close()


def _commands(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        command = line.split("  #", 1)[0].strip()
        if command and not command.startswith("#"):
            out.append(command)
    return out


def test_the_readme_and_the_unit_give_the_same_service_steps() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("With systemd", 1)[1].split("```sh\n", 1)[1].split("```", 1)[0]
    header = (ROOT / "deploy" / "session-bot.service").read_text(encoding="utf-8")
    install = header.split("# Install", 1)[1].split("# Operate:", 1)[0].splitlines()[1:]
    steps = _commands([line.removeprefix("#").strip() for line in install])
    assert "install -d -o session-bot -g session-bot -m 0750 var" in steps
    assert _commands(block.splitlines())[: len(steps)] == steps
    assert "ReadWritePaths=/opt/session-bot/var" in header
