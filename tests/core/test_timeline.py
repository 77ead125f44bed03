"""The pure timeline: which actions are due at which moment."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from hypothesis import given, settings
from hypothesis import strategies as st

from session_bot.core.plan import load_plan, parse_plan
from session_bot.core.review import review_fingerprint
from session_bot.core.timeline import SessionState, due_actions, next_due
from tests.support.plans import automatic_updates

BERLIN = ZoneInfo("Europe/Berlin")
EXAMPLE = Path(__file__).parents[2] / "examples" / "willkommen.yaml"
PLAN = load_plan(EXAMPLE)
KEY = "willkommen/2025-02-26"


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=BERLIN)


def kinds(now: dt.datetime, state: dict[str, SessionState] | None = None) -> list[tuple[str, str]]:
    return [(a.kind, a.occurrence.key) for a in due_actions(now, PLAN, state or {})]


def test_nothing_before_the_invitation_moment() -> None:
    assert kinds(at(2025, 2, 12, 8, 59)) == []


def test_meeting_and_invitation_at_the_invitation_moment() -> None:
    assert kinds(at(2025, 2, 12, 9, 0)) == [("meeting", KEY), ("invitation", KEY)]


def test_invited_session_waits_for_its_reminder() -> None:
    invited = {KEY: SessionState(meeting_id=1, mailings={"invitation": at(2025, 2, 12, 9)})}
    assert kinds(at(2025, 2, 20, 12), invited) == []
    assert kinds(at(2025, 2, 25, 9), invited) == [("reminder", KEY)]
    reminded = {
        KEY: SessionState(
            meeting_id=1,
            mailings={"invitation": at(2025, 2, 12, 9), "reminder": at(2025, 2, 25, 9)},
        )
    }
    assert kinds(at(2025, 2, 25, 10), reminded) == []


def test_catch_up_sends_a_late_invitation_but_no_reminder_after_the_start() -> None:
    late = due_actions(at(2025, 2, 26, 10), PLAN, {})
    assert [a.kind for a in late] == ["meeting", "invitation"]
    assert "late" in late[1].note
    invited = {KEY: SessionState(meeting_id=1, mailings={"invitation": at(2025, 2, 12, 9)})}
    assert kinds(at(2025, 2, 26, 12, 31), invited) == []


def test_a_late_invitation_after_the_reminder_moment_replaces_the_reminder() -> None:
    invited_late = {KEY: SessionState(meeting_id=1, mailings={"invitation": at(2025, 2, 25, 15)})}
    assert kinds(at(2025, 2, 25, 16), invited_late) == []


def test_session_without_topic_is_held() -> None:
    key = "willkommen/2025-06-25"
    actions = due_actions(at(2025, 6, 11, 9), PLAN, {})
    assert [(a.kind, a.occurrence.key) for a in actions] == [("hold", key)]


def test_next_due_is_the_next_invitation_or_reminder() -> None:
    assert next_due(at(2025, 2, 1, 0), PLAN, {}) == at(2025, 2, 12, 9)
    invited = {KEY: SessionState(meeting_id=1, mailings={"invitation": at(2025, 2, 12, 9)})}
    assert next_due(at(2025, 2, 12, 9, 5), PLAN, invited) == at(2025, 2, 25, 9)


OLD_FP = {"start": "2025-02-26T12:30:00+01:00", "duration": 60, "topic": "old", "speakers": []}


def _invited(**extra: object) -> dict[str, SessionState]:
    mailings = {"invitation": at(2025, 2, 12, 9)}
    return {KEY: SessionState(meeting_id=1, mailings=mailings, announced=OLD_FP, **extra)}  # type: ignore[arg-type]


def test_changed_plan_after_invitation_means_an_update_in_an_automatic_series() -> None:
    plan = parse_plan(automatic_updates(EXAMPLE.read_text()), "x.yaml")
    acts = due_actions(at(2025, 2, 13, 9), plan, _invited())
    assert ("update", KEY) in [(a.kind, a.occurrence.key) for a in acts]


def test_a_change_in_a_reviewed_series_waits_until_the_organiser_sends_it() -> None:
    assert ("update", KEY) not in kinds(at(2025, 2, 13, 9), _invited())
    occ = next(a.occurrence for a in due_actions(at(2025, 2, 12, 9), PLAN, {}))
    sent = _invited(approved=review_fingerprint(occ))
    assert ("update", KEY) in kinds(at(2025, 2, 13, 9), sent)
    # Approved for other details than the plan now has: pending again, not mailed.
    stale = _invited(approved={**review_fingerprint(occ), "topic": "yet another"})
    assert ("update", KEY) not in kinds(at(2025, 2, 13, 9), stale)


@settings(max_examples=60, deadline=None)
@given(st.integers(min_value=0, max_value=365 * 24 * 4))
def test_every_due_action_is_due_and_before_its_session(quarter_hours: int) -> None:
    now = at(2025, 1, 1) + dt.timedelta(minutes=15 * quarter_hours)
    for action in due_actions(now, PLAN, {}):
        occ = action.occurrence
        assert action.due <= now < occ.start
        assert occ.skip_reason is None
        assert action.kind in ("meeting", "invitation", "hold")


def test_dst_lead_times_stay_at_local_nine() -> None:
    text = (Path(__file__).parents[2] / "examples" / "willkommen.yaml").read_text()
    plan = parse_plan(text, "x.yaml")
    # 2025-04-09 09:00 CEST (UTC+2) is the invitation moment of 2025-04-30 after the March change.
    acts = due_actions(dt.datetime(2025, 4, 16, 7, 0, tzinfo=dt.UTC), plan, {})
    assert [a.occurrence.date.isoformat() for a in acts] == ["2025-04-30", "2025-04-30"]
    assert due_actions(dt.datetime(2025, 4, 16, 6, 59, tzinfo=dt.UTC), plan, {}) == []
