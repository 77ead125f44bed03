"""The web's writer thread (``web/writer.py``): what queues up is written together, in order,
one transaction for all; a failure is only its own request's; closing writes what is queued."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest

from session_bot.adapters.db.store import Store
from session_bot.app import subscriptions as subs
from session_bot.core.errors import StoreError
from session_bot.web.writer import BatchWriter

SECRET = "test-secret-key-0123456789abcdef"
NOW = dt.datetime(2025, 3, 1, 9, 0, tzinfo=dt.UTC)


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    s.ensure_schema()
    return s


def _request(address: str, ip: str = "192.0.2.1") -> subs.SubscribeRequest:
    return subs.prepare_request(
        address=address,
        name=None,
        language="de",
        consent_version="de-test",
        proof=subs.RequestProof(ip, "pytest", "https://example.org/subscribe"),
        now=NOW,
    )


def test_a_batch_is_recorded_as_if_one_request_came_after_the_other(
    store: Store, tmp_path: Path
) -> None:
    # Twelve from one client, one address twice: the same outcomes as one by one.
    addresses = [f"p{i}@example.org" for i in range(10)] + ["p3@example.org", "late@example.org"]
    together = subs.record_requests(store, SECRET, [_request(a) for a in addresses])
    alone = Store(f"sqlite:///{tmp_path / 'alone.sqlite'}")
    alone.ensure_schema()
    one_by_one = [subs.record_requests(alone, SECRET, [_request(a)])[0] for a in addresses]
    assert together == one_by_one
    assert [o.action for o in together][-2:] == ["client-limited", "client-limited"]
    assert store.subscribers.get("p3@example.org")["status"] == "pending"  # type: ignore[index]


def test_what_queues_up_meanwhile_is_written_in_one_transaction(store: Store) -> None:
    batches: list[int] = []

    def write(requests: Sequence[subs.SubscribeRequest]) -> list[subs.SubscribeOutcome]:
        batches.append(len(requests))
        return subs.record_requests(store, SECRET, requests)

    writer = BatchWriter(write)

    async def sign_up_all() -> list[subs.SubscribeOutcome]:
        ips = [f"192.0.2.{i}" for i in range(1, 9)]
        with store.db.writer():  # a delivery writes: the requests queue up behind it
            tasks = [
                asyncio.ensure_future(writer.submit(_request(f"q{i}@example.org", ip)))
                for i, ip in enumerate(ips)
            ]
            await asyncio.sleep(0.2)
            assert not any(t.done() for t in tasks)  # and the loop is free meanwhile
        return list(await asyncio.gather(*tasks))

    outcomes = asyncio.run(sign_up_all())
    writer.close()
    assert [o.email for o in outcomes] == [f"q{i}@example.org" for i in range(8)]
    assert {o.action for o in outcomes} == {"send-confirmation"}
    assert len({o.subscriber_id for o in outcomes}) == 8
    # The first was taken at once and waited for the lock; the rest came together after it.
    assert sum(batches) == 8 and len(batches) <= 2


def test_a_request_that_fails_fails_alone(store: Store) -> None:
    def write(requests: Sequence[subs.SubscribeRequest]) -> list[subs.SubscribeOutcome]:
        if any(r.email.startswith("broken") for r in requests):
            raise StoreError("the database refused this one")
        return subs.record_requests(store, SECRET, requests)

    writer = BatchWriter(write)

    async def sign_up_all() -> list[subs.SubscribeOutcome | BaseException]:
        with store.db.writer():
            first = asyncio.ensure_future(writer.submit(_request("first@example.org")))
            await asyncio.sleep(0.1)
            rest = [
                asyncio.ensure_future(writer.submit(_request(a, f"192.0.2.{i + 2}")))
                for i, a in enumerate(["a@example.org", "broken@example.org", "b@example.org"])
            ]
        return await asyncio.gather(first, *rest, return_exceptions=True)

    outcomes = asyncio.run(sign_up_all())
    writer.close()
    assert isinstance(outcomes[2], StoreError)
    for o in (outcomes[0], outcomes[1], outcomes[3]):
        assert isinstance(o, subs.SubscribeOutcome) and o.action == "send-confirmation"
    assert store.subscribers.get("broken@example.org") is None


def test_close_writes_what_is_queued_and_refuses_more(store: Store) -> None:
    writer = BatchWriter(lambda rs: subs.record_requests(store, SECRET, rs))
    loop = asyncio.new_event_loop()
    queued: list[asyncio.Future[subs.SubscribeOutcome]] = []
    with store.db.writer():
        for i in range(5):
            queued.append(loop.create_task(writer.submit(_request(f"c{i}@example.org"))))
        loop.run_until_complete(asyncio.sleep(0.05))  # the tasks hand their requests over
        closing = threading.Thread(target=writer.close)
        closing.start()
    closing.join(timeout=10)
    assert not closing.is_alive()
    for i in range(5):
        assert store.subscribers.get(f"c{i}@example.org") is not None
    loop.run_until_complete(asyncio.gather(*queued))
    with pytest.raises(RuntimeError, match="closed"):
        loop.run_until_complete(writer.submit(_request("late@example.org")))
    loop.close()
