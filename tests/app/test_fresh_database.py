"""A fresh or restored database adopts the session's meeting Zoom already has (issue 14,
finding 17: 15 fresh databases made 15 meetings for one session)."""

from __future__ import annotations

from pathlib import Path

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.mail import MaildirTransport
from session_bot.core.plan import load_plan
from session_bot.sandbox.zoom import ZoomSandbox
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT
from tests.support.settings import make_settings


def test_three_fresh_databases_share_one_meeting_per_session(
    tmp_path: Path, sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    clock.set(SEED_INVITATION_AT)
    plan = load_plan(EXAMPLE_PLAN)
    reports = []
    for n in range(3):
        settings = make_settings(tmp_path / f"install-{n}")
        store = wiring.open_store(settings)
        zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
        transport = MaildirTransport(settings.resolved_outbox)
        runner = wiring.build_runner(settings, plan, store, zoom, clock, transport)
        reports.append(runner.run("test"))
        row = store.sessions.get("willkommen/2025-02-26")
        assert row is not None and row.meeting_id is not None
        store.close()
    assert [(r.meetings_created, r.meetings_adopted) for r in reports] == [(1, 0), (0, 1), (0, 1)]
    assert len(sandbox.meetings) == 1
