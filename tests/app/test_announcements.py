"""Announcements (issue 17): a one-off mail to the whole list through the delivery ledger —
each confirmed subscriber gets exactly one, with the one-click unsubscribe headers; a scheduled
one waits for its moment and goes with the first run after it."""

from __future__ import annotations

import datetime as dt

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.adapters.render.announcement import announcement_renderers
from session_bot.app import announcements
from session_bot.app.announcements import Announcement
from session_bot.app.runner import Runner
from session_bot.core.plan import load_plan
from session_bot.settings import Settings
from tests.conftest import EXAMPLE_PLAN
from tests.support.smtp_server import Received, SmtpServer

# Weeks before the series' first invitation: the run has nothing else to do.
QUIET = dt.datetime(2025, 1, 6, 8, 0, tzinfo=dt.UTC)


def runner(settings: Settings, store: Store, smtp: SmtpServer, clock: ManualClock) -> Runner:
    transport = SmtpTransport(smtp.host, smtp.port, tls="none")
    r = wiring.build_runner(settings, load_plan(EXAMPLE_PLAN), store, None, clock, transport)
    r.announcements = announcement_renderers(wiring.renderer_factory(settings, store))
    return r


def run(settings: Settings, store: Store, smtp: SmtpServer, clock: ManualClock) -> None:
    r = runner(settings, store, smtp, clock)
    try:
        report = r.run("test")
    finally:
        r.transport.close()
    assert report.outcome == "ok", report.summary()


def people(store: Store) -> None:
    for email, name, lang, status in [
        ("anna@example.org", "Anna Schmidt", "de", "confirmed"),
        ("ben@example.org", None, "de", "confirmed"),
        ("cleo@example.org", "Cleo Jones", "en", "confirmed"),
        ("gone@example.org", "Gone", "de", "unsubscribed"),
        ("later@example.org", "Later", "de", "pending"),
    ]:
        store.subscribers.add(email, name=name, language=lang, status=status, now=QUIET)


def note(send_at: dt.datetime | None = None) -> Announcement:
    return Announcement(
        series="willkommen",
        subjects={"de": "Im August kein Termin", "en": "No session in August"},
        texts={
            "de": "Liebe Community,\n\nim August pausieren wir.\nBis September!",
            "en": "Dear community,\n\nwe pause in August.",
        },
        send_at=send_at,
        by="kristina.neumann@bertelsmann-stiftung.de",
    )


def by_address(messages: list[Received]) -> dict[str, list[Received]]:
    out: dict[str, list[Received]] = {}
    for m in messages:
        for to in m.rcpt_tos:
            out.setdefault(to, []).append(m)
    return out


def test_every_confirmed_subscriber_gets_exactly_one(
    settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    clock = ManualClock(QUIET)
    people(store)
    mailing_id, number = announcements.create(store, note(), QUIET)
    assert number == 1
    assert store.mailings.get(mailing_id).recipients == 3  # frozen now: the confirmed ones

    run(settings, store, smtp_server, clock)
    run(settings, store, smtp_server, clock)  # a second run sends nobody anything again

    got = by_address(smtp_server.handler.messages)
    assert sorted(got) == ["anna@example.org", "ben@example.org", "cleo@example.org"]
    assert all(len(v) == 1 for v in got.values())
    anna = got["anna@example.org"][0].message()
    assert anna["Subject"] == "Im August kein Termin"
    assert anna["List-Unsubscribe"].startswith("<https://session-bot.example.org/unsubscribe/")
    assert anna["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert "Willkommen" in anna["List-Id"]
    text = anna.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "Guten Tag Anna Schmidt," in text and "im August pausieren wir." in text
    assert "/unsubscribe/" in text
    html = anna.get_body(preferencelist=("html",)).get_content()  # type: ignore[union-attr]
    assert "im August pausieren wir.<br>Bis September!" in html
    cleo = got["cleo@example.org"][0].message()
    assert cleo["Subject"] == "No session in August"
    assert store.mailings.get(mailing_id).finished_at is not None
    assert store.mailings.kinds_by_session() == {}  # no session heard of it
    summary = store.mailings.summaries(mailing_id)[0]
    assert (summary["kind"], summary["sent"], summary["session_date"]) == (
        "announcement", 3, "2025-01-06",
    )  # fmt: skip


def test_a_scheduled_one_waits_for_its_moment_and_goes_with_the_first_run_after(
    settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    clock = ManualClock(QUIET)
    people(store)
    moment = QUIET + dt.timedelta(hours=3)
    mailing_id, _ = announcements.create(store, note(send_at=moment), QUIET)
    assert store.mailings.get(mailing_id).recipients == 0  # not frozen yet

    clock.set(moment - dt.timedelta(minutes=1))
    run(settings, store, smtp_server, clock)
    assert smtp_server.handler.messages == []
    assert store.mailings.delivery_counts(mailing_id) == {}
    # Who confirms before the moment gets it too: the list is the one at the moment.
    store.subscribers.update(
        store.subscribers.get("later@example.org")["id"],  # type: ignore[index]
        moment,
        status="confirmed",
    )

    clock.set(moment + dt.timedelta(minutes=20))  # the hourly tick after the moment
    run(settings, store, smtp_server, clock)
    run(settings, store, smtp_server, clock)
    got = by_address(smtp_server.handler.messages)
    assert sorted(got) == [
        "anna@example.org", "ben@example.org", "cleo@example.org", "later@example.org",
    ]  # fmt: skip
    assert all(len(v) == 1 for v in got.values())
    assert store.mailings.get(mailing_id).finished_at is not None


def test_a_runner_without_an_announcement_renderer_reports_it_and_sends_nothing(
    settings: Settings, store: Store, smtp_server: SmtpServer
) -> None:
    clock = ManualClock(QUIET)
    people(store)
    mailing_id, _ = announcements.create(store, note(), QUIET)
    r = runner(settings, store, smtp_server, clock)
    r.announcements = None
    report = r.run("test")
    r.transport.close()
    assert smtp_server.handler.messages == []
    assert report.delivery.stuck and "announcement renderer" in report.delivery.stuck[0]
    assert store.mailings.get(mailing_id).finished_at is None  # waits for a runner that can
