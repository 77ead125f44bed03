"""The leader is SIGKILLed in mid-mailing; the standby takes over and finishes the mailing.

Everything is real: two `serve` processes on one fresh PostgreSQL database, one aiosmtpd server
that takes a little time per message (so the kill lands in mid-mailing), and one Zoom sandbox
over HTTP that both processes use as their Zoom (SESSION_BOT_ZOOM_API_URL/OAUTH_URL), as two
servers of one installation share the one real Zoom. (`serve --sandbox` would give each process
a private sandbox, which a real installation never has.)

What is counted at the SMTP server:
- every subscriber has the invitation;
- extra copies ≤ the rows in `sending` at the moment of the kill (and those ≤ SMTP connections ×
  claim batch). They are the leader's claimed rows whose outcome it had not recorded: on each
  connection the message in DATA when it died and the ones sent earlier in the same claimed
  batch (outcomes are recorded with the next claim). Each of them may be at the server already,
  and the new leader sends each again, once. Nothing else can be sent twice: every other row is
  `sent` (skipped by everyone) or `pending` (never handed to SMTP). The leader is frozen with
  SIGSTOP for the count, then killed, so the count is exact.
- one Zoom meeting for the session in the sandbox.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from session_bot import wiring
from session_bot.adapters.db.store import Store
from session_bot.adapters.zoom import marker
from session_bot.app.delivery import DeliveryPolicy
from session_bot.core.errors import LockBusy
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import load_settings
from tests.support.delivery import add_subscribers, address
from tests.support.leader import Serve, base_env, first_wednesday_after, plan_text
from tests.support.pg import fresh_database, require_pg
from tests.support.smtp_server import CollectingHandler, SmtpServer
from tests.support.waiting import wait_for

RECIPIENTS = 400
FAILOVER = "3"  # seconds; a short failover keeps the test quick
DELAY = 0.015  # the SMTP server's time per message: ~6 s for the whole mailing


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_pg()
    with fresh_database() as url:
        yield url


def test_sigkill_of_the_leader_mid_mailing_the_standby_finishes_it(
    tmp_path: Path, pg_url: str
) -> None:
    store = Store(pg_url)
    store.create_schema()
    add_subscribers(store, RECIPIENTS)
    first = first_wednesday_after(10)
    plan = tmp_path / "plan.yaml"
    plan.write_text(plan_text(first, invitation_days=2), "utf-8")  # nothing due yet
    with (
        ZoomSandbox(state_file=tmp_path / "zoom.json") as zoom,
        SmtpServer(CollectingHandler(delay=DELAY)) as smtp,
    ):
        extra = {
            "SESSION_BOT_FAILOVER_SECONDS": FAILOVER,
            "SESSION_BOT_ZOOM_API_URL": zoom.api_url,
            "SESSION_BOT_ZOOM_OAUTH_URL": zoom.oauth_url,
            "SESSION_BOT_ZOOM_ACCOUNT_ID": "sandbox-account",
            "SESSION_BOT_ZOOM_CLIENT_ID": "sandbox-client",
            "SESSION_BOT_ZOOM_CLIENT_SECRET": "sandbox-secret",
            "SESSION_BOT_ZOOM_USER": "organiser@example.org",
            "SESSION_BOT_SMTP_HOST": smtp.host,
            "SESSION_BOT_SMTP_PORT": str(smtp.port),
            "SESSION_BOT_SMTP_TLS": "none",
        }
        envs = {n: base_env(tmp_path, n, pg_url, **extra) for n in ("a", "b")}
        a = Serve("a", tmp_path, envs["a"]).started()
        b = None
        try:
            assert a.health()["role"] == "leader"
            b = Serve("b", tmp_path, envs["b"]).started()
            b.wait_for_log("leadership: standby")

            # The plan now makes the invitation due; both reload it, the leader is told to run.
            plan.write_text(plan_text(first, invitation_days=20), "utf-8")
            for serve in (b, a):
                serve.proc.send_signal(signal.SIGHUP)
                serve.wait_for_log("plan reloaded (SIGHUP)")
            threading.Thread(target=_ignore_failure, args=(a.admin_run,), daemon=True).start()

            # Mid-batch (batches of 10): some messages of the claimed batch are at the server.
            wait_for(lambda: len(smtp.handler.messages) >= RECIPIENTS // 4 + 5, "mid-mailing")
            # A manual `session-bot run` (on any host) would wait: the run lock is the database's.
            with pytest.raises(LockBusy, match=f"run is active \\(pid {a.pid} on "):
                wiring.run_lock(load_settings(None, database_url=pg_url)).acquire(timeout=0)
            a.proc.send_signal(signal.SIGSTOP)  # frozen: nothing changes while we count
            (mailing,) = store.mailings.open()
            in_flight = store.mailings.delivery_counts(mailing.id).get("sending", 0)
            sent_by_a = store.mailings.delivery_counts(mailing.id).get("sent", 0)
            assert 0 < sent_by_a < RECIPIENTS, "the kill must land in mid-mailing"
            old_connections = smtp.handler.connections  # the new leader's are numbered above
            killed_at, killed_wall = time.monotonic(), time.time()
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(timeout=10)

            took_over_at, _ = b.wait_for_log("leadership: took over as leader", timeout=30)
            wait_for(
                lambda: store.mailings.get(mailing.id).finished_at is not None,
                "the new leader to finish the mailing",
                timeout=40,
            )
            time.sleep(0.1)  # the server logs the last message after its 250
            copies = smtp.handler.copies()
            first_after = min(m.at for m in smtp.handler.messages if m.connection > old_connections)
            health = b.health()
            meetings = zoom.meetings
        finally:
            a.stop()
            if b is not None:
                b.stop()
    print(
        f"\ntakeover: the standby took over {took_over_at - killed_at:.2f} s after the SIGKILL "
        f"(failover setting {FAILOVER} s); its first message reached the SMTP server "
        f"{first_after - killed_wall:.2f} s after the kill. {sent_by_a} sent by the old leader, "
        f"{in_flight} in flight, {sum(copies.values()) - RECIPIENTS} extra copies."
    )

    assert sorted(copies) == sorted(address(i) for i in range(RECIPIENTS))  # nobody missed
    extra_copies = sum(copies.values()) - RECIPIENTS
    assert extra_copies <= in_flight
    smtp_connections = load_settings(None).smtp_connections
    assert in_flight <= smtp_connections * DeliveryPolicy().batch
    assert store.mailings.delivery_counts(mailing.id) == {"sent": RECIPIENTS}

    # One meeting for the session, made once by the first leader and kept by the second.
    session = store.sessions.get(f"willkommen/{first.isoformat()}")
    assert session is not None and session.meeting_id is not None
    tag = marker("willkommen", first)
    assert [m["id"] for m in meetings.values() if tag in m.get("agenda", "")] == [
        session.meeting_id
    ]
    assert len(meetings) == 1

    assert health["role"] == "leader" and health["instance"]["pid"] == b.pid
    last = store.runs.last()
    assert last is not None and last["trigger"] == "takeover" and last["outcome"] == "ok"
    store.close()


def _ignore_failure(call: Callable[[], object]) -> None:
    # The admin run's HTTP request dies with the leader; that is the point of the test.
    with contextlib.suppress(httpx.HTTPError):
        call()
