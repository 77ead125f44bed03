"""A large mailing goes out through several worker processes on its own (issue 18): every
recipient gets exactly one message, and the ledger shows who sent what.

Real parts only: the runner from ``wiring`` with its SMTP transport, helper processes started by
``adapters.workers``, an aiosmtpd server and SQLite. The server holds the first message back until
three connections have begun a transaction, so the helpers get their share however slowly they
start on a busy machine.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from pathlib import Path
from typing import Any

from sqlalchemy import select

from session_bot import wiring
from session_bot.adapters.clock import system_clock
from session_bot.adapters.db.schema import deliveries
from session_bot.core.plan import find_occurrence, load_plan
from tests.support.delivery import add_subscribers, address
from tests.support.invitations import meeting, parse
from tests.support.settings import EXAMPLE_PLAN, make_settings
from tests.support.smtp_server import CollectingHandler, SmtpServer

RECIPIENTS, PROCESSES = 120, 3


class GatedHandler(CollectingHandler):
    """Answers no DATA until ``PROCESSES`` connections have sent a MAIL (or a minute passed)."""

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        deadline = time.monotonic() + 60
        while self.connections < PROCESSES and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        return await super().handle_DATA(server, session, envelope)


def test_a_large_mailing_is_sent_once_by_several_processes(tmp_path: Path) -> None:
    with SmtpServer(GatedHandler(pipelining=True)) as srv:
        settings = make_settings(
            tmp_path,
            smtp_host="127.0.0.1",
            smtp_port=srv.port,
            smtp_tls="none",
            smtp_connections=PROCESSES,
            delivery_workers=PROCESSES,
            delivery_workers_threshold=RECIPIENTS // 2,
        )
        store = wiring.open_store(settings)
        plan = load_plan(EXAMPLE_PLAN)
        occ = find_occurrence(plan, dt.date(2025, 2, 26))
        now = system_clock()
        add_subscribers(store, RECIPIENTS)
        row = store.sessions.ensure(
            occ.key, occ.series.id, occ.date.isoformat(), occ.start, occ.duration, now
        )
        store.sessions.record_meeting(row.id, meeting(occ).to_json(), now)
        mailing_id, _ = store.mailings.freeze(row.id, "invitation", 0, now)
        runner = wiring.build_runner(settings, plan, store, None, system_clock)
        runner.worker = "test-run"
        report = runner.deliver(store.mailings.get(mailing_id))
        runner.transport.close()
        with store.engine.connect() as c:
            senders = [
                r[0]
                for r in c.execute(
                    select(deliveries.c.claimed_by).where(deliveries.c.mailing_id == mailing_id)
                )
            ]
        copies = srv.handler.copies()
        messages = {m.rcpt_tos[0]: parse(m.data) for m in srv.handler.messages}
    store.close()
    assert report.sent == RECIPIENTS and report.temporary == 0
    assert copies == {address(i): 1 for i in range(RECIPIENTS)}
    # The caller and both helpers (named after it) each sent some of them.
    assert set(senders) == {"test-run", "test-run#1", "test-run#2"}
    # Whoever sent it, each message is addressed to its own recipient with its own link.
    tokens = set()
    for i in range(RECIPIENTS):
        msg = messages[address(i)]
        assert msg["To"].addresses[0].addr_spec == address(i)
        assert msg["To"].addresses[0].display_name == f"Person {i}"
        tokens.add(msg["List-Unsubscribe"].split(">")[0])
    assert len(tokens) == RECIPIENTS
