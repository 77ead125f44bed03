"""The daemon in-process: jobs from the plan, plan changes, stopping mid-mailing, one instance.

Everything is real: the Zoom sandbox over HTTP, aiosmtpd or the Maildir outbox, SQLite, uvicorn
on a free port. The runner's clock is a test clock; the scheduler runs on wall time.
"""

from __future__ import annotations

import datetime as dt
import logging
import mailbox
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.cli.common import wait_for_run_lock
from session_bot.core.errors import LockBusy
from session_bot.daemon.service import Daemon
from session_bot.settings import Settings
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT
from tests.support.plans import automatic_updates
from tests.support.settings import make_settings as settings_in
from tests.support.smtp_server import CollectingHandler, SmtpServer
from tests.support.waiting import wait_for

TOKEN = "admin-token-0123456789abcdef-XYZ"
REMINDER_AT = dt.datetime(2025, 2, 25, 8, 0, tzinfo=dt.UTC)  # 25 Feb 09:00 Berlin


def make_settings(tmp_path: Path, **extra: Any) -> Settings:
    plan = tmp_path / "plan.yaml"
    if not plan.exists():
        shutil.copy(EXAMPLE_PLAN, plan)
    values: dict[str, Any] = {"plan": plan, "admin_token": TOKEN, "lock_timeout": 0.5, **extra}
    return settings_in(tmp_path, **values)


def add_subscribers(settings: Settings, n: int) -> None:
    store = wiring.open_store(settings)
    t0 = SEED_INVITATION_AT - dt.timedelta(days=30)
    for i in range(n):
        store.subscribers.add(
            f"person{i:02d}@example.org",
            name=None,
            language="de",
            status="confirmed",
            now=t0,
            confirmed_at=t0,
        )
    store.close()


def make_daemon(settings: Settings, clock: ManualClock, **kw: Any) -> Daemon:
    return Daemon(
        settings,
        plan_path=settings.plan,
        clock=clock,
        sandbox=True,
        port=0,
        plan_check_seconds=kw.pop("plan_check_seconds", 3600),
        stop_grace=5,
        **kw,
    )


@pytest.fixture
def running(tmp_path: Path) -> Iterator[tuple[Daemon, Settings, ManualClock]]:
    settings = make_settings(tmp_path)
    add_subscribers(settings, 3)
    clock = ManualClock(SEED_INVITATION_AT)
    daemon = make_daemon(settings, clock, plan_check_seconds=0.2)
    daemon.start()
    try:
        wait_for(lambda: daemon.scheduled == REMINDER_AT, "the start run")
        yield daemon, settings, clock
    finally:
        daemon.stop()


def last_run(store: Store) -> dict[str, Any] | None:
    run = store.runs.last()
    return run if run and run["finished_at"] else None


def test_start_catches_up_and_schedules_the_next_due_moment(
    running: tuple[Daemon, Settings, ManualClock],
) -> None:
    daemon, _, clock = running
    run = wait_for(lambda: last_run(daemon.store), "the start run")
    assert run["trigger"] == "start" and run["outcome"] == "ok"
    assert daemon.sandbox is not None and len(daemon.sandbox.meetings) == 1
    assert daemon.store.mailings.delivery_counts() == {"sent": 3}
    # The job for the reminder fires on wall time as far ahead as the reminder is on the clock.
    job = daemon.scheduler.get_job("next-due")  # type: ignore[union-attr]
    ahead = job.next_run_time - dt.datetime.now(dt.UTC)
    assert abs(ahead - (REMINDER_AT - clock())) < dt.timedelta(minutes=1)
    assert {j.id for j in daemon.scheduler.get_jobs()} == {  # type: ignore[union-attr]
        "next-due",
        "safety-tick",
        "plan-check",
    }
    health = httpx.get(f"{daemon.web_url}/healthz").json()
    assert health["ok"] and dt.datetime.fromisoformat(health["next_due"]) == REMINDER_AT
    assert health["last_run"]["trigger"] == "start"


def test_a_changed_plan_file_rebuilds_the_jobs(
    running: tuple[Daemon, Settings, ManualClock], caplog: pytest.LogCaptureFixture
) -> None:
    daemon, settings, _ = running
    caplog.set_level(logging.INFO)
    text = settings.plan.read_text(encoding="utf-8")
    # The reminder moves to 10:30 local (09:30 UTC).
    settings.plan.write_text(
        text.replace('reminder_time: "09:00"', 'reminder_time: "10:30"'), encoding="utf-8"
    )
    wait_for(lambda: daemon.scheduled == REMINDER_AT + dt.timedelta(minutes=90), "the rebuilt job")
    # The job is rebuilt a moment before the line that says so is logged (same thread).
    wait_for(
        lambda: any("plan reloaded (file changed)" in r.getMessage() for r in caplog.records),
        "the reload's log line",
    )

    # A broken plan keeps the previous one (and its jobs) and says why.
    settings.plan.write_text(text.replace("rrule:", "rrul:"), encoding="utf-8")
    wait_for(
        lambda: any("plan not reloaded" in r.getMessage() for r in caplog.records), "the error"
    )
    assert daemon.scheduled == REMINDER_AT + dt.timedelta(minutes=90)
    assert daemon.plan.series[0].lead.reminder_time == "10:30"
    # …and tells: /healthz degrades, the organiser gets an alert naming the line.
    health = httpx.get(f"{daemon.web_url}/healthz")
    assert health.status_code == 503 and health.json()["ok"] is False
    (problem,) = health.json()["problems"]
    assert f"the plan file {settings.plan} is not valid" in problem and "rrul" in problem
    alerts = [
        m for m in mailbox.Maildir(str(settings.resolved_outbox)) if "Plan" in str(m["Subject"])
    ]
    assert len(alerts) == 1
    assert "Ihre Änderung am Plan wurde nicht übernommen" in str(
        __import__("email.header").header.make_header(
            __import__("email.header").header.decode_header(alerts[0]["Subject"])
        )
    )

    # Touching the file without changing it does not reload.
    before = sum("plan reloaded" in r.getMessage() for r in caplog.records)
    settings.plan.write_text(text, encoding="utf-8")
    wait_for(lambda: daemon.scheduled == REMINDER_AT, "the reload of the fixed plan")
    wait_for(
        lambda: sum("plan reloaded" in r.getMessage() for r in caplog.records) == before + 1,
        "the fixed plan's reload log line",
    )
    assert httpx.get(f"{daemon.web_url}/healthz").json()["ok"] is True
    settings.plan.touch()
    time.sleep(0.6)  # three change checks
    assert sum("plan reloaded" in r.getMessage() for r in caplog.records) == before + 1


def test_a_second_daemon_on_the_same_database_is_refused(
    running: tuple[Daemon, Settings, ManualClock],
) -> None:
    daemon, settings, clock = running
    second = make_daemon(settings, clock)
    with pytest.raises(LockBusy) as err:
        second.start()
    message = str(err.value)
    assert "already running on this database" in message
    assert "daemon.lock" in message and "Stop the other one first" in message
    assert httpx.get(f"{daemon.web_url}/healthz").json()["ok"] is True


def test_after_stop_the_lock_is_free_again(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    clock = ManualClock(SEED_INVITATION_AT - dt.timedelta(days=1))
    first = make_daemon(settings, clock)
    first.start()
    wait_for(lambda: last_run(first.store), "the start run")
    assert first.stop() is True
    first_run = first.store.runs.last()
    second = make_daemon(settings, clock)
    second.start()
    wait_for(lambda: (r := last_run(second.store)) and r["id"] != first_run["id"], "its run")
    assert second.stop() is True


def test_stop_mid_mailing_finishes_the_message_in_flight_and_resumes_after_restart(
    tmp_path: Path,
) -> None:
    received_first = threading.Event()
    box: dict[str, Daemon] = {}
    stopped: list[bool] = []

    def on_data(envelope: Any) -> None:
        if not received_first.is_set():
            received_first.set()
            # What SIGTERM does: no new messages from now; then the full stop, elsewhere.
            box["daemon"].begin_stop()
            threading.Thread(target=lambda: stopped.append(box["daemon"].stop())).start()

    handler = CollectingHandler(on_data=on_data)
    with SmtpServer(handler) as smtp:
        settings = make_settings(
            tmp_path, smtp_host=smtp.host, smtp_port=smtp.port, smtp_tls="none"
        )
        add_subscribers(settings, 20)
        clock = ManualClock(SEED_INVITATION_AT)
        box["daemon"] = make_daemon(settings, clock)
        box["daemon"].start()
        wait_for(lambda: stopped, "the stop")
        assert stopped == [True]
        # What was in flight (the claimed batch, at most 10) went out; nothing after it.
        first = len(handler.messages)
        assert 1 <= first <= 10

        store = wiring.open_store(settings)
        assert store.mailings.delivery_counts() == {"sent": first, "pending": 20 - first}
        assert len(store.mailings.open()) == 1
        run = store.runs.last()
        # Stopped with mail still owed: the run says so rather than "ok".
        assert run is not None and run["outcome"] == "incomplete" and run["finished_at"] is not None
        assert f"{20 - first} message(s) not delivered yet" in run["summary"]

        restarted = make_daemon(settings, clock)
        restarted.start()
        wait_for(
            lambda: store.mailings.delivery_counts() == {"sent": 20}, "the rest of the mailing"
        )
        assert restarted.stop() is True
        store.close()
    recipients = sorted(r for m in handler.messages for r in m.rcpt_tos)
    assert recipients == sorted(f"person{i:02d}@example.org" for i in range(20))


def test_admin_run_waits_for_the_run_lock_then_answers_409(
    running: tuple[Daemon, Settings, ManualClock],
) -> None:
    daemon, settings, _ = running
    with wiring.run_lock(settings).acquire():
        r = httpx.post(
            f"{daemon.web_url}/admin/run",
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=10,
        )
        assert r.status_code == 409
        assert "another session-bot run is active" in r.json()["error"]
    r = httpx.post(
        f"{daemon.web_url}/admin/run", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10
    )
    assert r.status_code == 200 and r.json()["trigger"] == "admin"


def test_a_manual_run_waits_for_the_daemons_lock_with_a_message(tmp_path: Path) -> None:
    settings = make_settings(tmp_path, lock_timeout=10)
    said: list[str] = []
    held = wiring.run_lock(settings).acquire()
    threading.Timer(0.3, held.release).start()
    with wait_for_run_lock(settings, said.append):
        pass
    assert len(said) == 1 and "waiting up to 10 s" in said[0]

    quick = make_settings(tmp_path, lock_timeout=0.2)
    with wiring.run_lock(quick).acquire(), pytest.raises(LockBusy) as err:
        wait_for_run_lock(quick, said.append)
    assert "Waited 0 s" in str(err.value) or "Try again" in str(err.value)
    assert len(said) == 2


def test_a_failing_run_alerts_the_organiser_once_a_day(tmp_path: Path) -> None:
    broken = tmp_path / "templates" / "de"
    broken.mkdir(parents=True)
    (broken / "invitation.txt").write_text("{{ no_such_value }}\n", encoding="utf-8")
    settings = make_settings(
        tmp_path, templates_dir=tmp_path / "templates", alert_email="orga@example.org"
    )
    add_subscribers(settings, 2)
    clock = ManualClock(SEED_INVITATION_AT)
    daemon = make_daemon(settings, clock)
    daemon.start()
    try:
        run = wait_for(lambda: last_run(daemon.store), "the start run")
        assert run["outcome"] == "error"
        again = daemon.run_once("manual")
        assert again["ok"] is False and "invitation.txt" in again["error"]
    finally:
        daemon.stop()
    outbox = mailbox.Maildir(str(settings.resolved_outbox), create=False)
    mails = [outbox.get_message(k) for k in outbox.iterkeys()]
    assert [m["To"] for m in mails] == ["orga@example.org"]  # one alert, no invitations
    assert "fehlgeschlagen" in str(mails[0]["Subject"]) or "failed" in str(mails[0]["Subject"])


def test_a_plan_change_that_makes_something_due_is_acted_on_at_once(
    running: tuple[Daemon, Settings, ManualClock],
) -> None:
    """Issue 19: not at the next hourly tick."""
    daemon, settings, _ = running
    wait_for(lambda: daemon.store.mailings.delivery_counts() == {"sent": 3}, "the invitations")
    text = automatic_updates(settings.plan.read_text(encoding="utf-8"))
    settings.plan.write_text(
        text.replace(
            "      2025-02-26:\n",
            '      2025-02-26:\n        cancelled: true\n        reason: "Die Referentin ist erkrankt."\n',
            1,
        ),
        encoding="utf-8",
    )
    wait_for(
        lambda: daemon.store.mailings.delivery_counts() == {"sent": 6},
        "the cancellations",
        timeout=10,
    )
    # The mails are counted before the run records its end: wait for that record.
    run = wait_for(lambda: last_run(daemon.store), "the run's record")
    assert run["trigger"] == "plan-change"
