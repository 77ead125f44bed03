from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.core.plan import Plan
from session_bot.sandbox.zoom import ZoomSandbox
from tests.conftest import SEED_INVITATION_AT
from tests.support.console import Console, console_server
from tests.support.settings import make_settings


@pytest.fixture(params=["http"])
def console(
    tmp_path: Path, example_plan: Plan, request: pytest.FixtureRequest
) -> Iterator[Console]:
    """The console over the example plan at the seed session's invitation moment (not yet run),
    with three confirmed subscribers. Plain http, as the test server speaks it (an https public
    URL makes the cookies Secure, which a client sends over https only)."""
    scheme = request.param
    public = "https://session-bot.example.org" if scheme == "https" else "http://127.0.0.1:8080"
    extra = (
        {
            "zoom_client_secret": "zoom-secret-4711-abcdef",
            "smtp_password": "smtp-password-0815-xyz",
            "admin_token": "admin-token-0123456789abcdef-XYZ",
            "zoom_webhook_secret": "webhook-secret-42-qrstuv",
        }
        if scheme == "secrets"
        else {}
    )
    settings = make_settings(tmp_path, public_url=public, **extra)
    store = wiring.open_store(settings)
    clock = ManualClock(SEED_INVITATION_AT)
    for n in range(3):
        store.subscribers.add(
            f"person{n}@example.org", name=None, language="de", status="confirmed",
            now=clock(), confirmed_at=clock(),
        )  # fmt: skip
    with (
        ZoomSandbox(state_file=tmp_path / "zoom.json", clock=clock) as sandbox,
        console_server(settings, example_plan, store, clock, sandbox) as c,
    ):
        yield c
    store.close()
