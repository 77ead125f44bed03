"""A confirmation link confirms only the request it was mailed for (issue 14, finding 6).

Links live 30 days; one mailed before its owner unsubscribed, was removed or bounced must not
subscribe them again. Real stores: SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt

from session_bot.adapters.db.store import Store
from session_bot.app.subscriber_tokens import micros
from session_bot.app.subscriptions import (
    RequestProof,
    confirm,
    inspect_confirm_token,
    remove_subscriber,
    request_subscription,
    unsubscribe,
)
from session_bot.core.records import DeliveryOutcome
from session_bot.core.tokens import make_token

KEY = "test-secret-key-0123456789abcdef"
T0 = dt.datetime(2025, 2, 13, 9, 0, tzinfo=dt.UTC)
PROOF = RequestProof("192.0.2.1", "Firefox", "https://x.example/subscribe")
ANNA = "anna@example.org"


def at(minutes: int) -> dt.datetime:
    return T0 + dt.timedelta(minutes=minutes)


def ask(store: Store, now: dt.datetime) -> str:
    out = request_subscription(
        store, KEY, address=ANNA, name="Anna", language="de", consent_version="de-1",
        proof=PROOF, now=now,
    )  # fmt: skip
    assert out.action == "send-confirmation" and out.confirm_token is not None
    return out.confirm_token


def status(store: Store) -> str:
    row = store.subscribers.get(ANNA)
    assert row is not None
    return str(row["status"])


def sid(store: Store) -> int:
    row = store.subscribers.get(ANNA)
    assert row is not None
    return int(row["id"])


def refused(store: Store, link: str, now: dt.datetime) -> bool:
    """The link shows the "no longer valid, subscribe again" page and confirms nothing."""
    before = store.subscribers.get(ANNA)
    seen = inspect_confirm_token(store, KEY, link, now)
    done = confirm(store, KEY, link, proof=PROOF, now=now)
    return (
        seen.state == done.state == "expired"
        and not done.just_now
        and store.subscribers.get(ANNA) == before
    )


def test_a_link_mailed_before_unsubscribing_does_not_subscribe_again(store: Store) -> None:
    link = ask(store, T0)
    assert confirm(store, KEY, link, proof=PROOF, now=at(1)).just_now
    assert unsubscribe(store, sid(store), at(2)) == "unsubscribed"
    assert refused(store, link, at(3))
    assert status(store) == "unsubscribed"


def test_a_pending_request_removed_by_the_organiser_cannot_be_confirmed(store: Store) -> None:
    link = ask(store, T0)
    assert remove_subscriber(store, ANNA, at(1)) == "unsubscribed"
    assert refused(store, link, at(2))
    assert status(store) == "unsubscribed"


def test_a_link_mailed_before_the_address_bounced_does_not_revive_it(store: Store) -> None:
    link = ask(store, T0)
    assert confirm(store, KEY, link, proof=PROOF, now=at(1)).just_now
    bounce = DeliveryOutcome(
        0, sid(store), "failed", at(2), 550, "550 5.1.1 no such mailbox", hard_bounce=True
    )
    store.deliveries.record_outcomes([bounce], bounce_limit=1)
    assert status(store) == "bounced"
    assert refused(store, link, at(3))
    assert status(store) == "bounced"


def test_a_new_request_after_leaving_confirms_with_its_own_link_only(store: Store) -> None:
    first = ask(store, T0)
    assert confirm(store, KEY, first, proof=PROOF, now=at(1)).just_now
    assert unsubscribe(store, sid(store), at(2)) == "unsubscribed"
    second = ask(store, at(3))
    assert inspect_confirm_token(store, KEY, first, at(4)).state == "invalid"  # retired
    assert inspect_confirm_token(store, KEY, second, at(4)).state == "valid"
    done = confirm(store, KEY, second, proof=PROOF, now=at(4))
    assert done.just_now and status(store) == "confirmed"
    assert confirm(store, KEY, second, proof=PROOF, now=at(5)).state == "confirmed"  # reload
    # Leaving again retires the second link as well.
    assert unsubscribe(store, sid(store), at(6)) == "unsubscribed"
    assert refused(store, second, at(7))
    assert status(store) == "unsubscribed"


def test_a_bounced_address_may_subscribe_again_through_the_form(store: Store) -> None:
    assert confirm(store, KEY, ask(store, T0), proof=PROOF, now=at(1)).just_now
    bounce = DeliveryOutcome(0, sid(store), "failed", at(2), 550, "550 5.1.1", hard_bounce=True)
    store.deliveries.record_outcomes([bounce], bounce_limit=1)
    link = ask(store, at(3))
    assert confirm(store, KEY, link, proof=PROOF, now=at(4)).just_now
    row = store.subscribers.get(ANNA)
    assert row is not None and row["status"] == "confirmed" and row["bounced_at"] is None


def test_a_link_mailed_before_this_release_still_confirms_an_untouched_request(
    store: Store,
) -> None:
    ask(store, T0)
    row = store.subscribers.get(ANNA)
    assert row is not None
    # The old form named the subscriber and the request's moment only.
    legacy = make_token(KEY, "confirm", f"{row['id']}.{micros(row['requested_at'])}")
    assert inspect_confirm_token(store, KEY, legacy, at(1)).state == "valid"
    assert unsubscribe(store, sid(store), at(2)) == "unsubscribed"
    assert refused(store, legacy, at(3))
