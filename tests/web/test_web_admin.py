"""GET /healthz and POST /admin/run over real HTTP (uvicorn on 127.0.0.1), with a real runner."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.core.plan import Plan
from session_bot.daemon.service import report_dict
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings, load_settings
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT
from tests.support.web_server import ServerThread

TOKEN = "admin-token-0123456789abcdef-XYZ"
# One minute before the seed session's invitation moment (12 Feb 2025, 09:00 Berlin).
NOW = SEED_INVITATION_AT - dt.timedelta(minutes=1)


def settings_for(tmp_path: Path, **extra: Any) -> Settings:
    return load_settings(
        None,
        var_dir=tmp_path / "var",
        plan=EXAMPLE_PLAN,
        secret_key="test-secret-key-0123456789abcdef",
        public_url="https://session-bot.example.org",
        **extra,
    )


def serve_app(
    settings: Settings, plan: Plan, store: Store, clock: ManualClock, sandbox: ZoomSandbox
) -> ServerThread:
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    transport = MaildirTransport(settings.resolved_outbox)
    runner = wiring.build_runner(settings, plan, store, zoom, clock, transport=transport)
    ctx = WebContext(
        settings=settings,
        store=store,
        clock=clock,
        plan=lambda: plan,
        transport=lambda: transport,
        secret_key="test-secret-key-0123456789abcdef",
        trigger_run=lambda trigger: report_dict(runner.run(trigger)),
    )
    return ServerThread(create_app(ctx))


@pytest.fixture
def live(
    tmp_path: Path, example_plan: Plan
) -> Iterator[tuple[str, ManualClock, Store, ZoomSandbox]]:
    settings = settings_for(tmp_path, admin_token=TOKEN)
    store = wiring.open_store(settings)
    store.subscribers.add(
        "anna@example.org", name=None, language="de", status="confirmed", now=NOW, confirmed_at=NOW
    )
    clock = ManualClock(NOW)
    with (
        ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox,
        serve_app(settings, example_plan, store, clock, sandbox) as server,
    ):
        yield server.url, clock, store, sandbox
    store.close()


def test_healthz_reports_last_run_and_next_due(
    live: tuple[str, ManualClock, Store, ZoomSandbox],
) -> None:
    url, clock, _, _ = live
    r = httpx.get(f"{url}/healthz")
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["role"] == "leader" and body["last_run"] is None
    assert dt.datetime.fromisoformat(body["next_due"]) == SEED_INVITATION_AT

    clock.set(SEED_INVITATION_AT)
    ok = httpx.post(f"{url}/admin/run", headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200, ok.text
    body = httpx.get(f"{url}/healthz").json()
    assert body["last_run"]["trigger"] == "admin" and body["last_run"]["outcome"] == "ok"
    # Next: the reminder of 26 February, the day before at 09:00 Berlin (08:00 UTC).
    assert dt.datetime.fromisoformat(body["next_due"]) == dt.datetime(
        2025, 2, 25, 8, 0, tzinfo=dt.UTC
    )


@pytest.mark.parametrize(
    "header",
    [None, "Bearer wrong-token-0123456789abcdef", f"Basic {TOKEN}", f"Bearer {TOKEN}x", "Bearer"],
)
def test_admin_run_refuses_without_the_right_token(
    live: tuple[str, ManualClock, Store, ZoomSandbox], header: str | None
) -> None:
    url, clock, store, sandbox = live
    clock.set(SEED_INVITATION_AT)
    r = httpx.post(
        f"{url}/admin/run", headers={"Authorization": header} if header is not None else {}
    )
    assert r.status_code == 401
    assert r.headers["WWW-Authenticate"] == "Bearer"
    assert TOKEN not in r.text
    assert store.runs.last() is None and sandbox.meetings == {}


def test_admin_run_with_the_token_runs_the_reconcile(
    live: tuple[str, ManualClock, Store, ZoomSandbox],
) -> None:
    url, clock, _, sandbox = live
    clock.set(SEED_INVITATION_AT)
    r = httpx.post(f"{url}/admin/run", headers={"Authorization": f"bearer {TOKEN}"})
    assert r.status_code == 200
    body = r.json()
    assert body["ok"] is True and body["trigger"] == "admin"
    assert body["meetings_created"] == 1 and body["sent"] == 1
    assert len(sandbox.meetings) == 1
    again = httpx.post(f"{url}/admin/run", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert again["done"] == [] and again["sent"] == 0  # idempotent


def test_admin_api_is_off_without_a_configured_token(tmp_path: Path, example_plan: Plan) -> None:
    settings = settings_for(tmp_path)
    store = wiring.open_store(settings)
    clock = ManualClock(SEED_INVITATION_AT)
    with (
        ZoomSandbox(clock=clock) as sandbox,
        serve_app(settings, example_plan, store, clock, sandbox) as server,
    ):
        r = httpx.post(f"{server.url}/admin/run", headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 503
        assert "SESSION_BOT_ADMIN_TOKEN" in r.json()["error"]
        assert sandbox.meetings == {} and store.runs.last() is None
    store.close()


def test_healthz_is_503_when_the_database_cannot_be_read(
    tmp_path: Path, example_plan: Plan
) -> None:
    settings = settings_for(tmp_path)
    # A database whose tables are gone (the file was replaced, say): reads fail.
    broken = Store(f"sqlite:///{tmp_path / 'broken.db'}")
    ctx = WebContext(
        settings=settings,
        store=broken,
        clock=ManualClock(NOW),
        plan=lambda: example_plan,
        transport=lambda: MaildirTransport(tmp_path / "outbox"),
        secret_key="test-secret-key-0123456789abcdef",
    )
    with ServerThread(create_app(ctx)) as server:
        r = httpx.get(f"{server.url}/healthz")
    assert r.status_code == 503
    assert r.json()["ok"] is False


def test_the_subscriber_pages_and_the_zoom_webhook_are_served_too(
    live: tuple[str, ManualClock, Store, ZoomSandbox],
) -> None:
    url, _, _, _ = live
    page = httpx.get(f"{url}/subscribe")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    hook = httpx.post(f"{url}/zoom/webhook", content=b"{}")
    # The route is there; without SESSION_BOT_ZOOM_WEBHOOK_SECRET it says webhooks are off.
    assert "SESSION_BOT_ZOOM_WEBHOOK_SECRET" in hook.json()["message"]
