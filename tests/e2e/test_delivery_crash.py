"""A sending process killed with SIGKILL mid-mailing, again and again: nobody is lost, and the
extra copies are bounded by the rows in flight (connections × batch) at each kill.

Run as a script (``python -m tests.e2e.test_delivery_crash URL PORT MAILING CONNECTIONS BATCH``) it is
the sending process: a store, a transport and ``deliver_mailing``, as ``session-bot run`` uses them.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from session_bot.adapters.db.store import Store
from tests.support.delivery import (
    add_subscribers,
    address,
    frozen_mailing,
    sending_rows,
    statuses,
)
from tests.support.smtp_server import CollectingHandler, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS, CONNECTIONS, BATCH, KILLS = 240, 3, 4, 5


def start_sender(url: str, port: int, mailing: int) -> subprocess.Popen[bytes]:
    args = [url, str(port), str(mailing), str(CONNECTIONS), str(BATCH)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.test_delivery_crash", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_for(handler: CollectingHandler, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while len(handler.messages) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the sender made no progress"
        time.sleep(0.002)


def test_sigkill_mid_mailing_loses_nobody_and_bounds_duplicates(store: Store) -> None:
    add_subscribers(store, RECIPIENTS)
    mailing = frozen_mailing(store)
    in_flight_at_kills: list[int] = []
    # The server takes a few ms per message, so every kill lands in mid-mailing.
    with SmtpServer(CollectingHandler(delay=0.01)) as srv:
        for _ in range(KILLS):
            proc = start_sender(store.url, srv.port, mailing)
            wait_for(srv.handler, len(srv.handler.messages) + 25, proc)
            assert proc.poll() is None, "the mailing finished before it could be killed"
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            in_flight_at_kills.append(sending_rows(store))
        proc = start_sender(store.url, srv.port, mailing)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        time.sleep(0.05)  # let the server finish logging the last message
        copies = srv.handler.copies()
    assert all(0 <= n <= CONNECTIONS * BATCH for n in in_flight_at_kills)
    assert sorted(copies) == sorted(address(i) for i in range(RECIPIENTS))  # nobody lost
    extra = sum(copies.values()) - RECIPIENTS
    assert extra <= sum(in_flight_at_kills)
    assert statuses(store, mailing) == {"sent": RECIPIENTS}
    assert store.mailings.get(mailing).finished_at is not None


def main(argv: list[str]) -> None:
    from session_bot.adapters.mail import SmtpTransport
    from session_bot.app.delivery import DeliveryPolicy, deliver_mailing
    from tests.support.delivery import SENDER, personalise

    url, port, mailing, connections, batch = argv
    store = Store(url)
    transport = SmtpTransport("127.0.0.1", int(port), tls="none", timeout=10)
    report = deliver_mailing(
        store,
        transport,
        int(mailing),
        personalise,
        sender=SENDER,
        clock=lambda: dt.datetime.now(dt.UTC),
        connections=int(connections),
        policy=DeliveryPolicy(batch=int(batch), backoff=lambda n: dt.timedelta(0)),
    )
    transport.close()
    store.close()
    assert report.temporary == 0, report


if __name__ == "__main__":
    main(sys.argv[1:])
