"""An edit saved through the standby's console is what the leader acts on.

Two real `serve --sandbox` processes on one fresh PostgreSQL database whose plan lives in the
database (no SESSION_BOT_PLAN): a leader and a standby, each with its own var/ folder and so its
own Maildir outbox ("machine"). The organiser signs in on the standby and raises the series'
invitation lead so that the session's invitation falls due now. The standby stores the new
revision (author: the organiser) and only reloads it; the leader notices the revision at its
next plan check and sends the invitation: one to each subscriber, from the leader's outbox,
none from the standby's.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path

import httpx
import pytest

from session_bot.adapters.clock import ManualClock, system_clock
from session_bot.adapters.db.store import Store
from session_bot.app.plan_book import PlanBook, Who
from tests.support.console import ORGANISER, PASSWORD, add_organiser, csrf_of
from tests.support.leader import Serve, base_env, first_wednesday_after, plan_text
from tests.support.pg import fresh_database, require_pg
from tests.support.waiting import wait_for
from tests.web.console.test_console_plan_edit import form_of

SUBSCRIBERS = ("eins@example.org", "zwei@example.org", "drei@example.org")
EDIT = "/admin/series/willkommen/edit"


@pytest.fixture
def pg_url() -> Iterator[str]:
    require_pg()
    with fresh_database() as url:
        store = Store(url)
        store.create_schema()  # `db upgrade` before the daemons start, as in production
        store.close()
        yield url


def database_env(tmp_path: Path, name: str, pg_url: str) -> dict[str, str]:
    """A server whose plan is the database's current revision (no plan file configured).

    Its public URL is http, so the console's cookies are not Secure-only and come back over
    the plain-HTTP test connection (as in the other console tests)."""
    env = base_env(tmp_path, name, pg_url, SESSION_BOT_FAILOVER_SECONDS="3",
                   SESSION_BOT_PUBLIC_URL="http://127.0.0.1:8080")  # fmt: skip
    del env["SESSION_BOT_PLAN"]
    return env


def outbox(tmp_path: Path, name: str) -> list[Message]:
    """The mails in one machine's Maildir outbox."""
    found = []
    for sub in ("new", "cur"):
        folder = tmp_path / name / "var" / "outbox" / sub
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                found.append(message_from_bytes(path.read_bytes()))
    return found


def test_an_edit_saved_on_the_standby_is_what_the_leader_acts_on(
    tmp_path: Path, pg_url: str
) -> None:
    first = first_wednesday_after(10)
    key = f"willkommen/{first.isoformat()}"
    store = Store(pg_url)
    now = dt.datetime.now(dt.UTC)
    for address in SUBSCRIBERS:
        store.subscribers.add(address, name=None, language="de", status="confirmed", now=now)
    add_organiser(store, ManualClock(now))
    book = PlanBook(store, system_clock)
    imported = book.import_text(plan_text(first, invitation_days=2), Who("test"), name="plan.yaml")

    a = b = None
    try:
        # --plan-check 1 (after Serve's 3600): each server looks for a new revision every second.
        a = Serve("a", tmp_path, database_env(tmp_path, "a", pg_url), "--sandbox",
                  "--plan-check", "1").started()  # fmt: skip
        assert a.health()["role"] == "leader"
        a.wait_for_log("plan the database")
        b = Serve("b", tmp_path, database_env(tmp_path, "b", pg_url), "--sandbox",
                  "--plan-check", "1").started()  # fmt: skip
        b.wait_for_log("leadership: standby")
        assert b.health()["role"] == "standby"
        start = wait_for(
            lambda: (r := store.runs.last()) and r["trigger"] == "start" and r["finished_at"] and r,
            "the leader's start run",
        )
        assert start["outcome"] == "ok"
        # Invitation 2 days before: not due yet, so nothing went out.
        assert outbox(tmp_path, "a") == [] and store.mailings.delivery_counts() == {}

        # The organiser edits the series on the standby: invitation 20 days before (due now).
        with httpx.Client(base_url=b.url, headers={"Accept-Language": "de-DE"}, timeout=10) as c:
            token = csrf_of(c.get("/admin/sign-in").text)
            answer = c.post(
                "/admin/sign-in", data={"email": ORGANISER, "password": PASSWORD, "csrf": token}
            )
            assert answer.status_code == 303, answer.text
            page = c.get(EDIT)
            assert page.status_code == 200, page.text
            form = form_of(page.text, EDIT)
            assert form["invitation_days"] == "2" and form["base_id"] == str(imported.id)
            answer = c.post(EDIT, data=form | {"invitation_days": "20"})
            assert answer.status_code == 303, answer.text
            assert answer.headers["location"].startswith(f"{EDIT}?saved=")

        # The standby stored it as a new revision by the organiser.
        revision = book.require_current()
        assert revision.id != imported.id and revision.parent_id == imported.id
        assert revision.author == ORGANISER
        assert "invitation_days: 20" in revision.text
        assert answer.headers["location"] == f"{EDIT}?saved={revision.id}"
        audit = store.audit.latest(1)[0]
        assert (audit.actor, audit.action) == (ORGANISER, "plan-console")
        assert audit.detail.startswith(f"revision {revision.id}: series willkommen")
        assert "invitation_days: 2 → 20" in audit.detail, audit.detail

        # The leader, which did not save it, notices the revision and sends the invitation.
        a.wait_for_log("plan in the database changed", timeout=10)
        a.wait_for_log("the reloaded plan has actions due now: running", timeout=10)
        run = wait_for(
            lambda: (
                (r := store.runs.last())
                and r["trigger"] == "plan-change"
                and r["finished_at"]
                and r
            ),
            "the leader's plan-change run",
            timeout=15,
        )
        assert run["outcome"] == "ok"
        mails = wait_for(
            lambda: m if len(m := outbox(tmp_path, "a")) >= len(SUBSCRIBERS) else None,
            "the invitations in the leader's outbox",
            timeout=15,
        )
        assert sorted(str(m["To"]) for m in mails) == sorted(SUBSCRIBERS)  # one each
        assert store.mailings.delivery_counts() == {"sent": len(SUBSCRIBERS)}
        session = store.sessions.get(key)
        assert session is not None and session.meeting_id is not None
        assert "invitation" in store.mailings.kinds_by_session().get(key, {})

        a.wait_for_log(f"mailing 1: {len(SUBSCRIBERS)} sent")
        # The standby reloaded the plan it saved, but sent nothing and ran nothing.
        b.wait_for_log("plan reloaded (plan saved in the console)")
        assert outbox(tmp_path, "b") == []
        done = [m for m in b.messages() if m.startswith(("action:", "delivering", "run "))]
        assert done == [], b.output()
        assert (a.health()["role"], b.health()["role"]) == ("leader", "standby")
        # What the leader runs is the organiser's revision.
        reloaded = [json.loads(line) for _, line in a.lines if "plan reloaded" in line]
        assert reloaded and "new plan revision" in reloaded[-1]["msg"]
    finally:
        for serve in (a, b):
            if serve is not None:
                serve.stop()
        store.close()
