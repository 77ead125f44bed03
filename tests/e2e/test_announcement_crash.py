"""An announcement's sending run killed with SIGKILL mid-mailing, again and again: after the
restarts nobody is lost, and the extra copies are bounded by the rows in flight (connections ×
batch) at each kill — the announcement goes through the same ledger as the session mails.

Run as a script (``python -m tests.e2e.test_announcement_crash URL PORT VAR OFFSET``) it is the
sending process: ``Runner.run`` built as `session-bot run` builds it (``wiring.build_runner``),
with the announcement renderer, on a clock shifted to a quiet day of the example plan.
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
from session_bot.app import announcements
from session_bot.app.announcements import Announcement
from session_bot.app.delivery_policy import DeliveryPolicy
from tests.support.delivery import add_subscribers, address, sending_rows, statuses
from tests.support.smtp_server import CollectingHandler, SmtpServer

ROOT = Path(__file__).resolve().parents[2]
RECIPIENTS, CONNECTIONS, KILLS = 200, 3, 4
BATCH = DeliveryPolicy().batch  # the runner's default claim
QUIET = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)  # nothing else due in the example plan


def start_run(url: str, port: int, var: Path, offset: float) -> subprocess.Popen[bytes]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.e2e.test_announcement_crash", url, str(port), str(var),
         str(offset)],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )  # fmt: skip


def wait_for(handler: CollectingHandler, count: int, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while len(handler.messages) < count and proc.poll() is None:
        assert time.monotonic() < deadline, "the run made no progress"
        time.sleep(0.002)


def test_sigkill_mid_announcement_loses_nobody(store: Store, tmp_path: Path) -> None:
    add_subscribers(store, RECIPIENTS)
    offset = (dt.datetime.now(dt.UTC) - QUIET).total_seconds()
    note = Announcement("willkommen", {"de": "Folien"}, {"de": "Die Folien sind online."})
    mailing, _ = announcements.create(store, note, QUIET)
    in_flight: list[int] = []
    with SmtpServer(CollectingHandler(delay=0.01)) as srv:
        for _ in range(KILLS):
            proc = start_run(store.url, srv.port, tmp_path / "var", offset)
            wait_for(srv.handler, len(srv.handler.messages) + 20, proc)
            assert proc.poll() is None, proc.stderr.read().decode() if proc.stderr else ""
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            in_flight.append(sending_rows(store))
        proc = start_run(store.url, srv.port, tmp_path / "var", offset)
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err.decode()
        time.sleep(0.05)
        copies = srv.handler.copies()
    assert all(0 <= n <= CONNECTIONS * BATCH for n in in_flight)
    assert sorted(copies) == sorted(address(i) for i in range(RECIPIENTS))  # nobody lost
    assert sum(copies.values()) - RECIPIENTS <= sum(in_flight)
    assert statuses(store, mailing) == {"sent": RECIPIENTS}
    assert store.mailings.get(mailing).finished_at is not None


def main(argv: list[str]) -> None:
    from session_bot import wiring
    from session_bot.adapters.mail import SmtpTransport
    from session_bot.adapters.render.announcement import announcement_renderers
    from session_bot.core.plan import load_plan
    from tests.support.settings import EXAMPLE_PLAN, make_settings

    url, port, var, offset = argv
    shift = dt.timedelta(seconds=float(offset))
    settings = make_settings(Path(var).parent, database_url=url)
    store = Store(url)
    transport = SmtpTransport("127.0.0.1", int(port), tls="none", timeout=10)

    def clock() -> dt.datetime:
        return dt.datetime.now(dt.UTC) - shift

    plan = load_plan(EXAMPLE_PLAN)
    runner = wiring.build_runner(settings, plan, store, None, clock, transport)
    runner.announcements = announcement_renderers(wiring.renderer_factory(settings, store))
    runner.connections = CONNECTIONS
    runner.worker = "crash-test"  # one name: a restart resumes its own rows at once
    report = runner.run("test")
    transport.close()
    store.close()
    assert report.outcome == "ok", report.summary()


if __name__ == "__main__":
    main(sys.argv[1:])
