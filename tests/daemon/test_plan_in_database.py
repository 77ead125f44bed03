"""A daemon whose plan lives in the database: a new revision is what it acts on, an invalid one
never gets stored, and the console's save reloads at once."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.app.plan_book import PlanBook, Who
from session_bot.core.plan.edit import PlanDocument
from session_bot.daemon.service import Daemon
from session_bot.plan_source import DatabasePlan, choose
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT
from tests.daemon.test_daemon import REMINDER_AT, add_subscribers, last_run
from tests.support.settings import make_settings
from tests.support.waiting import wait_for

MARCH = dt.date(2025, 3, 26)


def test_a_revision_saved_elsewhere_is_what_the_daemon_acts_on(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)  # no SESSION_BOT_PLAN: the database's plan
    settings = settings.model_copy(update={"plan": tmp_path / "no-such-plan.yaml"})
    settings.model_fields_set.discard("plan")
    store = wiring.open_store(settings)
    book = PlanBook(store, ManualClock(SEED_INVITATION_AT))
    first = book.import_text(EXAMPLE_PLAN.read_text(encoding="utf-8"), Who("test"), name="x")
    store.close()
    add_subscribers(settings, 2)
    source = choose(settings)
    assert isinstance(source, DatabasePlan)

    clock = ManualClock(SEED_INVITATION_AT)
    daemon = Daemon(
        settings, plan_source=source, clock=clock, sandbox=True, port=0,
        plan_check_seconds=0.2, stop_grace=5,
    )  # fmt: skip
    daemon.start()
    try:
        wait_for(lambda: daemon.scheduled == REMINDER_AT, "the start run")
        assert daemon.store.mailings.delivery_counts() == {"sent": 2}
        # Another process (the other server's console) moves March's invitation lead to 42 days:
        # due now, so the daemon that did not save it must notice the revision and invite.
        other = wiring.open_store(settings)
        try:
            doc = PlanDocument(first.text)
            fields = doc.series_fields("willkommen")
            PlanBook(other, clock).save_series(
                "willkommen",
                dataclasses.replace(fields, invitation_days=42),
                Who("kristina.neumann@example.org"),
                base_id=first.id,
            )
        finally:
            other.close()
        wait_for(
            lambda: daemon.store.mailings.delivery_counts() == {"sent": 4},
            "March's invitations from the new revision",
            timeout=10,
        )
        assert daemon.runs.plan.series[0].lead.invitation_days == 42
        # The mails are counted before the run records its end: wait for that record.
        run = wait_for(lambda: last_run(daemon.store), "the run's record")
        assert run["trigger"] == "plan-change"
    finally:
        daemon.stop()


def test_the_console_shows_a_saved_plan_while_a_run_is_in_flight(tmp_path: Path) -> None:
    """The daemon takes the new revision after the run in flight (a mailing held back by the
    provider's rate limit can take minutes); her pages show what she saved at once."""
    settings = make_settings(tmp_path).model_copy(update={"plan": tmp_path / "none.yaml"})
    settings.model_fields_set.discard("plan")
    store = wiring.open_store(settings)
    first = PlanBook(store, ManualClock(SEED_INVITATION_AT)).import_text(
        EXAMPLE_PLAN.read_text(encoding="utf-8"), Who("test"), name="x"
    )
    store.close()
    clock = ManualClock(SEED_INVITATION_AT)
    daemon = Daemon(
        settings, plan_source=choose(settings), clock=clock, sandbox=True, port=0,
        plan_check_seconds=3600, stop_grace=5,
    )  # fmt: skip
    daemon.start()
    try:
        wait_for(lambda: daemon.scheduled == REMINDER_AT, "the start run")
        web = daemon.role.web
        assert web is not None and web.plan_saved is not None
        before = daemon.runs.plan
        fields = PlanDocument(first.text).series_fields("willkommen")
        # Holding the run lock stands for a long mailing in flight.
        with daemon.runs._mutex:
            PlanBook(daemon.store, clock).save_series(
                "willkommen",
                dataclasses.replace(fields, invitation_days=42),
                Who("kristina.neumann@example.org"),
                base_id=first.id,
            )
            web.plan_saved()
            assert web.plan().series[0].lead.invitation_days == 42  # what she saved
            assert daemon.runs.plan is before  # the daemon still runs the one before
        wait_for(lambda: daemon.runs.plan is not before, "the daemon's reload")
        assert web.plan() is daemon.runs.plan
        assert daemon.runs.plan.series[0].lead.invitation_days == 42
    finally:
        daemon.stop()
