"""A run asked for on a standby reaches the leader within seconds, not at the hourly tick.

Two real `serve` processes on one fresh PostgreSQL database, one Zoom sandbox over HTTP shared by
both (as one real Zoom is), one aiosmtpd server. On the standby: a late confirmation (the new
subscriber gets the invitation that already went out) and a signed Zoom webhook (a meeting
deleted in Zoom is made again). Each leaves a run request; the leader's next check of its lock
finds it and runs. A request left while the leader is frozen is answered by the standby's own
takeover run. Then, in-process on SQLite: a confirmation while a run is in progress is not
dropped but answered by a run right after it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.app.run_requests import RUN_REQUEST_KEY, RunRequest
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.web.zoom_webhook import sign
from tests.conftest import SEED_INVITATION_AT
from tests.daemon.test_daemon import add_subscribers, make_daemon, make_settings
from tests.support.leader import Serve, base_env, first_wednesday_after, plan_text
from tests.support.pg import fresh_database, require_pg
from tests.support.smtp_server import CollectingHandler, Received, SmtpServer
from tests.support.waiting import wait_for

HOOK_SECRET = "zoom-webhook-secret-0123456789"
FAILOVER = "3"  # seconds: the leader checks its lock (and looks for requests) every 0.5 s
RECIPIENTS = 40


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_pg()
    with fresh_database() as url:
        store = Store(url)
        store.create_schema()
        store.close()
        yield url


def env_for(zoom: ZoomSandbox, smtp: SmtpServer) -> dict[str, str]:
    return {
        "SESSION_BOT_FAILOVER_SECONDS": FAILOVER,
        "SESSION_BOT_ZOOM_API_URL": zoom.api_url,
        "SESSION_BOT_ZOOM_OAUTH_URL": zoom.oauth_url,
        "SESSION_BOT_ZOOM_ACCOUNT_ID": "sandbox-account",
        "SESSION_BOT_ZOOM_CLIENT_ID": "sandbox-client",
        "SESSION_BOT_ZOOM_CLIENT_SECRET": "sandbox-secret",
        "SESSION_BOT_ZOOM_USER": "organiser@example.org",
        "SESSION_BOT_ZOOM_WEBHOOK_SECRET": HOOK_SECRET,
        "SESSION_BOT_SMTP_HOST": smtp.host,
        "SESSION_BOT_SMTP_PORT": str(smtp.port),
        "SESSION_BOT_SMTP_TLS": "none",
    }


def text_of(received: Received) -> str:
    part = received.message().get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def subscribe_and_confirm(url: str, smtp: SmtpServer, email: str) -> httpx.Response:
    """The double opt-in as a person does it, on the server at ``url``; the confirm POST's page."""
    with httpx.Client(base_url=url, timeout=10) as http:
        assert http.post("/subscribe", data={"email": email, "name": ""}).status_code == 200
        (mail,) = wait_for(lambda: smtp.handler.to(email), f"the confirmation mail to {email}")
        link = re.search(r"https?://\S+/confirm/[A-Za-z0-9_.-]+", text_of(mail))
        assert link, text_of(mail)
        page = http.post(urlsplit(link.group(0)).path)
    assert page.status_code == 200
    return page


def finished_run(store: Store, trigger: str) -> dict[str, Any] | None:
    run = store.runs.last()
    return run if run and run["trigger"] == trigger and run["finished_at"] else None


def post_webhook(url: str, event: dict[str, Any]) -> httpx.Response:
    body = json.dumps(event).encode()
    ts = str(int(time.time()))
    headers = {
        "x-zm-request-timestamp": ts,
        "x-zm-signature": sign(HOOK_SECRET, ts, body),
        "content-type": "application/json",
    }
    return httpx.post(f"{url}/zoom/webhook", content=body, headers=headers, timeout=5)


def delete_in_zoom(zoom: ZoomSandbox, meeting_id: int) -> None:
    """Someone deletes the meeting in Zoom's web interface."""
    token = httpx.post(
        f"{zoom.oauth_url}/oauth/token",
        data={"grant_type": "account_credentials", "account_id": "sandbox-account"},
        auth=("sandbox-client", "sandbox-secret"),
        timeout=5,
    ).json()["access_token"]
    httpx.delete(
        f"{zoom.api_url}/meetings/{meeting_id}",
        headers={"Authorization": f"Bearer {token}"},
        timeout=5,
    ).raise_for_status()


def test_confirmation_and_webhook_on_the_standby_are_run_by_the_leader_within_seconds(
    tmp_path: Path, pg_url: str
) -> None:
    store = Store(pg_url)
    store.subscribers.add(
        "early@example.org",
        name=None,
        language="de",
        status="confirmed",
        now=dt.datetime.now(dt.UTC),
    )
    first = first_wednesday_after(10)
    (tmp_path / "plan.yaml").write_text(plan_text(first, invitation_days=20), "utf-8")  # due now
    key = f"willkommen/{first.isoformat()}"
    a = b = None
    with (
        ZoomSandbox(state_file=tmp_path / "zoom.json") as zoom,
        SmtpServer(CollectingHandler()) as smtp,
    ):
        envs = {n: base_env(tmp_path, n, pg_url, **env_for(zoom, smtp)) for n in ("a", "b")}
        try:
            a = Serve("a", tmp_path, envs["a"]).started()
            wait_for(lambda: finished_run(store, "start"), "the leader's start run")
            assert len(smtp.handler.to("early@example.org")) == 1  # the invitation went out
            b = Serve("b", tmp_path, envs["b"]).started()
            b.wait_for_log("leadership: standby")

            # 1. A late confirmation on the standby: the leader sends the invitation.
            asked = time.monotonic()
            page = subscribe_and_confirm(b.url, smtp, "spaet@example.org")
            assert "schon verschickt" in page.text
            mails = wait_for(
                lambda: m if len(m := smtp.handler.to("spaet@example.org")) == 2 else None,
                "the late invitation",
                timeout=15,
            )
            confirm_latency = time.monotonic() - asked
            session = store.sessions.get(key)
            assert session is not None and session.meeting_id is not None
            assert str(session.meeting_id) in text_of(mails[1])
            run = wait_for(lambda: finished_run(store, "confirm"), "the leader's confirm run")
            assert run["outcome"] == "ok"
            health = a.health()
            assert health["last_run"]["trigger"] == "confirm" and health["run_requested"] is None
            b.wait_for_log("run (confirm) requested from the leader")
            a.wait_for_log(f"run requested by standby pid {b.pid} on ")
            assert store.kv.get(RUN_REQUEST_KEY) is None  # taken by the leader's run
            assert len(smtp.handler.to("early@example.org")) == 1  # nobody else got it twice

            # 2. A Zoom webhook on the standby: the deleted meeting is made again by the leader.
            old_meeting = session.meeting_id
            delete_in_zoom(zoom, old_meeting)
            asked = time.monotonic()
            event = {"event": "meeting.deleted", "payload": {"object": {"id": old_meeting}}}
            resp = post_webhook(b.url, event)
            assert resp.status_code == 200 and resp.json() == {"status": "accepted"}
            run = wait_for(lambda: finished_run(store, "webhook"), "the leader's webhook run")
            webhook_latency = time.monotonic() - asked
            assert run["outcome"] == "ok"
            b.wait_for_log("run (webhook) requested from the leader")
            assert store.sessions.to_check() == []
            session = store.sessions.get(key)
            assert session is not None and session.meeting_id not in (None, old_meeting)
            assert list(zoom.meetings) == [session.meeting_id]
            assert a.health()["role"] == "leader" and b.health()["role"] == "standby"

            # 3. A request left while the leader cannot answer (frozen, then killed) is answered
            # by the standby's takeover run.
            a.proc.send_signal(signal.SIGSTOP)
            page = subscribe_and_confirm(b.url, smtp, "dritte@example.org")
            assert "schon verschickt" in page.text
            # The web page answered first; the request is recorded right after.
            pending = wait_for(lambda: b.health()["run_requested"], "the recorded request")
            assert pending["reason"] == "confirm"
            assert f"standby pid {b.pid}" in pending["by"]
            assert len(smtp.handler.to("dritte@example.org")) == 1  # the confirmation only
            a.proc.send_signal(signal.SIGKILL)
            a.proc.wait(timeout=10)
            b.wait_for_log("leadership: took over as leader", timeout=15)
            wait_for(lambda: len(smtp.handler.to("dritte@example.org")) == 2, "its invitation")
            b.wait_for_log(f"run (takeover) also answers the run request of standby pid {b.pid}")
            assert wait_for(lambda: finished_run(store, "takeover"), "the takeover run")
            assert store.kv.get(RUN_REQUEST_KEY) is None
            assert b.health()["run_requested"] is None
        finally:
            for serve in (a, b):
                if serve is not None:
                    if serve.proc.poll() is None:
                        serve.proc.send_signal(signal.SIGCONT)
                    serve.stop()
    store.close()
    print(
        f"\nstandby requests: late invitation {confirm_latency:.2f} s after the confirmation "
        f"request, webhook run finished {webhook_latency:.2f} s after the webhook"
    )


def test_a_confirmation_during_a_run_is_answered_by_a_run_right_after_it(tmp_path: Path) -> None:
    with SmtpServer(CollectingHandler(delay=0.05)) as smtp:
        settings = make_settings(
            tmp_path,
            smtp_host=smtp.host,
            smtp_port=smtp.port,
            smtp_tls="none",
            smtp_connections=1,
        )
        add_subscribers(settings, RECIPIENTS)  # the invitation takes ~2 s at this server
        daemon = make_daemon(settings, ManualClock(SEED_INVITATION_AT))
        daemon.start()
        try:
            wait_for(lambda: len(smtp.handler.messages) >= 3, "the start run to be sending")
            answer = daemon.admin_run("confirm")  # as the web app does after a confirmation
            assert answer["ok"] and answer["requested"]["reason"] == "confirm"
            assert RunRequest.decode(daemon.store.kv.get(RUN_REQUEST_KEY) or "").reason == "confirm"
            run = wait_for(lambda: finished_run(daemon.store, "confirm"), "the requested run")
            assert run["outcome"] == "ok"
            # The start run sent the invitation; the requested run found nothing left to send.
            assert len(smtp.handler.messages) == RECIPIENTS
            assert daemon.store.kv.get(RUN_REQUEST_KEY) is None
        finally:
            daemon.stop()
