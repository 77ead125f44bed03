"""Leader election on a real PostgreSQL database: exactly one of several elections leads, and a
leader whose connection ends hands over. Also the database-wide run lock and `status` on SQLite."""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from pathlib import Path

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text

from session_bot import wiring
from session_bot.adapters.db.advisory import AdvisoryLock, Timing, instances
from session_bot.adapters.db.leadership import Election, Leadership
from session_bot.adapters.db.store import Store
from session_bot.cli.status import daemon_instances, format_instances
from session_bot.core.errors import LockBusy
from session_bot.settings import load_settings
from tests.support.pg import PG_ADMIN, fresh_database, require_pg
from tests.support.waiting import wait_for

FAILOVER = 3.0


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_pg()
    with fresh_database() as url:
        yield url


def election(url: str, host: str, pid: int) -> Election:
    return Election(url, host=host, pid=pid, clock=utc_now, failover_seconds=FAILOVER)


def terminate(url: str, app_name: str) -> int:
    """End a backend from outside, as PostgreSQL does when the client's host is gone."""
    database = url.rsplit("/", 1)[1]
    with psycopg.connect(PG_ADMIN, autocommit=True) as c:
        rows = c.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = %s AND application_name = %s",
            (database, app_name),
        ).fetchall()
    return len(rows)


def test_exactly_one_leads_and_closing_the_leaders_connection_hands_over(pg_url: str) -> None:
    seats = [election(pg_url, f"host-{c}", 100 + i) for i, c in enumerate("abc")]
    engine = create_engine(pg_url)
    try:
        won = [s.try_lead() for s in seats]
        assert won == [True, False, False]
        assert [s.try_lead() for s in seats[1:]] == [False, False]  # trying again changes nothing
        seen = instances(engine)
        assert [(i.role, i.host, i.pid) for i in seen] == [
            ("leader", "host-a", 100),
            ("standby", "host-b", 101),
            ("standby", "host-c", 102),
        ]
        assert all(i.since is not None for i in seen)

        seats[0].close()  # the leader's connection ends (as when its process dies)
        new = wait_for(lambda: [s for s in seats[1:] if s.try_lead()], "a standby to take over")
        assert len(new) == 1 and new[0].leads
        assert sum(s.leads for s in seats[1:]) == 1
        assert [(i.role, i.pid) for i in instances(engine) if i.role == "leader"] == [
            ("leader", new[0].instance.pid)
        ]
    finally:
        for s in seats:
            s.close()
        engine.dispose()


def test_a_leader_whose_backend_is_terminated_notices_and_a_standby_takes_over(
    pg_url: str,
) -> None:
    a, b = election(pg_url, "host-a", 1), election(pg_url, "host-b", 2)
    events: list[str] = []
    both = [
        Leadership(
            e,
            on_elected=lambda n=name: events.append(f"{n} elected"),  # type: ignore[misc]
            on_lost=lambda n=name: events.append(f"{n} lost"),  # type: ignore[misc]
        )
        for e, name in ((a, "a"), (b, "b"))
    ]
    try:
        assert both[0].start() is True and both[1].start() is False
        assert events == ["a elected"]
        assert a.still_leading()
        assert terminate(pg_url, a.instance.app_name()) == 1
        wait_for(lambda: "b elected" in events, "b to take over")
        wait_for(lambda: "a lost" in events, "a to notice")
        assert not a.leads and b.leads
        assert events.count("a elected") == 1 and events.count("b elected") == 1
        # a stands by again and does not win back the lock b holds.
        both[0].step()
        assert not a.leads and b.still_leading()
    finally:
        for lead in both:
            lead.stop()


def test_the_keepalive_settings_reach_the_server(pg_url: str) -> None:
    a = election(pg_url, "host-a", 1)
    try:
        assert a.try_lead()
        t = a.timing
        applied: dict[str, int] = dict(
            a._connection()
            .execute(
                text(
                    "SELECT name, setting::int FROM pg_settings WHERE name IN ('tcp_keepalives_idle',"
                    " 'tcp_keepalives_interval', 'tcp_keepalives_count', 'tcp_user_timeout')"
                )
            )
            .all()
        )
        assert applied == {
            "tcp_keepalives_idle": t.keepalive_idle,
            "tcp_keepalives_interval": t.keepalive_interval,
            "tcp_keepalives_count": t.keepalive_count,
            "tcp_user_timeout": t.user_timeout_ms,
        }
    finally:
        a.close()


@pytest.mark.parametrize("failover", [6.0, 10.0, 60.0, 300.0, 3600.0])
def test_a_dead_host_is_noticed_and_replaced_within_the_failover_time(failover: float) -> None:
    t = Timing(failover)
    # The server ends a silent peer's backend after keepalive idle + count × interval; the
    # standby's next try comes within a poll.
    server_gives_up = t.keepalive_idle + t.keepalive_count * t.keepalive_interval
    assert server_gives_up + t.poll <= failover
    # A leader cut off from the database notices (its check times out) and stops acting before
    # the server frees the lock for a standby.
    assert t.poll + t.user_timeout_ms / 1000 < server_gives_up


def test_the_run_lock_is_database_wide_and_names_its_holder(pg_url: str, tmp_path: Path) -> None:
    settings = load_settings(None, database_url=pg_url, var_dir=tmp_path / "var")
    first = wiring.run_lock(settings)
    assert isinstance(first, AdvisoryLock)
    first.acquire()
    other = AdvisoryLock(pg_url, host="elsewhere", pid=4242, clock=utc_now)
    with pytest.raises(LockBusy) as err:
        other.acquire(timeout=0.3, poll=0.05)
    assert f"another session-bot run is active (pid {os.getpid()} on " in str(err.value)
    # A waiting run gets the lock as soon as the holder lets go.
    threading.Timer(0.3, first.release).start()
    with other.acquire(timeout=10, poll=0.05), pytest.raises(LockBusy):
        wiring.run_lock(settings).acquire(timeout=0)
    with wiring.run_lock(settings).acquire(timeout=0):
        pass


def test_status_on_sqlite_names_the_daemon_that_holds_the_lock(tmp_path: Path) -> None:
    settings = load_settings(None, var_dir=tmp_path / "var")
    store = Store(settings.resolved_database_url)
    try:
        assert daemon_instances(settings, store) == []
        assert format_instances([]) == [
            "Daemon: not running (no `session-bot serve` holds the lock)"
        ]
        lock = wiring.daemon_lock(settings, "on host-x since 2026-01-02T03:04:05+00:00").acquire()
        try:
            found = daemon_instances(settings, store)
        finally:
            lock.release()
        assert found == [
            {
                "role": "leader",
                "host": "host-x",
                "pid": os.getpid(),
                "since": "2026-01-02T03:04:05+00:00",
            }
        ]
        assert daemon_instances(settings, store) == []
    finally:
        store.close()


def web_role(url: str) -> str:
    return str(httpx.get(f"{url}/healthz", timeout=5).json()["role"])


def test_in_process_daemons_only_the_leader_schedules_and_a_leader_that_loses_its_lock_stops(
    pg_url: str, tmp_path: Path
) -> None:
    from session_bot.daemon.service import Daemon
    from tests.support.leader import first_wednesday_after, plan_text

    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text(first_wednesday_after(10), 2), "utf-8")
    Store(pg_url).create_schema()

    def daemon(name: str) -> Daemon:
        settings = load_settings(
            None,
            database_url=pg_url,
            var_dir=tmp_path / name,
            plan=plan,
            secret_key="test-secret-key-0123456789abcdef",
            failover_seconds=FAILOVER,
        )
        d = Daemon(settings, plan_path=plan, clock=utc_now, sandbox=True, port=0, stop_grace=5)
        d.start()
        return d

    def jobs(d: Daemon) -> set[str]:
        assert d.scheduler is not None
        return {j.id for j in d.scheduler.get_jobs()}

    a = daemon("a")
    b = None
    try:
        b = daemon("b")
        assert (a.instance.role, b.instance.role) == ("leader", "standby")
        wait_for(lambda: "next-due" in jobs(a), "a's start run to schedule the next one")
        assert jobs(a) == {"plan-check", "safety-tick", "next-due"}
        assert jobs(b) == {"plan-check"}  # a standby runs no reconcile
        with pytest.raises(LockBusy, match="is a standby"):
            b.admin_run("admin")
        assert b.run_once("webhook")["ok"] is False

        # a's lock connection ends while a lives on: a stops acting, b takes over.
        assert a.leadership is not None
        assert terminate(pg_url, a.leadership.election.instance.app_name()) == 1
        wait_for(lambda: b.instance.role == "leader", "b to take over")
        wait_for(lambda: a.instance.role == "standby", "a to stand by")
        wait_for(lambda: jobs(a) == {"plan-check"}, "a to drop its run jobs")
        assert a.halted() and a.web_url and web_role(a.web_url) == "standby"
        wait_for(lambda: "next-due" in jobs(b), "b's run jobs")
        assert jobs(b) == {"plan-check", "safety-tick", "next-due"}
        wait_for(lambda: (r := a.store.runs.last()) and r["trigger"] == "takeover", "b's run")
        # a reconnects at its next try and is listed as a standby again.
        both = [("leader", os.getpid()), ("standby", os.getpid())]
        wait_for(
            lambda: [(i.role, i.pid) for i in instances(a.store.engine)] == both,
            "a to stand by again",
        )
    finally:
        a.stop()
        if b is not None:
            b.stop()
