"""Several `session-bot deliver` processes on one PostgreSQL mailing: each recipient exactly once."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

from sqlalchemy import func, insert, select

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.schema import deliveries, subscribers
from session_bot.adapters.db.store import Store
from session_bot.adapters.zoom import ZoomClient
from session_bot.app.runner import meeting_request
from session_bot.core.plan import find_occurrence, load_plan
from session_bot.sandbox.zoom import ZoomSandbox
from tests.app.test_delivery_rate import busiest_window
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT, SEED_JOIN_HOST
from tests.support.pg import fresh_database, require_pg
from tests.support.smtp_server import SmtpServer

RECIPIENTS = 5000
WORKERS = 4
PER_SECOND = 600


def prepare(url: str, tmp_path: Path) -> int:
    """A store with RECIPIENTS confirmed subscribers and a frozen invitation with its meeting."""
    store = Store(url)
    store.ensure_schema()
    now = SEED_INVITATION_AT
    with store.engine.begin() as c:
        c.execute(
            insert(subscribers),
            [
                {
                    "email": f"p{i}@example.org",
                    "email_key": f"p{i}@example.org",
                    "name": None,
                    "language": "de",
                    "status": "confirmed",
                    "created_at": now,
                    "updated_at": now,
                    "hard_bounces": 0,
                }
                for i in range(RECIPIENTS)
            ],
        )
    occ = find_occurrence(load_plan(EXAMPLE_PLAN), dt.date(2025, 2, 26))
    clock = ManualClock(now)
    with ZoomSandbox(state_file=tmp_path / "z.json", join_host=SEED_JOIN_HOST, clock=clock) as sb:
        zoom = ZoomClient(
            api_url=sb.api_url, oauth_url=sb.oauth_url, account_id="a", client_id="c",
            client_secret="s", user="organiser@example.org", clock=clock,
        )  # fmt: skip
        meeting = zoom.create_meeting(meeting_request(occ))
        zoom.close()
    row = store.sessions.ensure(occ.key, "willkommen", "2025-02-26", occ.start, 60, now)
    store.sessions.record_meeting(row.id, meeting.to_json(), now)
    mailing_id, _ = store.mailings.freeze(row.id, "invitation", 0, now)
    store.close()
    return mailing_id


def test_four_worker_processes_send_each_recipient_exactly_once(tmp_path: Path) -> None:
    require_pg()
    with fresh_database() as url, SmtpServer() as smtp:
        mailing_id = prepare(url, tmp_path)
        env = {k: v for k, v in os.environ.items() if not k.startswith("SESSION_BOT_")}
        env.update(
            SESSION_BOT_DATABASE_URL=url,
            SESSION_BOT_VAR_DIR=str(tmp_path / "var"),
            SESSION_BOT_SECRET_KEY="test-secret-key-0123456789abcdef",
            SESSION_BOT_SMTP_HOST=smtp.host,
            SESSION_BOT_SMTP_PORT=str(smtp.port),
            SESSION_BOT_SMTP_TLS="none",
            SESSION_BOT_SMTP_CONNECTIONS="2",
            SESSION_BOT_RATE_PER_SECOND=str(PER_SECOND),
        )
        out = subprocess.run(
            [sys.executable, "-m", "session_bot.cli", "deliver", "--workers", str(WORKERS),
             "--plan", str(EXAMPLE_PLAN)],
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
        )  # fmt: skip
        assert out.returncode == 0, out.stderr[-3000:]
        received = list(smtp.handler.messages)
        store = Store(url)
        with store.engine.connect() as c:
            workers = c.execute(
                select(func.count(func.distinct(deliveries.c.claimed_by))).where(
                    deliveries.c.mailing_id == mailing_id
                )
            ).scalar_one()
        counts = store.mailings.delivery_counts(mailing_id)
        store.close()

    per_recipient = Counter(r for m in received for r in m.rcpt_tos)
    assert len(per_recipient) == RECIPIENTS
    assert set(per_recipient.values()) == {1}, per_recipient.most_common(3)
    assert counts == {"sent": RECIPIENTS}
    assert workers == WORKERS  # the work really was shared by the four processes
    assert busiest_window([m.at for m in received], 1.0) <= PER_SECOND
