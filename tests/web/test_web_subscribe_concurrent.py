"""Fifty people subscribe at once through a real `session-bot serve` (issue 18): every one
gets the confirmation mail exactly once, at a real SMTP server, and is recorded as pending."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import signal
import subprocess
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from session_bot import wiring
from session_bot.settings import load_settings
from tests.support.daemon_process import serve_process
from tests.support.smtp_server import CollectingHandler, SmtpServer, free_port
from tests.support.web_subscribe import SECRET, confirm_link, wait_for

PEOPLE = 50


def _plan(day: dt.date) -> str:
    """A series whose first session is weeks ahead: nothing else is mailed meanwhile."""
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYDAY=-1WE"
    starts_on: {day.isoformat()}
    start: "12:30"
    timezone: Europe/Berlin
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
"""


def _up(url: str) -> bool:
    try:
        return httpx.get(f"{url}/subscribe", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[tuple[str, SmtpServer]]:
    with _daemon(tmp_path) as (url, smtp, _):
        yield url, smtp


@contextlib.contextmanager
def _daemon(
    tmp_path: Path, handler: CollectingHandler | None = None
) -> Iterator[tuple[str, SmtpServer, subprocess.Popen[bytes]]]:
    plan = tmp_path / "plan.yaml"
    plan.write_text(_plan(dt.date.today() + dt.timedelta(days=40)), encoding="utf-8")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with SmtpServer(handler) as smtp:
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")},
            "SESSION_BOT_VAR_DIR": str(tmp_path / "var"),
            "SESSION_BOT_PLAN": str(plan),
            "SESSION_BOT_SECRET_KEY": SECRET,
            "SESSION_BOT_PUBLIC_URL": url,
            "SESSION_BOT_SMTP_HOST": smtp.host,
            "SESSION_BOT_SMTP_PORT": str(smtp.port),
            "SESSION_BOT_SMTP_TLS": "none",
            # Each visitor a client of her own, as behind the reverse proxy of a deployment.
            "SESSION_BOT_TRUSTED_PROXIES": "127.0.0.1",
        }
        args = ["--sandbox", "--port", str(port), "--env-file", str(tmp_path / "no.env")]
        with serve_process(args, env, tmp_path / "daemon.log", lambda: _up(url)) as proc:
            yield url, smtp, proc


def _address(i: int) -> str:
    return f"person.{i:02d}@example.org"


def _subscribe(url: str, i: int) -> int:
    with httpx.Client(base_url=url, timeout=30) as http:
        r = http.post(
            "/subscribe",
            data={"email": _address(i), "name": "Jörg Müller", "language": "de"},
            headers={"X-Forwarded-For": f"198.18.0.{i + 1}"},
        )
        return r.status_code


def test_the_confirmations_still_queued_at_sigterm_go_out_before_the_daemon_ends(
    tmp_path: Path,
) -> None:
    # A slow mail server: when SIGTERM comes, most confirmations still wait in the outbox.
    with _daemon(tmp_path, CollectingHandler(delay=0.1)) as (url, smtp, proc):
        with ThreadPoolExecutor(10) as pool:
            statuses = list(pool.map(lambda i: _subscribe(url, i), range(20)))
        assert statuses == [200] * 20
        assert len(smtp.handler.copies()) < 20
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert smtp.handler.copies() == {_address(i): 1 for i in range(20)}
    log = (tmp_path / "daemon.log").read_text()
    assert "not sent" not in log and "daemon stopped" in log


def test_fifty_concurrent_subscribers_each_get_one_confirmation(
    daemon: tuple[str, SmtpServer], tmp_path: Path
) -> None:
    url, smtp = daemon

    def subscribe(i: int) -> int:
        with httpx.Client(base_url=url, timeout=30) as http:
            r = http.post(
                "/subscribe",
                data={
                    "email": _address(i),
                    "name": "Jörg Müller",
                    "language": "de" if i % 2 else "en",
                },
                headers={"X-Forwarded-For": f"198.18.0.{i + 1}"},
            )
            return r.status_code

    with ThreadPoolExecutor(PEOPLE) as pool:
        statuses = list(pool.map(subscribe, range(PEOPLE)))
    assert statuses == [200] * PEOPLE
    wanted = {_address(i) for i in range(PEOPLE)}
    copies = wait_for(
        lambda: (lambda c: c if wanted <= c.keys() else None)(smtp.handler.copies()),
        f"{PEOPLE} confirmation mails",
    )
    assert copies == dict.fromkeys(wanted, 1)
    for i in (0, 1, PEOPLE - 1):
        (received,) = smtp.handler.to(_address(i))
        mail = received.message()
        assert confirm_link(mail).startswith(f"{url}/confirm/")
        assert ("bestätigen" if i % 2 else "confirm") in str(mail["Subject"]).lower()
    settings = load_settings(None, var_dir=tmp_path / "var", secret_key=SECRET)
    store = wiring.open_store(settings)
    try:
        rows = [store.subscribers.get(a) for a in sorted(wanted)]
        assert all(r is not None and r["status"] == "pending" for r in rows)
        assert {r["request_ip"] for r in rows if r} == {f"198.18.0.{i + 1}" for i in range(PEOPLE)}
    finally:
        store.close()
