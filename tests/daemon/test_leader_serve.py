"""Two `serve` processes on one PostgreSQL database: the second stands by instead of being refused,
both serve the web pages, only the leader runs, `status` and /healthz say who is who, and a
leader stopped with SIGTERM hands over at once."""

from __future__ import annotations

import datetime as dt
import json
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from session_bot.adapters.db.store import Store
from session_bot.app.subscriptions import unsubscribe_token
from tests.support.leader import (
    SECRET,
    TOKEN,
    Serve,
    base_env,
    first_wednesday_after,
    plan_text,
)
from tests.support.pg import fresh_database, require_pg
from tests.support.waiting import wait_for


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_pg()
    with fresh_database() as url:
        store = Store(url)
        store.create_schema()  # `db upgrade` before the daemons start, as in production
        store.close()
        yield url


def status_json(tmp_path: Path, env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-m", "session_bot.cli", "status", "--json"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    data: dict[str, object] = json.loads(out.stdout)
    return data


def test_a_second_serve_stands_by_serves_pages_and_takes_over_when_the_leader_stops(
    tmp_path: Path, pg_url: str
) -> None:
    (tmp_path / "plan.yaml").write_text(plan_text(first_wednesday_after(10), 2), "utf-8")
    envs = {n: base_env(tmp_path, n, pg_url, SESSION_BOT_FAILOVER_SECONDS="3") for n in ("a", "b")}
    store = Store(pg_url)
    early = store.subscribers.add(
        "early@example.org",
        name=None,
        language="de",
        status="confirmed",
        now=dt.datetime.now(dt.UTC),
    )
    a = Serve("a", tmp_path, envs["a"], "--sandbox").started()
    b = None
    try:
        assert a.health()["role"] == "leader"
        b = Serve("b", tmp_path, envs["b"], "--sandbox").started()
        b.wait_for_log("leadership: standby")
        assert b.proc.poll() is None  # not refused

        # /healthz says who is who, on both.
        ha, hb = a.health(), b.health()
        assert ha["ok"] and hb["ok"]
        assert (ha["role"], hb["role"]) == ("leader", "standby")
        assert ha["instance"]["pid"] == a.pid and hb["instance"]["pid"] == b.pid
        assert hb["instance"]["leader"]["pid"] == a.pid
        assert ha["instance"]["host"] and ha["instance"]["since"]

        # `status --json` lists both, the leader first.
        found = status_json(tmp_path, envs["a"])["instances"]
        assert [(i["role"], i["pid"]) for i in found] == [  # type: ignore[attr-defined]
            ("leader", a.pid),
            ("standby", b.pid),
        ]

        # Only the leader runs; the standby says where to go instead.
        refused = b.admin_run()
        assert refused.status_code == 503
        assert f"pid {a.pid}" in refused.json()["error"] and "standby" in refused.json()["error"]
        assert a.admin_run().status_code == 200
        runs_before = store.runs.last()

        # The subscriber pages work on the standby: they only write subscriber rows.
        with httpx.Client(base_url=b.url, timeout=10) as http:
            assert http.get("/subscribe").status_code == 200
            r = http.post("/subscribe", data={"email": "neu@example.org", "name": ""})
            assert r.status_code == 200
            r = http.post(
                f"/unsubscribe/{unsubscribe_token(SECRET, early)}",
                data={"List-Unsubscribe": "One-Click"},
            )
            assert r.status_code == 200
        assert store.subscribers.get("neu@example.org")["status"] == "pending"  # type: ignore[index]
        assert store.subscribers.get("early@example.org")["status"] == "unsubscribed"  # type: ignore[index]
        assert store.runs.last() == runs_before  # the standby ran nothing

        # SIGTERM: the leader stops cleanly, its lock goes with its connection, b takes over.
        a.proc.send_signal(signal.SIGTERM)
        assert a.proc.wait(timeout=30) == 0
        b.wait_for_log("leadership: took over as leader", timeout=15)
        wait_for(lambda: b.health()["role"] == "leader", "b to say it leads")
        run = wait_for(
            lambda: (
                (r := store.runs.last()) and r["trigger"] == "takeover" and r["finished_at"] and r
            ),
            "the takeover run",
        )
        assert run["outcome"] == "ok"
        found = status_json(tmp_path, envs["b"])["instances"]
        assert [(i["role"], i["pid"]) for i in found] == [("leader", b.pid)]  # type: ignore[attr-defined]
        assert b.admin_run().status_code == 200
        b.proc.send_signal(signal.SIGTERM)
        assert b.proc.wait(timeout=30) == 0
        assert TOKEN not in a.output() + b.output() and SECRET not in a.output() + b.output()
    finally:
        a.stop()
        if b is not None:
            b.stop()
        store.close()
