"""A whole year of the series, driven the way the daemon drives it: a run at every `next_due`.

Time is an injected clock; Zoom is the real sandbox over HTTP; mail goes into a real Maildir.
The plan is the example series on the fourth Wednesday (BYDAY=4WE) in 2028, when that Wednesday
in November is Buß- und Bettag (a public holiday in Saxony only), with the August break, a listed
exception, one session without a topic, and two extra sessions whose invitation and session lie
on either side of a daylight-saving change.
"""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import mailbox
from collections import Counter
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

import icalendar
import pytest

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.app.runner import Runner, state_from_store
from session_bot.cli.status import collect_status
from session_bot.core.plan import Plan, load_plan
from session_bot.core.timeline import next_due
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings, load_settings
from session_bot.wiring import make_alerter

BERLIN = ZoneInfo("Europe/Berlin")
ALERTS_TO = "orga-alerts@example.org"
SUBSCRIBERS = [
    ("anna@example.org", "de"),
    ("ben@example.org", "de"),
    ("chloe@example.com", "en"),
]
WITH_TOPIC = [
    "2028-01-26", "2028-02-23", "2028-03-22", "2028-04-05", "2028-04-26", "2028-05-24",
    "2028-07-26", "2028-09-27", "2028-10-25", "2028-11-08",
]  # fmt: skip


EXTRA = ("2028-04-05", "2028-11-08")  # off the rule: marked `extra: true`


def year_plan_text() -> str:
    sessions = "\n".join(
        f'      {d}:\n        topic: "Thema am {d}"\n        intro: ["Einleitung {d}."]'
        + ("\n        extra: true" if d in EXTRA else "")
        for d in WITH_TOPIC
    )
    return f"""\
series:
  - id: willkommen
    title: "Willkommen: Online Austausch"
    rrule: "FREQ=MONTHLY;BYDAY=4WE"
    starts_on: 2028-01-01
    until: 2028-12-31
    start: "12:30"
    duration: 60
    timezone: Europe/Berlin
    language: de
    organiser:
      name: Kristina Neumann
      email: kristina.neumann@example.org
    lead:
      invitation_days: 14
      invitation_time: "09:00"
      reminder: true
      reminder_days: 1
      reminder_time: "09:00"
    holidays:
      country: DE
      subdiv: SN
    breaks: [8]
    exceptions: [2028-12-27]
    sessions:
{sessions}
"""


# What must happen, written out by hand from the rules (14 days before at 09:00, the day before
# at 09:00, local time): local moment, session, actions.
EXPECTED: list[tuple[str, str, list[str]]] = [
    ("2028-01-12 09:00 CET", "2028-01-26", ["meeting", "invitation"]),
    ("2028-01-25 09:00 CET", "2028-01-26", ["reminder"]),
    ("2028-02-09 09:00 CET", "2028-02-23", ["meeting", "invitation"]),
    ("2028-02-22 09:00 CET", "2028-02-23", ["reminder"]),
    ("2028-03-08 09:00 CET", "2028-03-22", ["meeting", "invitation"]),
    ("2028-03-21 09:00 CET", "2028-03-22", ["reminder"]),
    # Extra session across the spring change (26 March): invited in CET, held in CEST.
    ("2028-03-22 09:00 CET", "2028-04-05", ["meeting", "invitation"]),
    ("2028-04-04 09:00 CEST", "2028-04-05", ["reminder"]),
    ("2028-04-12 09:00 CEST", "2028-04-26", ["meeting", "invitation"]),
    ("2028-04-25 09:00 CEST", "2028-04-26", ["reminder"]),
    ("2028-05-10 09:00 CEST", "2028-05-24", ["meeting", "invitation"]),
    ("2028-05-23 09:00 CEST", "2028-05-24", ["reminder"]),
    # No topic for 28 June: held, the organiser is alerted instead, nothing goes out.
    ("2028-06-14 09:00 CEST", "2028-06-28", ["hold"]),
    ("2028-06-27 09:00 CEST", "2028-06-28", ["hold"]),
    ("2028-07-12 09:00 CEST", "2028-07-26", ["meeting", "invitation"]),
    ("2028-07-25 09:00 CEST", "2028-07-26", ["reminder"]),
    # 23 August: summer break.
    ("2028-09-13 09:00 CEST", "2028-09-27", ["meeting", "invitation"]),
    ("2028-09-26 09:00 CEST", "2028-09-27", ["reminder"]),
    ("2028-10-11 09:00 CEST", "2028-10-25", ["meeting", "invitation"]),
    ("2028-10-24 09:00 CEST", "2028-10-25", ["reminder"]),
    # Extra session across the autumn change (29 October): invited in CEST, held in CET.
    ("2028-10-25 09:00 CEST", "2028-11-08", ["meeting", "invitation"]),
    ("2028-11-07 09:00 CET", "2028-11-08", ["reminder"]),
    # 22 November: Buß- und Bettag (Saxony). 27 December: listed exception.
]
# Session start in UTC: 12:30 local is 11:30Z in winter, 10:30Z in summer.
STARTS_UTC = {
    "2028-01-26": "2028-01-26T11:30:00Z",
    "2028-03-22": "2028-03-22T11:30:00Z",
    "2028-04-05": "2028-04-05T10:30:00Z",
    "2028-10-25": "2028-10-25T10:30:00Z",
    "2028-11-08": "2028-11-08T11:30:00Z",
}


@pytest.fixture
def year(tmp_path: Path) -> tuple[Settings, Plan, Store]:
    plan_file = tmp_path / "plan.yaml"
    plan_file.write_text(year_plan_text(), encoding="utf-8")
    settings = load_settings(
        None,
        var_dir=tmp_path / "var",
        plan=plan_file,
        secret_key="test-secret-key-0123456789abcdef",
        public_url="https://session-bot.example.org",
        alert_email=ALERTS_TO,
    )
    store = wiring.open_store(settings)
    t0 = dt.datetime(2027, 12, 1, tzinfo=dt.UTC)
    for address, lang in SUBSCRIBERS:
        store.subscribers.add(
            address, name=None, language=lang, status="confirmed", now=t0, confirmed_at=t0
        )
    return settings, load_plan(plan_file), store


def make_runner(
    settings: Settings, plan: Plan, store: Store, sandbox: ZoomSandbox, clock: ManualClock
) -> Runner:
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    transport = MaildirTransport(settings.resolved_outbox)
    runner = wiring.build_runner(settings, plan, store, zoom, clock, transport=transport)
    runner.on_hold = make_alerter(settings, plan, store, transport)
    return runner


def messages(settings: Settings) -> list[EmailMessage]:
    box = mailbox.Maildir(str(settings.resolved_outbox), create=False)
    out = []
    for key in box.iterkeys():
        msg = email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def local(moment: dt.datetime) -> str:
    return f"{moment.astimezone(BERLIN):%Y-%m-%d %H:%M %Z}"


def drive(runner: Runner, store: Store, plan: Plan, clock: ManualClock, until: dt.datetime):
    """Run at every next due moment, as the daemon's job does; returns what each run did."""
    log: list[tuple[str, str, list[str]]] = []
    while True:
        due = next_due(clock(), plan, state_from_store(store))
        if due is None or due > until:
            return log
        clock.set(due)
        report = runner.run("schedule")
        assert report.delivery.permanent == 0 and report.delivery.temporary == 0
        by_session: dict[str, list[str]] = {}
        for done in report.done:
            kind, _, rest = done.partition(" for ")
            by_session.setdefault(rest.split(" ")[0].split("/")[1], []).append(kind)
        if not by_session:
            log.append((local(due), "-", []))
        for day, kinds in by_session.items():
            log.append((local(due), day, kinds))


def test_a_year_of_the_series_at_the_right_local_times(
    year: tuple[Settings, Plan, Store],
) -> None:
    settings, plan, store = year
    clock = ManualClock(dt.datetime(2027, 12, 31, 12, 0, tzinfo=dt.UTC))
    with ZoomSandbox(state_file=settings.var_dir / "zoom.json", clock=clock) as sandbox:
        runner = make_runner(settings, plan, store, sandbox, clock)
        log = drive(runner, store, plan, clock, dt.datetime(2029, 1, 1, tzinfo=dt.UTC))
        meetings = sandbox.meetings

    assert log == EXPECTED

    # One Zoom meeting per session with a topic, at 12:30 Berlin time on its day.
    by_day = {m["agenda"].split("]")[0].rsplit(" ", 1)[-1]: m for m in meetings.values()}
    assert len(meetings) == len(WITH_TOPIC)
    for day, start in STARTS_UTC.items():
        meeting = next(m for m in meetings.values() if day in m["agenda"])
        assert meeting["start_time"] == start, (day, meeting["start_time"], by_day.keys())
        assert meeting["timezone"] == "Europe/Berlin"

    mails = messages(settings)
    alerts = [m for m in mails if m["To"] == ALERTS_TO]
    subscriber_mail = [m for m in mails if m["To"] != ALERTS_TO]
    # Invitation and reminder to each subscriber for each session with a topic; nothing else.
    per_recipient = Counter(str(m["To"]) for m in subscriber_mail)
    assert per_recipient == {a: 2 * len(WITH_TOPIC) for a, _ in SUBSCRIBERS}
    # Two alerts about 28 June, on two different days, and none about skipped sessions.
    assert [a["Date"].datetime.astimezone(BERLIN).date().isoformat() for a in alerts] in (
        ["2028-06-14", "2028-06-27"],
        ["2028-06-27", "2028-06-14"],
    )
    assert all("28.06.2028" in str(a["Subject"]) for a in alerts)

    # The calendar entry of each DST-crossing session starts at 12:30 local time.
    for day in ("2028-04-05", "2028-11-08"):
        invitation = next(
            m
            for m in subscriber_mail
            if m["To"] == "anna@example.org"
            and "Einladung" in str(m["Subject"])
            and day.split("-")[2].lstrip("0") + "." in str(m.get_body(("plain",)).get_content())
            and _ics_start(m).date().isoformat() == day
        )
        start = _ics_start(invitation)
        assert start.astimezone(BERLIN).strftime("%H:%M") == "12:30"
        sent = invitation["Date"].datetime
        assert local(sent) == next(e[0] for e in EXPECTED if e[1] == day and "invitation" in e[2])

    # Every mailing was frozen exactly at its moment (local 09:00 the right day).
    for row in store.sessions.all():
        for m in store.mailings.of_session(row.id):
            assert m.created_at.astimezone(BERLIN).strftime("%H:%M") == "09:00"


def _ics_start(msg: EmailMessage) -> dt.datetime:
    for part in msg.iter_attachments():
        if part.get_content_type() == "text/calendar":
            cal = icalendar.Calendar.from_ical(part.get_payload(decode=True))
            for event in cal.walk("VEVENT"):
                start = event.decoded("dtstart")
                assert isinstance(start, dt.datetime)
                return start
    raise AssertionError("no calendar attachment")


def test_status_names_held_and_skipped_sessions_with_reasons(
    year: tuple[Settings, Plan, Store],
) -> None:
    settings, plan, _ = year
    june = collect_status(settings, plan, dt.datetime(2028, 6, 20, 8, 0, tzinfo=dt.UTC))
    assert [h["key"] for h in june["held"]] == ["willkommen/2028-06-28"]
    assert "no topic" in june["held"][0]["reason"]
    skipped = {s["key"]: s["reason"] for s in june["skipped"]}
    assert list(skipped) == ["willkommen/2028-08-23"]
    assert "break" in skipped["willkommen/2028-08-23"]

    autumn = collect_status(settings, plan, dt.datetime(2028, 10, 1, 8, 0, tzinfo=dt.UTC))
    skipped = {s["key"]: s["reason"] for s in autumn["skipped"]}
    assert skipped.keys() == {"willkommen/2028-11-22", "willkommen/2028-12-27"}
    assert "Buß- und Bettag" in skipped["willkommen/2028-11-22"]
    assert "exception" in skipped["willkommen/2028-12-27"]
    assert autumn["held"] == []


def test_after_downtime_what_is_still_useful_is_done_at_once(
    year: tuple[Settings, Plan, Store],
) -> None:
    settings, plan, store = year
    clock = ManualClock(dt.datetime(2028, 1, 12, 8, 0, tzinfo=dt.UTC))  # 09:00 CET
    with ZoomSandbox(state_file=settings.var_dir / "zoom.json", clock=clock) as sandbox:
        runner = make_runner(settings, plan, store, sandbox, clock)
        assert [d.split(" (")[0] for d in runner.run("start").done] == [
            "meeting for willkommen/2028-01-26",
            "invitation for willkommen/2028-01-26",
        ]
        # Down from before the January reminder until 10:00 on the day before the session:
        # the reminder still helps, so it goes out late.
        clock.set(dt.datetime(2028, 1, 25, 10, 0, tzinfo=BERLIN))
        assert [d.split(" (")[0] for d in runner.run("start").done] == [
            "reminder for willkommen/2028-01-26"
        ]
        # Down across the whole invitation window of February until the day before: the
        # invitation goes out late; it serves as the reminder, so no second mail.
        clock.set(dt.datetime(2028, 2, 22, 15, 0, tzinfo=BERLIN))
        report = runner.run("start")
        assert [d.split(" (")[0] for d in report.done] == [
            "meeting for willkommen/2028-02-23",
            "invitation for willkommen/2028-02-23",
        ]
        assert "late: catching up" in report.done[1]
        clock.set(dt.datetime(2028, 2, 23, 9, 0, tzinfo=BERLIN))
        assert runner.run("tick").done == []
        # Down past the start of the March session: nothing for it any more, but the
        # invitation to 5 April (due 22 March 09:00) is still useful.
        clock.set(dt.datetime(2028, 3, 22, 13, 0, tzinfo=BERLIN))
        assert [d.split(" (")[0] for d in runner.run("start").done] == [
            "meeting for willkommen/2028-04-05",
            "invitation for willkommen/2028-04-05",
        ]
    assert store.sessions.get("willkommen/2028-03-22") is None
    sent = Counter(str(m["To"]) for m in messages(settings))
    assert sent == {a: 4 for a, _ in SUBSCRIBERS}  # Jan ×2, Feb ×1, Apr 5 ×1


def test_status_lists_bounced_subscribers_and_the_last_run(
    year: tuple[Settings, Plan, Store],
) -> None:
    from session_bot.cli.status import format_status

    settings, plan, store = year
    t0 = dt.datetime(2028, 1, 2, tzinfo=dt.UTC)
    store.subscribers.add(
        "gone@example.org", name=None, language="de", status="bounced", now=t0, bounced_at=t0
    )
    run_id = store.runs.start("tick", t0)
    store.runs.finish(run_id, t0, "partial", "1 action(s), 1 failed")
    data = collect_status(settings, plan, dt.datetime(2028, 1, 3, tzinfo=dt.UTC))
    assert [b["email"] for b in data["bounced"]] == ["gone@example.org"]
    assert data["last_run"]["outcome"] == "partial"
    text = format_status(data)
    assert "Unzustellbare Adressen (sie bekommen keine Post mehr):" in text
    assert "  gone@example.org seit Sonntag, 2. Januar 2028" in text
    assert (
        "Letzter Lauf: Sonntag, 2. Januar 2028, 01:00 Uhr (tick) – teilweise fehlgeschlagen" in text
    )
    assert "Zoom-Aufrufe heute" in text
