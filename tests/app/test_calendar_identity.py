"""Calendar identity is fixed at first use (issue 14, finding 4): after the public URL changes,
updates and cancellations still carry the UID of the event in everyone's calendar."""

from __future__ import annotations

from tests.app.test_plan_changes import World, berlin, cal, event
from tests.app.test_plan_changes import world as world  # the fixture
from tests.conftest import SEED_INVITATION_AT


def test_a_new_public_url_keeps_the_calendar_uid(world: World) -> None:
    invitations = world.run(SEED_INVITATION_AT)
    uid = str(event(invitations[0])["UID"])
    assert uid == "willkommen-2025-02-26@session-bot.example.org"

    world.settings = world.settings.model_copy(
        update={"public_url": "https://neu.example.net/willkommen"}
    )
    world.edit('        cancelled: true\n        reason: "Die Referentin ist erkrankt."\n')
    cancels = world.run(berlin(2025, 2, 20, 10))
    assert len(cancels) == 5
    assert cal(cancels[0])["METHOD"] == "CANCEL"
    assert {str(event(m)["UID"]) for m in cancels} == {uid}
    # The links follow the new address all the same.
    assert b"https://neu.example.net/willkommen/unsubscribe/" in cancels[0].data
