"""POST /zoom/webhook over real HTTP: validation challenge, signatures, drift repair after answer."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from fastapi import FastAPI

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport, SmtpTransport
from session_bot.cli.demo import seed_subscribers
from session_bot.core.plan import Plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings, load_settings
from session_bot.web.deps import WebContext
from session_bot.web.zoom_webhook import router, sign
from tests.conftest import EXAMPLE_PLAN, ROOT, SEED_INVITATION_AT, SEED_MEETING
from tests.support.smtp_server import SmtpServer
from tests.support.web_server import ServerThread

SECRET = "zoom-webhook-secret-123"


@pytest.fixture
def hook_settings(tmp_path: Path) -> Settings:
    return load_settings(
        None,
        var_dir=tmp_path / "var",
        plan=EXAMPLE_PLAN,
        secret_key="test-secret-key-0123456789abcdef",
        zoom_webhook_secret=SECRET,
    )


class Setup:
    def __init__(self, url: str, store: Store, smtp: SmtpServer, sandbox: ZoomSandbox,
                 runs: list[str], clock: ManualClock) -> None:  # fmt: skip
        self.url, self.store, self.smtp, self.sandbox, self.runs, self.clock = (
            url, store, smtp, sandbox, runs, clock,
        )  # fmt: skip

    def post(
        self, event: dict[str, Any], *, secret: str = SECRET, age: int = 0
    ) -> requests.Response:
        body = json.dumps(event).encode()
        ts = str(int(self.clock().timestamp()) - age)
        headers = {
            "x-zm-request-timestamp": ts,
            "x-zm-signature": sign(secret, ts, body),
            "content-type": "application/json",
        }
        return requests.post(self.url + "/zoom/webhook", data=body, headers=headers, timeout=5)


@pytest.fixture
def setup(
    hook_settings: Settings, example_plan: Plan, sandbox: ZoomSandbox, tmp_path: Path
) -> Iterator[Setup]:
    store = Store(hook_settings.resolved_database_url)
    store.ensure_schema()
    clock = ManualClock(SEED_INVITATION_AT)
    seed_subscribers(store, ROOT / "examples" / "subscribers.csv", clock())
    sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
    runs: list[str] = []

    def runner(transport: Any) -> Any:
        zoom = wiring.sandbox_zoom(hook_settings, store, clock, sandbox)  # fmt: skip
        return wiring.build_runner(hook_settings, example_plan, store, zoom, clock, transport)

    runner(MaildirTransport(tmp_path / "outbox")).run("test")  # the invitation went out

    with SmtpServer() as smtp:

        def trigger(reason: str) -> dict[str, Any]:
            runs.append(reason)
            transport = SmtpTransport(smtp.host, smtp.port, tls="none")
            report = runner(transport).run(reason)
            transport.close()
            return {"summary": report.summary()}

        app = FastAPI()
        app.include_router(router)
        app.state.ctx = WebContext(
            settings=hook_settings, store=store, clock=clock, plan=lambda: example_plan,
            transport=lambda: MaildirTransport(tmp_path / "outbox"), secret_key="k" * 32,
            trigger_run=trigger,
        )  # fmt: skip
        with ServerThread(app) as server:
            yield Setup(server.url, store, smtp, sandbox, runs, clock)


def test_url_validation_challenge(setup: Setup) -> None:
    resp = setup.post({"event": "endpoint.url_validation", "payload": {"plainToken": "abc123"}})
    assert resp.status_code == 200
    want = hmac.new(SECRET.encode(), b"abc123", hashlib.sha256).hexdigest()
    assert resp.json() == {"plainToken": "abc123", "encryptedToken": want}


def test_bad_signature_or_stale_request_is_refused_and_changes_nothing(setup: Setup) -> None:
    deleted = {"event": "meeting.deleted", "payload": {"object": {"id": 66547677759}}}
    assert setup.post(deleted, secret="wrong").status_code == 401
    assert setup.post(deleted, age=3600).status_code == 401
    assert setup.store.sessions.to_check() == []
    assert setup.runs == []


def test_unknown_meeting_answers_200_and_changes_nothing(setup: Setup) -> None:
    resp = setup.post({"event": "meeting.deleted", "payload": {"object": {"id": 12345678901}}})
    assert resp.status_code == 200 and resp.json() == {"status": "ignored"}
    assert setup.store.sessions.to_check() == [] and setup.runs == []


def test_deleted_meeting_is_recreated_after_the_answer(setup: Setup) -> None:
    # Someone deletes the meeting in Zoom; Zoom tells us.
    requests.delete(
        f"{setup.sandbox.api_url}/meetings/66547677759",
        headers={"Authorization": f"Bearer {_token(setup.sandbox)}"},
        timeout=5,
    ).raise_for_status()
    resp = setup.post({"event": "meeting.deleted", "payload": {"object": {"id": 66547677759}}})
    assert resp.status_code == 200 and resp.json() == {"status": "accepted"}
    deadline = time.monotonic() + 10
    while len(setup.smtp.handler.messages) < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert setup.runs == ["webhook"]
    (new_id,) = setup.sandbox.meetings
    assert new_id != 66547677759
    assert len(setup.smtp.handler.messages) == 5  # one update per subscriber with the new link
    body = setup.smtp.handler.messages[0].message().get_body(preferencelist=("plain",))
    assert body is not None and f"/j/{new_id}" in str(body.get_content())
    assert setup.store.sessions.to_check() == []


def _token(sandbox: ZoomSandbox) -> str:
    resp = requests.post(
        f"{sandbox.oauth_url}/oauth/token",
        data={"grant_type": "account_credentials", "account_id": "a"},
        auth=("c", "s"),
        timeout=5,
    )
    resp.raise_for_status()
    return str(resp.json()["access_token"])
