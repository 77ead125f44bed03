"""Delivery against a real aiosmtpd server on 127.0.0.1 with injected answers and drops."""

from __future__ import annotations

import datetime as dt
import logging
import os
import threading
from typing import Any

import pytest

from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.app import connection_loop
from session_bot.app.delivery import deliver_mailing
from session_bot.core.errors import MailError
from session_bot.core.records import DeliveryRow
from tests.support.delivery import (
    SENDER,
    add_subscribers,
    address,
    fast_policy,
    frozen_mailing,
    personalise,
    rows,
    sending_rows,
    set_subscriber_status,
    statuses,
    subscriber,
    utc_now,
)
from tests.support.smtp_server import CollectingHandler, Fault, SmtpServer, free_port


def deliver(store: Store, srv: SmtpServer, mailing_id: int, connections: int = 1, **policy: object):  # type: ignore[no-untyped-def]
    transport = SmtpTransport(srv.host, srv.port, tls="none", timeout=5)
    try:
        return deliver_mailing(
            store,
            transport,
            mailing_id,
            personalise,
            sender=SENDER,
            clock=utc_now,
            connections=connections,
            policy=fast_policy(**policy),
        )
    finally:
        transport.close()


def test_every_recipient_once_over_parallel_reused_connections(store: Store) -> None:
    add_subscribers(store, 200)
    mailing = frozen_mailing(store)
    with SmtpServer() as srv:
        report = deliver(store, srv, mailing, connections=4, batch=5)
        assert srv.handler.connections == 4  # one per connection, reused for every message
        copies = srv.handler.copies()
    assert report.sent == 200 and report.permanent == report.temporary == 0
    assert copies == {address(i): 1 for i in range(200)}
    log = rows(store, mailing)
    assert {r["status"] for r in log.values()} == {"sent"}
    assert all(r["last_code"] == 250 and r["sent_at"] is not None for r in log.values())
    assert store.mailings.get(mailing).finished_at is not None


class CountingLedger:
    """The store's ledger, noting each claim and how many rows were `sending` right after it."""

    def __init__(self, store: Store) -> None:
        self._ledger = store.deliveries
        self._store = store
        self.claims: list[tuple[int, int]] = []  # rows claimed, rows `sending` after the claim

    def claim(self, mailing_id: int, **kw: Any) -> Any:
        got = self._ledger.claim(mailing_id, **kw)
        if got.rows:
            sending = sum(
                1 for r in rows(self._store, mailing_id).values() if r["status"] == "sending"
            )
            self.claims.append((len(got.rows), sending))
        return got

    def __getattr__(self, name: str) -> Any:
        return getattr(self._ledger, name)


def test_one_claim_feeds_every_connection_and_never_more_than_the_bound_is_sending(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    add_subscribers(store, 200)
    mailing = frozen_mailing(store)
    ledger = CountingLedger(store)
    monkeypatch.setattr(store, "deliveries", ledger)
    with SmtpServer() as srv:
        report = deliver(store, srv, mailing, connections=4, batch=5)
        copies = srv.handler.copies()
    assert report.sent == 200 and copies == {address(i): 1 for i in range(200)}
    # 4 connections × 5: a claim tops the process up to 20 rows held, never beyond.
    assert max(sending for _, sending in ledger.claims) <= 20
    assert ledger.claims[0][0] == 20
    # One claim for all four connections, not one each (40 claims of 5 would be one each).
    assert len(ledger.claims) < 200 / 5 / 2


def test_a_batch_of_one_over_four_connections_sends_everyone_once(store: Store) -> None:
    # Four connections can hold more rows (one sending, one next) than a claim of 4 allows:
    # the claimer waits for their answers instead of claiming nothing over and over.
    add_subscribers(store, 30)
    mailing = frozen_mailing(store)
    with SmtpServer() as srv:
        report = deliver(store, srv, mailing, connections=4, batch=1)
        copies = srv.handler.copies()
    assert report.sent == 30 and copies == {address(i): 1 for i in range(30)}


def test_messages_are_sent_from_a_low_priority_thread_and_the_caller_keeps_its_own(
    store: Store,
) -> None:
    add_subscribers(store, 3)
    mailing = frozen_mailing(store)
    seen: list[int] = []

    def noting(row: DeliveryRow) -> bytes:
        seen.append(os.getpriority(os.PRIO_PROCESS, threading.get_native_id()))
        return personalise(row)

    mine = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    with SmtpServer() as srv:
        transport = SmtpTransport(srv.host, srv.port, tls="none", timeout=5)
        report = deliver_mailing(
            store, transport, mailing, noting, sender=SENDER, clock=utc_now, policy=fast_policy()
        )
        transport.close()
    assert report.sent == 3
    assert seen == [max(mine, connection_loop.BACKGROUND)] * 3
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == mine


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelining"])
def test_answers_are_classified_and_temporary_ones_retried(store: Store, pipelining: bool) -> None:
    add_subscribers(store, 12)
    mailing = frozen_mailing(store)
    gone, greylisted, policy_refused, always_busy = address(1), address(2), address(3), address(4)
    with SmtpServer(CollectingHandler(pipelining=pipelining)) as srv:
        h = srv.handler
        h.add_fault(Fault("rcpt", "550 5.1.1 <x>: no such mailbox", recipient=gone))
        h.add_fault(Fault("rcpt", "451 4.7.1 greylisted, try later", recipient=greylisted, times=2))
        h.add_fault(Fault("data", "554 5.7.1 message refused by policy", recipient=policy_refused))
        h.add_fault(Fault("data", "452 4.3.1 insufficient storage", recipient=always_busy))
        report = deliver(store, srv, mailing, max_attempts=3)
        copies = h.copies()
    log = rows(store, mailing)
    assert log[gone]["status"] == "failed" and log[gone]["last_code"] == 550
    assert log[greylisted]["status"] == "sent" and log[greylisted]["attempts"] == 3
    assert log[policy_refused]["status"] == "failed" and log[policy_refused]["last_code"] == 554
    assert log[always_busy]["status"] == "failed" and log[always_busy]["attempts"] == 3
    assert "gave up after 3 attempts" in log[always_busy]["last_response"]
    assert report.sent == 9 and report.permanent == 3 and report.bounced == 1
    assert report.retries == 2 + 2
    assert gone not in copies and policy_refused not in copies and always_busy not in copies
    assert copies[greylisted] == 1
    # Only "mailbox does not exist" counts as a hard bounce.
    assert subscriber(store, gone)["hard_bounces"] == 1
    assert subscriber(store, policy_refused)["hard_bounces"] == 0
    assert subscriber(store, gone)["status"] == "confirmed"  # one bounce does not set aside


def test_repeated_hard_bounces_set_a_subscriber_aside(store: Store) -> None:
    add_subscribers(store, 3)
    gone, flaky = address(0), address(1)
    mailings = [frozen_mailing(store, f"willkommen/2025-0{m}-26") for m in range(2, 7)]
    with SmtpServer() as srv:
        srv.handler.add_fault(Fault("rcpt", "550 5.1.1 no such mailbox", recipient=gone))
        # flaky bounces in mailings 1, 2, 4 and 5 (MAIL number n at the server; gone is skipped
        # from mailing 4 on): the delivery in mailing 3 clears the count in between.
        for nth in (2, 5, 10, 12):
            srv.handler.add_fault(
                Fault("rcpt", "550 5.1.1 no such mailbox", recipient=flaky, nth=nth)
            )
        for m in mailings:
            deliver(store, srv, m)
        copies = srv.handler.copies()
    assert subscriber(store, gone)["status"] == "bounced"
    assert subscriber(store, gone)["hard_bounces"] == 3
    assert subscriber(store, gone)["bounced_at"] is not None
    assert [b.email for b in store.subscribers.bounced()] == [gone]
    assert "5.1.1" in (store.subscribers.bounced()[0].last_response or "")
    # Set aside after the third: the mailings frozen before skip them, nobody tries again.
    assert [rows(store, m)[gone]["status"] for m in mailings] == ["failed"] * 3 + ["skipped"] * 2
    assert subscriber(store, flaky)["status"] == "confirmed"
    assert subscriber(store, flaky)["hard_bounces"] == 2
    assert copies[flaky] == 1 and copies[address(2)] == 5


def test_unsubscribed_after_freezing_gets_nothing(store: Store) -> None:
    add_subscribers(store, 10)
    mailing = frozen_mailing(store)
    set_subscriber_status(store, address(3), "unsubscribed")
    with SmtpServer() as srv:
        report = deliver(store, srv, mailing, connections=2)
        copies = srv.handler.copies()
    assert address(3) not in copies and len(copies) == 9
    assert report.skipped == 1
    assert rows(store, mailing)[address(3)]["status"] == "skipped"
    assert rows(store, mailing)[address(3)]["last_response"] == "subscriber is unsubscribed"


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelining"])
def test_relay_closing_every_few_messages_loses_nothing_and_duplicates_nothing(
    store: Store, pipelining: bool
) -> None:
    """listmonk#2313: a relay ends the connection after n mails; here the rest just goes on."""
    add_subscribers(store, 60)
    mailing = frozen_mailing(store)
    with SmtpServer(CollectingHandler(pipelining=pipelining)) as srv:
        srv.handler.add_fault(
            Fault("mail", "421 4.7.0 too many messages, closing", from_nth_on_connection=4,
                  close_after=True)
        )  # fmt: skip
        report = deliver(store, srv, mailing, connections=2, batch=5)
        copies = srv.handler.copies()
        connections = srv.handler.connections
    assert copies == {address(i): 1 for i in range(60)}
    assert report.sent == 60 and report.retries == 0 and report.ambiguous == 0
    assert connections >= 60 // 3  # at most three messages per connection
    assert statuses(store, mailing) == {"sent": 60}


@pytest.mark.parametrize("pipelining", [False, True], ids=["one-by-one", "pipelining"])
def test_connection_dropped_after_data_is_retried(store: Store, pipelining: bool) -> None:
    add_subscribers(store, 30)
    mailing = frozen_mailing(store)
    kept, lost = address(5), address(6)
    with SmtpServer(CollectingHandler(pipelining=pipelining)) as srv:
        h = srv.handler
        # The server took the message but the 250 never arrived: the one duplicate a drop allows.
        h.add_fault(Fault("data", recipient=kept, drop=True, keep=True, times=1))
        # Cut off before the server kept it: one copy, after a retry.
        h.add_fault(Fault("data", recipient=lost, drop=True, times=1))
        # Dropped at MAIL (e.g. an idle timeout): nothing was sent, retried on a new connection.
        h.add_fault(Fault("mail", recipient=None, drop=True, nth=8, times=1))
        report = deliver(store, srv, mailing, connections=3)
        copies = h.copies()
    assert copies[kept] == 2
    assert copies[lost] == 1
    assert all(copies[address(i)] == 1 for i in range(30) if address(i) != kept)
    assert report.sent == 30 and report.ambiguous == 2
    log = rows(store, mailing)
    assert log[kept]["attempts"] >= 2 and log[lost]["attempts"] >= 2
    assert statuses(store, mailing) == {"sent": 30}


@pytest.mark.parametrize("batch", [3, 10], ids=["claims-used-up", "claims-left-over"])
def test_unreachable_server_raises_and_loses_nothing(store: Store, batch: int) -> None:
    add_subscribers(store, 20)
    mailing = frozen_mailing(store)
    nobody = SmtpTransport("127.0.0.1", free_port(), tls="none", timeout=2)
    # With 10 a claim takes all 20 rows, more than the connections' 6 tries use up: the rest
    # must be released when the last connection gives up.
    with pytest.raises(MailError, match=r"SESSION_BOT_SMTP_HOST.*20 left pending"):
        deliver_mailing(
            store, nobody, mailing, personalise, sender=SENDER, clock=utc_now, connections=2,
            policy=fast_policy(batch=batch),
        )  # fmt: skip
    log = rows(store, mailing)
    assert {r["status"] for r in log.values()} == {"pending"}
    assert all(r["attempts"] == 0 and r["sending_at"] is None for r in log.values())
    with SmtpServer() as srv:
        report = deliver(store, srv, mailing, connections=2)
        copies = srv.handler.copies()
    assert report.sent == 20 and copies == {address(i): 1 for i in range(20)}


def test_refused_sender_stops_the_mailing_without_failing_recipients(store: Store) -> None:
    add_subscribers(store, 10)
    mailing = frozen_mailing(store)
    with SmtpServer() as srv:
        srv.handler.add_fault(Fault("mail", "553 5.7.1 sender not allowed for this account"))
        with pytest.raises(MailError, match="SESSION_BOT_BOUNCE_ADDRESS"):
            deliver(store, srv, mailing, connections=2)
    assert statuses(store, mailing) == {"pending": 10}
    assert sending_rows(store) == 0


def test_an_error_in_personalise_releases_the_claimed_rows(store: Store) -> None:
    add_subscribers(store, 20)
    mailing = frozen_mailing(store)

    def broken(row: DeliveryRow) -> bytes:
        if row.email == address(7):
            raise ValueError("template exploded")
        return personalise(row)

    with SmtpServer() as srv:
        transport = SmtpTransport(srv.host, srv.port, tls="none")
        with pytest.raises(ValueError, match="template exploded"):
            deliver_mailing(
                store, transport, mailing, broken, sender=SENDER, clock=utc_now,
                policy=fast_policy(batch=4),
            )  # fmt: skip
        transport.close()
        copies = srv.handler.copies()
    counts = statuses(store, mailing)
    assert counts["sent"] == len(copies) == 7 and counts["pending"] == 13
    assert sending_rows(store) == 0


def test_rows_left_sending_by_a_dead_run_are_sent_again(store: Store) -> None:
    add_subscribers(store, 12)
    mailing = frozen_mailing(store)
    claimed = store.deliveries.claim(mailing, clock=utc_now, worker="", limit=4).rows
    assert sending_rows(store) == 4  # as a killed process leaves them
    with SmtpServer() as srv:
        report = deliver(store, srv, mailing)
        copies = srv.handler.copies()
    assert report.sent == 12 and copies == {address(i): 1 for i in range(12)}
    assert all(rows(store, mailing)[r.email]["status"] == "sent" for r in claimed)


def test_another_workers_fresh_claim_is_left_alone(store: Store) -> None:
    add_subscribers(store, 6)
    mailing = frozen_mailing(store)
    other = store.deliveries.claim(mailing, clock=utc_now, worker="host-b:1", limit=2).rows
    with SmtpServer() as srv:
        transport = SmtpTransport(srv.host, srv.port, tls="none")
        report = deliver_mailing(
            store, transport, mailing, personalise, sender=SENDER, clock=utc_now,
            worker="host-a:1", policy=fast_policy(linger=dt.timedelta(0)),
        )  # fmt: skip
        transport.close()
        copies = srv.handler.copies()
    assert report.sent == 4 and report.temporary == 2
    assert all(r.email not in copies for r in other)
    assert report.next_attempt_at is not None  # when the stale claim may be taken over
    assert store.mailings.get(mailing).finished_at is None


def test_progress_bar_and_summary_for_a_human(
    store: Store, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    add_subscribers(store, 5)
    first, second = frozen_mailing(store), frozen_mailing(store, "willkommen/2025-03-26")
    with SmtpServer() as srv:
        set_subscriber_status(store, address(0), "unsubscribed")
        transport = SmtpTransport(srv.host, srv.port, tls="none")
        deliver_mailing(
            store, transport, first, personalise, sender=SENDER, clock=utc_now, progress=True
        )
        err = capsys.readouterr().err
        with caplog.at_level(logging.INFO, logger="session_bot.delivery"):
            deliver_mailing(store, transport, second, personalise, sender=SENDER, clock=utc_now)
        transport.close()
    assert f"mailing {first}: 4 sent, 1 skipped" in err
    assert "4/5" in err or "5/5" in err
    assert any(f"mailing {second}: 4 sent, 1 skipped" in m for m in caplog.messages)
