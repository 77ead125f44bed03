"""A change to an announced session waits for the organiser (``updates: review``, the default):
nothing is mailed until she sends it; dismissed, nothing is mailed at all."""

from __future__ import annotations

import pytest

from session_bot.app.pending import NotPending, PendingDesk
from session_bot.app.plan_book import Who
from session_bot.core.plan import parse_plan
from tests.app.test_plan_changes import World, berlin, cal, event, text
from tests.app.test_plan_changes import world as world  # the fixture
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT

KEY = "willkommen/2025-02-26"
MEETING = 66547677759
ORGANISER = Who("kristina.neumann@example.org", "127.0.0.1")


@pytest.fixture
def reviewed(world: World) -> World:
    world.plan_text = EXAMPLE_PLAN.read_text(encoding="utf-8")  # the default: review
    assert len(world.run(SEED_INVITATION_AT)) == 5
    return world


def desk(world: World) -> PendingDesk:
    return PendingDesk(world.store, world.clock, lambda: parse_plan(world.plan_text, "plan.yaml"))


def test_a_time_change_waits_until_sent_then_goes_once_and_moves_the_meeting(
    reviewed: World,
) -> None:
    world = reviewed
    world.edit('        start: "14:00"\n')
    assert world.run(berlin(2025, 2, 13, 10)) == []  # nothing mailed by itself
    (change,) = desk(world).pending()
    assert change.kind == "update" and change.fields == ("time",)
    assert change.before["start"] == "2025-02-26T12:30:00+01:00"
    assert world.sandbox.meetings[MEETING]["start_time"] == "2025-02-26T11:30:00Z"

    desk(world).send(KEY, ORGANISER)
    updates = world.run(berlin(2025, 2, 13, 11))
    assert len(updates) == 5  # one per subscriber
    ev = event(updates[0])
    assert int(ev["SEQUENCE"]) == 1
    assert "Neuer Termin: Mittwoch, 26. Februar 2025, 14:00–15:00 Uhr" in text(updates[0])
    assert world.sandbox.meetings[MEETING]["start_time"] == "2025-02-26T13:00:00Z"
    assert desk(world).pending() == []
    assert world.run(berlin(2025, 2, 13, 12)) == []  # exactly once
    actions = [(a.action, a.detail) for a in world.store.audit.latest()]
    assert ("update-send", f"{KEY} update (time)") in actions


def test_the_update_keeps_the_invitations_uid(reviewed: World) -> None:
    world = reviewed
    invitation_uid = str(event(world.smtp.handler.messages[0])["UID"])
    world.edit('        start: "14:00"\n')
    world.run(berlin(2025, 2, 13, 10))
    desk(world).send(KEY, ORGANISER)
    (first, *_) = world.run(berlin(2025, 2, 13, 11))
    assert str(event(first)["UID"]) == invitation_uid and int(event(first)["SEQUENCE"]) == 1


def test_a_dismissed_typo_fix_mails_nobody(reviewed: World) -> None:
    world = reviewed
    world.plan_text = world.plan_text.replace("Anna Lena Hemmer", "Anna-Lena Hemmer")
    assert world.run(berlin(2025, 2, 13, 10)) == []
    (change,) = desk(world).pending()
    assert change.fields == ("speakers",)
    desk(world).dismiss(KEY, ORGANISER)
    assert desk(world).pending() == []
    assert world.run(berlin(2025, 2, 13, 11)) == []
    reminders = world.run(berlin(2025, 2, 25, 9))  # the reminder says what the plan says
    assert len(reminders) == 5 and "Anna-Lena Hemmer" in text(reminders[0])
    assert int(event(reminders[0])["SEQUENCE"]) == 0  # no update was sent


def test_a_cancellation_waits_cannot_be_dismissed_and_goes_once_when_sent(
    reviewed: World,
) -> None:
    world = reviewed
    world.edit('        cancelled: true\n        reason: "Die Referentin ist erkrankt."\n')
    assert world.run(berlin(2025, 2, 13, 10)) == []
    assert MEETING in world.sandbox.meetings  # kept until she sends the cancellation
    (change,) = desk(world).pending()
    assert change.kind == "cancellation"
    with pytest.raises(NotPending):
        desk(world).dismiss(KEY, ORGANISER)
    desk(world).send(KEY, ORGANISER)
    cancels = world.run(berlin(2025, 2, 13, 11))
    assert len(cancels) == 5 and cal(cancels[0])["METHOD"] == "CANCEL"
    assert "Die Referentin ist erkrankt." in text(cancels[0])
    assert world.sandbox.meetings == {}
    assert world.run(berlin(2025, 2, 14, 10)) == []


def test_a_change_edited_again_after_sending_waits_again(reviewed: World) -> None:
    world = reviewed
    world.edit('        start: "14:00"\n')
    world.run(berlin(2025, 2, 13, 10))
    desk(world).send(KEY, ORGANISER)
    world.plan_text = world.plan_text.replace('start: "14:00"', 'start: "15:00"')
    assert world.run(berlin(2025, 2, 13, 11)) == []  # she approved 14:00, not 15:00
    (change,) = desk(world).pending()
    assert change.fields == ("time",)


def test_an_update_still_pending_the_day_before_the_reminder_alerts_once(reviewed: World) -> None:
    world = reviewed
    world.edit('        start: "14:00"\n')
    world.run(berlin(2025, 2, 13, 10))
    assert world.alerts == []
    world.run(berlin(2025, 2, 24, 9, 30))  # reminder 2025-02-25 09:00, alert from 24 h before
    assert len(world.alerts) == 1 and "26.02.2025" in world.alerts[0]
    world.run(berlin(2025, 2, 24, 10, 30))
    assert len(world.alerts) == 1


def test_an_automatic_series_mails_at_once_as_before(reviewed: World) -> None:
    world = reviewed
    world.plan_text = world.plan_text.replace(
        "    language: de\n", "    updates: automatic\n    language: de\n"
    )
    world.edit('        start: "14:00"\n')
    assert len(world.run(berlin(2025, 2, 13, 10))) == 5
