"""`session-bot check` fails what a run would fail on or what would embarrass the organiser, and
`run` refuses the same before it sends anything (issue 14, findings 5 and 8)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from session_bot.adapters.mail import MaildirTransport
from session_bot.core.errors import MailError
from session_bot.sandbox.zoom import ZoomSandbox
from tests.conftest import EXAMPLE_PLAN, ROOT, SEED_MEETING
from tests.e2e.test_cli import cli
from tests.support.smtp_server import SmtpServer

INVITATION_MOMENT = "2025-02-12T09:00:00+01:00"
LEGAL = {
    "SESSION_BOT_IMPRINT_URL": "https://willkommen.example.org/impressum",
    "SESSION_BOT_PRIVACY_URL": "https://willkommen.example.org/datenschutz",
}


def _zoom(sandbox: ZoomSandbox) -> dict[str, str]:
    return {
        "SESSION_BOT_ZOOM_API_URL": sandbox.api_url,
        "SESSION_BOT_ZOOM_OAUTH_URL": sandbox.oauth_url,
        "SESSION_BOT_ZOOM_ACCOUNT_ID": "acc",
        "SESSION_BOT_ZOOM_CLIENT_ID": "cid",
        "SESSION_BOT_ZOOM_CLIENT_SECRET": "sec-ret-value-456",
        "SESSION_BOT_ZOOM_USER": "organiser@example.org",
        "SESSION_BOT_PUBLIC_URL": "https://willkommen.example.org",
    }


def _plan(tmp_path: Path, old: str, new: str) -> Path:
    text = EXAMPLE_PLAN.read_text(encoding="utf-8")
    assert old in text
    plan = tmp_path / "plan.yaml"
    plan.write_text(text.replace(old, new, 1), encoding="utf-8")
    return plan


def _failures(out: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in out.stdout + out.stderr
    return [line for line in out.stdout.splitlines() if line.startswith("FAIL")]


def test_live_zoom_with_a_loopback_public_url_and_no_smtp_fails(tmp_path: Path) -> None:
    env = {
        "SESSION_BOT_ZOOM_ACCOUNT_ID": "acc",
        "SESSION_BOT_ZOOM_CLIENT_ID": "cid",
        "SESSION_BOT_ZOOM_CLIENT_SECRET": "sec-ret-value-456",
        "SESSION_BOT_ZOOM_USER": "host@example.org",
        "SESSION_BOT_PUBLIC_URL": "http://127.0.0.1:8080",
    }
    out = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env=env)
    assert out.returncode == 2
    failures = _failures(out)
    assert any(
        f.startswith("FAIL public URL: SESSION_BOT_PUBLIC_URL=http://127.0.0.1:8080")
        for f in failures
    )
    assert any(f.startswith("FAIL mail: Zoom is live but no SMTP server is set") for f in failures)


def test_smtp_with_a_loopback_public_url_fails_and_a_real_one_passes(tmp_path: Path) -> None:
    with SmtpServer() as smtp:
        env = {
            "SESSION_BOT_SMTP_HOST": smtp.host,
            "SESSION_BOT_SMTP_PORT": str(smtp.port),
            "SESSION_BOT_SMTP_TLS": "none",
            "SESSION_BOT_PUBLIC_URL": "http://localhost:8080",
        }
        bad = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env=env)
        good = cli(
            tmp_path, "check", "--plan", str(EXAMPLE_PLAN),
            env={**env, **LEGAL, "SESSION_BOT_PUBLIC_URL": "https://willkommen.example.org"},
        )  # fmt: skip
    assert bad.returncode == 2 and [f[:15] for f in _failures(bad)] == ["FAIL public URL"]
    assert good.returncode == 0, good.stdout + good.stderr
    assert "ok   SMTP" in good.stdout
    assert not [line for line in good.stdout.splitlines() if line.startswith("warn")]


def test_a_public_deployment_without_imprint_and_privacy_notice_is_warned_about(
    tmp_path: Path,
) -> None:
    with SmtpServer() as smtp:
        env = {
            "SESSION_BOT_SMTP_HOST": smtp.host,
            "SESSION_BOT_SMTP_PORT": str(smtp.port),
            "SESSION_BOT_SMTP_TLS": "none",
            "SESSION_BOT_PUBLIC_URL": "https://willkommen.example.org",
        }
        missing = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env=env)
        half = cli(
            tmp_path, "check", "--plan", str(EXAMPLE_PLAN),
            env={**env, "SESSION_BOT_IMPRINT_URL": LEGAL["SESSION_BOT_IMPRINT_URL"]},
        )  # fmt: skip
        both = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env={**env, **LEGAL})
    # A warning: the check still passes (the organiser writes these pages, not session-bot).
    assert missing.returncode == 0 and _failures(missing) == []
    (line,) = [x for x in missing.stdout.splitlines() if x.startswith("warn")]
    assert line.startswith(
        "warn imprint and privacy notice: SESSION_BOT_IMPRINT_URL and SESSION_BOT_PRIVACY_URL "
        "not set, but https://willkommen.example.org is public"
    )
    assert "Impressum" in line and "Datenschutzerklärung" in line and "German law" in line
    (line,) = [x for x in half.stdout.splitlines() if x.startswith("warn")]
    assert "SESSION_BOT_PRIVACY_URL not set" in line and "IMPRINT_URL" not in line
    assert both.returncode == 0
    assert not [x for x in both.stdout.splitlines() if x.startswith("warn")]


@pytest.mark.parametrize(
    ("where", "env"),
    [
        ("plan", {}),
        ("setting", {"SESSION_BOT_MAIL_FROM": "Org Person <organiser@example.org>"}),
    ],
)
def test_display_name_addresses_fail_check_and_run_before_zoom(
    tmp_path: Path, sandbox: ZoomSandbox, where: str, env: dict[str, str]
) -> None:
    plan = (
        _plan(
            tmp_path,
            "    organiser:\n",
            '    reply_to: "Org Person <organiser@example.org>"\n    organiser:\n',
        )
        if where == "plan"
        else EXAMPLE_PLAN
    )
    env = {**_zoom(sandbox), **env}
    out = cli(tmp_path, "check", "--plan", str(plan), env=env)
    assert out.returncode == 2
    (failure,) = _failures(out)
    assert "'Org Person <organiser@example.org>' is not a plain e-mail address" in failure
    assert (
        "series[willkommen].reply_to" if where == "plan" else "SESSION_BOT_MAIL_FROM"
    ) in failure

    run = cli(tmp_path, "run", "--plan", str(plan), "--now", INVITATION_MOMENT, env=env)
    assert run.returncode == 2 and "is not a plain e-mail address" in run.stderr
    assert sandbox.meetings == {}  # refused before a meeting was created


def _override(tmp_path: Path, name: str, content: bytes) -> dict[str, str]:
    folder = tmp_path / "tpl" / "de"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(content)
    return {"SESSION_BOT_TEMPLATES_DIR": str(tmp_path / "tpl")}


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"{{ 1/0 }}\n", "de/invitation.txt:1: an expression failed: ZeroDivisionError"),
        (b"{{ 'Termin' + 1 }}\n", "de/invitation.txt:1: an expression failed: TypeError"),
        (b"{% include 'de/invitation.txt' %}\n", "includes or extends itself"),
        ("Einladung für {{ topic }}, schön\n".encode("latin-1"), "is not UTF-8 text"),
    ],
)
def test_template_errors_are_named_not_tracebacks(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    env = _override(tmp_path, "invitation.txt", content)
    out = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env=env)
    assert out.returncode == 2
    assert any(expected in f for f in _failures(out)), out.stdout


def test_a_template_without_unsubscribe_link_is_never_sent(
    tmp_path: Path, sandbox: ZoomSandbox
) -> None:
    original = (ROOT / "templates" / "de" / "_layout.txt").read_text(encoding="utf-8")
    cut = "\n".join(line for line in original.splitlines() if "unsubscribe_url" not in line)
    assert cut != original
    env = {**_zoom(sandbox), **_override(tmp_path, "_layout.txt", cut.encode())}
    check = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env=env)
    assert check.returncode == 2
    assert any("de/invitation.txt: no visible unsubscribe link" in f for f in _failures(check))

    sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
    subscribers = ROOT / "examples" / "subscribers.csv"
    assert cli(tmp_path, "subscribers", "import", str(subscribers), env=env).returncode == 0
    run = cli(tmp_path, "run", "--plan", str(EXAMPLE_PLAN), "--now", INVITATION_MOMENT, env=env)
    assert run.returncode == 2, run.stdout + run.stderr
    assert "no visible unsubscribe link" in run.stderr
    outbox = tmp_path / "var" / "outbox" / "new"
    assert not outbox.exists() or not any(outbox.iterdir())


def test_an_outbox_that_cannot_be_written_fails_check_and_run_quickly(
    tmp_path: Path, sandbox: ZoomSandbox
) -> None:
    blocked = tmp_path / "outbox-is-a-file"
    blocked.write_text("not a folder")
    env = {"SESSION_BOT_OUTBOX": str(blocked / "outbox")}
    check = cli(tmp_path, "check", "--plan", str(EXAMPLE_PLAN), env=env)
    assert check.returncode == 2
    assert any(
        f.startswith(f"FAIL outbox: the folder {blocked / 'outbox'} cannot be written")
        for f in _failures(check)
    )

    # A folder that stops taking files while a run writes: the run stops with the reason.
    transport = MaildirTransport(tmp_path / "outbox")
    (tmp_path / "outbox" / "new").rmdir()
    (tmp_path / "outbox" / "new").write_text("in the way")
    with pytest.raises(MailError, match="cannot write to the Maildir outbox"):
        list(transport.send_many("a@example.org", [("b@example.org", b"Subject: x\r\n\r\nx")]))


def test_an_overlong_organiser_name_fails_check(tmp_path: Path) -> None:
    """Issue 14, finding 19: the From name of every mail must fit a header line."""
    plan = _plan(tmp_path, "      name: Kristina Neumann\n", f"      name: {'K' * 3000}\n")
    out = cli(tmp_path, "check", "--plan", str(plan))
    assert out.returncode == 2
    (failure,) = _failures(out)
    assert "series[willkommen].organiser.name: is 3000 characters long; at most 200" in failure
