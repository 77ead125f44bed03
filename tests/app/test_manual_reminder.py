"""A reminder sent by hand before its moment does not cancel the scheduled one (issue 19)."""

from __future__ import annotations

from session_bot import wiring
from session_bot.adapters.mail import SmtpTransport
from session_bot.core.plan import find_occurrence, parse_plan
from tests.app.test_plan_changes import World, berlin
from tests.app.test_plan_changes import world as world  # the fixture
from tests.conftest import SEED_INVITATION_AT


def test_the_scheduled_reminder_still_goes_after_one_sent_by_hand(world: World) -> None:
    assert len(world.run(SEED_INVITATION_AT)) == 5
    # Ten days before the reminder moment the organiser sends one herself.
    world.clock.set(berlin(2025, 2, 15, 10))
    plan = parse_plan(world.plan_text, "plan.yaml")
    zoom = wiring.sandbox_zoom(world.settings, world.store, world.clock, world.sandbox)
    transport = SmtpTransport(world.smtp.host, world.smtp.port, tls="none")
    runner = wiring.build_runner(world.settings, plan, world.store, zoom, world.clock, transport)
    occ = find_occurrence(plan, berlin(2025, 2, 26, 12).date())
    sent = runner.send(occ, "reminder")
    transport.close()
    assert sent.delivery.sent == 5
    world.seen = len(world.smtp.handler.messages)

    assert world.run(berlin(2025, 2, 20, 10)) == []  # nothing before the moment
    scheduled = world.run(berlin(2025, 2, 25, 9, 5))
    assert len(scheduled) == 5  # the scheduled reminder, as planned
    assert world.run(berlin(2025, 2, 25, 10)) == []  # and only once
    kinds = sorted(
        m.kind for m in world.store.mailings.of_session(world.store.sessions.get(occ.key).id)
    )  # type: ignore[union-attr]
    assert kinds == ["invitation", "reminder", "reminder"]
