"""The Zoom client against the sandbox over real HTTP: meetings, tokens, faults, messages."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Iterator
from urllib.parse import parse_qs

import pytest

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.zoom import (
    DialIn,
    LostCreateAnswer,
    Meeting,
    MeetingRequest,
    MemoryTokenCache,
    ZoomClient,
    ZoomUnknownUser,
    marker,
    parse_marker,
)
from session_bot.core.errors import (
    ConfigError,
    ZoomAuthError,
    ZoomNotFound,
    ZoomRateLimited,
    ZoomUnavailable,
)
from session_bot.sandbox.zoom import Fault, ZoomSandbox
from tests.support.zoom import (
    BERLIN,
    CREDS,
    HOST_EMAIL,
    SEED_DATE,
    SEED_MEETING,
    START,
    SleepRecorder,
    make_client,
    running_sandbox,
    session_request,
)

UTC = dt.UTC
SECRET = CREDS[2]


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sleeps() -> SleepRecorder:
    return SleepRecorder()


@pytest.fixture
def sandbox(clock: ManualClock) -> Iterator[ZoomSandbox]:
    with running_sandbox(clock) as sb:
        yield sb


@pytest.fixture
def client(sandbox: ZoomSandbox, clock: ManualClock, sleeps: SleepRecorder) -> Iterator[ZoomClient]:
    c = make_client(sandbox, clock, sleeps=sleeps)
    yield c
    c.close()


def api_calls(sandbox: ZoomSandbox) -> list[tuple[str, str, int | None]]:
    return [(r.method, r.path, r.status) for r in sandbox.requests if not r.is_token]


# --- values ------------------------------------------------------------------------------------


def _meeting(mid: int = 66547677759, dial_in: tuple[DialIn, ...] = ()) -> Meeting:
    return Meeting(
        id=mid,
        topic="t",
        agenda="a",
        start_time=dt.datetime(2025, 2, 26, 11, 30, tzinfo=UTC),
        duration=60,
        timezone="Europe/Berlin",
        join_url=f"https://zoom.us/j/{mid}",
        password="717531",
        pstn_password="717531",
        dial_in=dial_in,
    )


FRANKFURT = DialIn("DE", "Germany", "Frankfurt am Main", "+49 69 5050 0952", "toll")
FREE = DialIn("DE", "Germany", "", "+49 800 724 3138", "tollfree")


@pytest.mark.parametrize(
    ("mid", "shown"),
    [
        (66547677759, "665 4767 7759"),
        (5554443210, "555 444 3210"),
        (913869325, "913 869 325"),
        (12345678, "12345678"),
    ],
)
def test_display_id_groups_like_zoom(mid: int, shown: str) -> None:
    assert _meeting(mid).display_id == shown


def test_one_tap_uses_the_first_toll_number_without_spaces() -> None:
    m = _meeting(dial_in=(FREE, FRANKFURT))
    assert m.primary_dial_in == FRANKFURT
    assert m.one_tap() == "+496950500952,,66547677759#,,,,*717531#"
    assert m.one_tap(FREE) == "+498007243138,,66547677759#,,,,*717531#"
    assert _meeting().one_tap() == ""
    assert _meeting().primary_dial_in is None


def test_phone_passcode_falls_back_to_a_numeric_passcode_only() -> None:
    m = dataclasses.replace(_meeting(dial_in=(FRANKFURT,)), pstn_password="")
    assert m.one_tap() == "+496950500952,,66547677759#,,,,*717531#"
    alnum = dataclasses.replace(m, password="SqJ16r")
    assert alnum.one_tap() == "+496950500952,,66547677759#"


def test_meeting_json_round_trip_for_the_store() -> None:
    m = dataclasses.replace(_meeting(dial_in=(FRANKFURT, FREE)), host_email=HOST_EMAIL)
    data = m.to_json()
    assert data["start_time"] == "2025-02-26T11:30:00Z"
    assert Meeting.from_json(data) == m


def test_marker_round_trip() -> None:
    tag = marker("willkommen", SEED_DATE)
    assert tag == "[session-bot willkommen 2025-02-26]"
    assert parse_marker(tag + " Akteure") == ("willkommen", SEED_DATE)
    assert parse_marker("Akteure " + tag) is None


@pytest.mark.parametrize(
    ("utc", "local"),
    [
        (dt.datetime(2025, 2, 26, 11, 30, tzinfo=UTC), "2025-02-26T12:30:00"),  # CET
        (dt.datetime(2025, 6, 25, 10, 30, tzinfo=UTC), "2025-06-25T12:30:00"),  # CEST
    ],
)
def test_request_start_is_sent_as_local_time_of_the_series_zone(
    utc: dt.datetime, local: str
) -> None:
    req = MeetingRequest("t", "a", utc, 60, "Europe/Berlin")
    assert req.local_start() == local


def test_naive_start_is_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        MeetingRequest(
            "t", "a", dt.datetime(2025, 2, 26, 12, 30), 60, "Europe/Berlin"
        ).local_start()


def test_dial_in_numbers_of_the_configured_countries_come_first() -> None:
    data = {
        "id": 1,
        "start_time": "2025-02-26T11:30:00Z",
        "join_url": "u",
        "settings": {
            "global_dial_in_numbers": [
                {"country": "US", "number": "+1 646 558 8656", "type": "toll"},
                {"country": "DE", "number": "+49 69 5050 0952", "type": "toll"},
            ]
        },
    }
    assert Meeting.from_zoom(data, ("DE", "US")).primary_dial_in.country == "DE"  # type: ignore[union-attr]
    assert Meeting.from_zoom(data, ("US",)).primary_dial_in.country == "US"  # type: ignore[union-attr]


# --- configuration -----------------------------------------------------------------------------


def test_me_as_user_is_refused(sandbox: ZoomSandbox, clock: ManualClock) -> None:
    with pytest.raises(ConfigError, match="SESSION_BOT_ZOOM_USER"):
        make_client(sandbox, clock, user="me")


def test_missing_credentials_name_the_settings(sandbox: ZoomSandbox, clock: ManualClock) -> None:
    with pytest.raises(ConfigError) as err:
        make_client(sandbox, clock, creds=("", CREDS[1], ""))
    assert "SESSION_BOT_ZOOM_ACCOUNT_ID" in str(err.value)
    assert "SESSION_BOT_ZOOM_CLIENT_SECRET" in str(err.value)
    assert "SESSION_BOT_ZOOM_CLIENT_ID," not in str(err.value)


# --- meetings ----------------------------------------------------------------------------------


def test_seed_meeting_is_reproduced(sandbox: ZoomSandbox, client: ZoomClient) -> None:
    sandbox.queue_meeting(**SEED_MEETING)
    m = client.create_meeting(session_request(alternative_hosts=("a@example.org", "b@example.org")))
    assert m.join_url == "https://bertelsmann-stiftung-de.zoom.us/j/66547677759"
    assert m.display_id == "665 4767 7759"
    assert m.password == "717531"
    assert m.primary_dial_in is not None and m.primary_dial_in.number == "+496950500952"
    assert m.one_tap() == "+496950500952,,66547677759#,,,,*717531#"
    assert m.start_time == dt.datetime(2025, 2, 26, 11, 30, tzinfo=UTC)
    assert m.host_email == HOST_EMAIL

    post = next(r for r in sandbox.requests if r.method == "POST" and not r.is_token)
    assert post.path == f"/v2/users/{HOST_EMAIL}/meetings"
    assert post.headers["accept"] == "application/json"
    assert post.headers["content-type"] == "application/json"
    body = post.json
    assert body["type"] == 2
    assert body["start_time"] == "2025-02-26T12:30:00"  # local, no Z
    assert body["timezone"] == "Europe/Berlin"
    assert body["duration"] == 60
    assert body["agenda"].startswith("[session-bot willkommen 2025-02-26] ")
    assert body["settings"] == {
        "waiting_room": True,
        "join_before_host": False,
        "mute_upon_entry": True,
        "approval_type": 2,
        "global_dial_in_countries": ["DE"],
        "alternative_hosts": "a@example.org;b@example.org",
    }


def test_long_topic_and_agenda_are_cut_to_zoom_limits(
    sandbox: ZoomSandbox, client: ZoomClient
) -> None:
    m = client.create_meeting(session_request(topic="T" * 250, extra_agenda="A" * 2500))
    assert len(m.topic) == 200
    assert len(m.agenda) == 2000
    assert m.agenda.startswith(marker("willkommen", SEED_DATE))


def test_create_without_marker_is_refused_before_any_call(
    sandbox: ZoomSandbox, client: ZoomClient
) -> None:
    req = dataclasses.replace(session_request(), agenda="no marker here")
    with pytest.raises(ValueError, match="marker"):
        client.create_meeting(req)
    assert sandbox.requests == []


def test_update_patches_then_reads_back(sandbox: ZoomSandbox, client: ZoomClient) -> None:
    m = client.create_meeting(session_request())
    changed = session_request(hhmm=(14, 0), duration=90, topic="Neues Thema")
    updated = client.update_meeting(m.id, changed)
    assert updated.topic == "Neues Thema"
    assert updated.duration == 90
    assert updated.start_time == dt.datetime(2025, 2, 26, 13, 0, tzinfo=UTC)
    assert updated.join_url == m.join_url
    calls = api_calls(sandbox)
    assert calls[-2:] == [
        ("PATCH", f"/v2/meetings/{m.id}", 204),
        ("GET", f"/v2/meetings/{m.id}", 200),
    ]


def test_delete_and_deleted_meeting_is_not_found(sandbox: ZoomSandbox, client: ZoomClient) -> None:
    sandbox.queue_meeting(**SEED_MEETING)
    m = client.create_meeting(session_request())
    client.delete_meeting(m.id)
    assert sandbox.meetings == {}
    with pytest.raises(ZoomNotFound) as err:
        client.get_meeting(m.id)
    assert err.value.code == 3001 and err.value.status == 404
    assert "665 4767 7759" in str(err.value)
    with pytest.raises(ZoomNotFound):
        client.delete_meeting(m.id)
    with pytest.raises(ZoomNotFound):
        client.update_meeting(m.id, session_request())


def test_list_follows_next_page_token(clock: ManualClock, sleeps: SleepRecorder) -> None:
    with running_sandbox(clock, max_page_size=2) as sandbox:
        client = make_client(sandbox, clock, sleeps=sleeps)
        days = [SEED_DATE + dt.timedelta(days=7 * i) for i in range(5)]
        created = {client.create_meeting(session_request(d)).id for d in days}
        listed = list(client.list_upcoming())
        assert {m.id for m in listed} == created
        lists = [r for r in sandbox.requests if r.method == "GET" and r.path.endswith("/meetings")]
        assert len(lists) == 3
        assert "next_page_token" not in lists[0].query
        assert all(r.query["next_page_token"][0] for r in lists[1:])
        assert client.find_by_marker(marker("willkommen", days[3])).id in created  # type: ignore[union-attr]
        client.close()


def test_find_by_marker_sees_past_the_250_character_cut(client: ZoomClient) -> None:
    long_topic = session_request(extra_agenda="x" * 1500)
    m = client.create_meeting(long_topic)
    other = client.create_meeting(session_request(SEED_DATE + dt.timedelta(days=28)))
    found = client.find_by_marker(marker("willkommen", SEED_DATE))
    assert found is not None and found.id == m.id and found.id != other.id
    assert len(found.agenda) == 250
    assert client.find_by_marker(marker("willkommen", dt.date(2025, 3, 5))) is None
    assert client.find_by_marker(marker("other-series", SEED_DATE)) is None


def test_get_user_and_invitation(sandbox: ZoomSandbox, client: ZoomClient) -> None:
    sandbox.queue_meeting(**SEED_MEETING)
    m = client.create_meeting(session_request())
    assert client.get_user()["email"] == HOST_EMAIL
    text = client.get_invitation(m.id)
    assert "Meeting ID: 665 4767 7759" in text
    assert "+496950500952,,66547677759#,,,,*717531#" in text


def test_call_counter_counts_create_and_update_calls(
    sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    kinds: list[str] = []
    client = make_client(sandbox, clock, counter=kinds.append)
    m = client.create_meeting(session_request())
    client.update_meeting(m.id, session_request(duration=75))
    client.get_meeting(m.id)
    list(client.list_upcoming())
    assert kinds == ["create", "update"]


# --- tokens ------------------------------------------------------------------------------------


def test_token_request_is_a_form_body_with_basic_auth(
    sandbox: ZoomSandbox, client: ZoomClient
) -> None:
    client.get_user()
    tok = next(r for r in sandbox.requests if r.is_token)
    assert tok.method == "POST" and tok.raw_query == ""
    assert tok.headers["content-type"] == "application/x-www-form-urlencoded"
    assert tok.headers["authorization"] == "Basic [redacted]"
    assert parse_qs(tok.body.decode()) == {
        "grant_type": ["account_credentials"],
        "account_id": [CREDS[0]],
    }


def test_one_token_per_token_lifetime(
    sandbox: ZoomSandbox, client: ZoomClient, clock: ManualClock
) -> None:
    for _ in range(3):
        client.get_user()
    clock.advance(minutes=54)  # 6 minutes left: still used
    client.get_user()
    assert sandbox.token_calls == 1
    clock.advance(minutes=2)  # 4 minutes left: renewed before Zoom would refuse it
    client.get_user()
    client.get_user()
    assert sandbox.token_calls == 2
    assert all(r.status == 200 for r in sandbox.requests)


def test_processes_sharing_a_cache_share_one_token(
    sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    cache = MemoryTokenCache()
    a = make_client(sandbox, clock, cache=cache)
    b = make_client(sandbox, clock, cache=cache)
    a.get_user()
    b.get_user()
    assert sandbox.token_calls == 1
    sandbox.expire_tokens()  # e.g. revoked in Zoom
    b.get_user()  # 401, one re-authentication, saved for everyone
    a.get_user()  # picks up b's token from the cache
    assert sandbox.token_calls == 2


def test_single_token_accounts_make_separate_caches_fight_but_recover(clock: ManualClock) -> None:
    with running_sandbox(clock, single_token=True) as sandbox:
        a = make_client(sandbox, clock)
        b = make_client(sandbox, clock)
        a.get_user()
        b.get_user()  # invalidates a's token (moodle-mod_zoom#473)
        a.get_user()  # 401 -> exactly one new token
        assert sandbox.token_calls == 3
        assert [r.status for r in sandbox.requests if not r.is_token] == [200, 200, 401, 200]


def test_expired_token_gets_exactly_one_reauthentication(
    sandbox: ZoomSandbox, client: ZoomClient
) -> None:
    m = client.create_meeting(session_request())
    sandbox.inject(Fault("expire_token"))
    assert client.get_meeting(m.id).id == m.id
    assert sandbox.token_calls == 2
    assert [s for _, _, s in api_calls(sandbox)] == [201, 401, 200]


def test_a_second_401_is_an_auth_error_naming_the_settings(
    sandbox: ZoomSandbox, client: ZoomClient
) -> None:
    sandbox.inject(Fault("expire_token", times=5))
    with pytest.raises(ZoomAuthError) as err:
        client.get_user()
    assert sandbox.token_calls == 2
    assert "SESSION_BOT_ZOOM_CLIENT_ID" in str(err.value)
    assert SECRET not in str(err.value)


def test_create_after_expired_token_creates_once(sandbox: ZoomSandbox, client: ZoomClient) -> None:
    client.get_user()
    sandbox.expire_tokens()
    client.create_meeting(session_request())
    assert len(sandbox.meetings) == 1
    assert [s for m, _, s in api_calls(sandbox) if m == "POST"] == [401, 201]


def test_naive_expiry_from_a_store_is_read_as_utc(sandbox: ZoomSandbox, clock: ManualClock) -> None:
    seeding = make_client(sandbox, clock)
    seeding.get_user()
    cache = MemoryTokenCache()
    token, expires_at = seeding._cache.load()  # type: ignore[misc]
    cache.save(token, expires_at.replace(tzinfo=None))  # as SQLite hands it back
    make_client(sandbox, clock, cache=cache).get_user()
    assert sandbox.token_calls == 1


# --- user-fixable errors -----------------------------------------------------------------------


def test_wrong_client_secret_names_the_settings_and_hides_the_secret(
    sandbox: ZoomSandbox, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = "totally-wrong-secret-123"
    client = make_client(sandbox, clock, creds=(CREDS[0], CREDS[1], wrong))
    with pytest.raises(ZoomAuthError) as err:
        client.get_user()
    msg = str(err.value)
    assert "SESSION_BOT_ZOOM_CLIENT_ID" in msg and "SESSION_BOT_ZOOM_CLIENT_SECRET" in msg
    assert "invalid_client" in msg
    assert wrong not in msg and wrong not in caplog.text
    assert sandbox.token_calls == 1  # a 400 is not retried


def test_wrong_account_id_names_its_setting(sandbox: ZoomSandbox, clock: ManualClock) -> None:
    client = make_client(sandbox, clock, creds=("other-account", CREDS[1], CREDS[2]))
    with pytest.raises(ZoomAuthError, match="SESSION_BOT_ZOOM_ACCOUNT_ID"):
        client.get_user()


def test_unknown_host_user_names_its_setting(clock: ManualClock) -> None:
    with running_sandbox(clock, users=[HOST_EMAIL]) as sandbox:
        client = make_client(sandbox, clock, user="someone.else@example.org")
        with pytest.raises(ZoomUnknownUser) as err:
            client.create_meeting(session_request())
        assert isinstance(err.value, ZoomNotFound) and isinstance(err.value, ZoomAuthError)
        assert err.value.code == 1001
        assert "SESSION_BOT_ZOOM_USER" in str(err.value)
        assert "someone.else@example.org" in str(err.value)


def test_missing_scope_names_the_scope_to_add(clock: ManualClock) -> None:
    with running_sandbox(
        clock, scopes=["meeting:read:meeting:admin", "user:read:user:admin"]
    ) as sb:
        client = make_client(sb, clock)
        assert client.get_user()["email"] == HOST_EMAIL
        with pytest.raises(ZoomAuthError) as err:
            client.create_meeting(session_request())
        assert "meeting:write:meeting:admin" in str(err.value)
        assert "Scopes" in str(err.value)
        assert sb.meetings == {}


def test_secrets_never_reach_the_log(
    sandbox: ZoomSandbox, client: ZoomClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    m = client.create_meeting(session_request())
    sandbox.inject(Fault("expire_token"))
    sandbox.inject(Fault("500", path_prefix="/v2/users/"))
    client.get_meeting(m.id)
    client.get_user()
    cached = client._cache.load()
    assert cached is not None
    token = cached[0]
    assert SECRET not in caplog.text
    assert token not in caplog.text
    assert SECRET not in repr(client) and token not in repr(client._cache)


# --- faults: 429 ---------------------------------------------------------------------------------


def test_429_storm_honours_retry_after_seconds(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    client.get_user()
    sandbox.inject(Fault("429", times=3, retry_after="2"))
    assert client.get_user()["email"] == HOST_EMAIL
    assert sleeps.waits == [2.0, 2.0, 2.0]
    assert sandbox.count("GET", r"/v2/users/.*") == 5


def test_429_storm_longer_than_the_budget_is_rate_limited(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    client.get_user()
    sandbox.inject(Fault("429", times=20, retry_after="1"))
    with pytest.raises(ZoomRateLimited):
        client.get_user()
    assert sandbox.count("GET", r"/v2/users/.*") == 1 + 4
    assert sleeps.waits == [1.0, 1.0, 1.0]


def test_429_with_a_near_date_waits_until_then(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder, clock: ManualClock
) -> None:
    soon = (clock() + dt.timedelta(seconds=12)).strftime("%Y-%m-%dT%H:%M:%SZ")
    sandbox.inject(Fault("429", retry_after=soon))
    client.get_user()
    assert sleeps.waits == [12.0]


def test_daily_limit_with_a_far_date_raises_at_once(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    sandbox.inject(Fault("429", daily=True, retry_after="2025-02-13T00:00:00Z", times=5))
    with pytest.raises(ZoomRateLimited) as err:
        client.create_meeting(session_request())
    assert sleeps.waits == []
    assert sandbox.create_calls == 1
    assert "2025-02-13 00:00:00 UTC" in str(err.value)
    assert err.value.retry_at == dt.datetime(2025, 2, 13, tzinfo=UTC).timestamp()


def test_per_user_daily_limit_without_headers_raises_at_once(
    clock: ManualClock, sleeps: SleepRecorder
) -> None:
    kinds: list[str] = []
    with running_sandbox(clock, daily_limit=2) as sandbox:
        client = make_client(sandbox, clock, sleeps=sleeps, counter=kinds.append)
        client.create_meeting(session_request(SEED_DATE))
        client.create_meeting(session_request(SEED_DATE + dt.timedelta(days=28)))
        with pytest.raises(ZoomRateLimited) as err:
            client.create_meeting(session_request(SEED_DATE + dt.timedelta(days=56)))
        assert sleeps.waits == []
        assert err.value.retry_at == dt.datetime(2025, 2, 13, tzinfo=UTC).timestamp()
        assert "100 meeting create/update requests" in str(err.value)
        assert len(sandbox.meetings) == 2
        assert kinds == ["create"] * 3


def test_429_without_retry_after_backs_off(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    sandbox.inject(Fault("429", times=2))
    client.get_user()
    assert sleeps.waits == [0.5, 1.0]


def test_429_on_create_is_retried_and_creates_once(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    sandbox.inject(Fault("429", retry_after="1", times=2, method="POST"))
    client.create_meeting(session_request())
    assert sandbox.create_calls == 3
    assert len(sandbox.meetings) == 1


# --- faults: 5xx, timeouts, lost answers -----------------------------------------------------------


def test_500s_on_reads_are_retried_with_backoff(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    sandbox.inject(Fault("500", times=2))
    sandbox.inject(Fault("502"))
    client.get_user()
    assert sleeps.waits == [0.5, 1.0, 2.0]


def test_persistent_5xx_is_unavailable_after_bounded_attempts(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    sandbox.inject(Fault("502", times=50))
    with pytest.raises(ZoomUnavailable) as err:
        client.get_user()
    assert sandbox.count("GET", r"/v2/users/.*") == 4
    assert "502" in str(err.value) and "<" not in str(err.value)
    assert not isinstance(err.value, LostCreateAnswer)


def test_slow_reads_time_out_and_are_retried(clock: ManualClock, sleeps: SleepRecorder) -> None:
    with running_sandbox(clock) as sandbox:
        client = make_client(sandbox, clock, sleeps=sleeps, timeout=0.3)
        client.get_user()
        sandbox.inject(Fault("slow", delay=1.5))
        assert client.get_user()["email"] == HOST_EMAIL
        assert sleeps.waits == [0.5]
        sandbox.inject(Fault("slow", delay=1.5, times=2))
        with pytest.raises(ZoomUnavailable, match="no answer"):
            make_client(sandbox, clock, sleeps=sleeps, timeout=0.3, attempts=2).get_user()


def test_a_dropped_read_answer_is_retried(sandbox: ZoomSandbox, client: ZoomClient) -> None:
    m = client.create_meeting(session_request())
    sandbox.inject(Fault("drop_answer", method="GET"))
    assert client.get_meeting(m.id).id == m.id


def test_500_on_create_is_a_lost_answer_never_retried(
    sandbox: ZoomSandbox, client: ZoomClient, sleeps: SleepRecorder
) -> None:
    sandbox.inject(Fault("500", method="POST"))
    with pytest.raises(LostCreateAnswer):
        client.create_meeting(session_request())
    assert sandbox.create_calls == 1
    assert sleeps.waits == []
    # This 500 was Zoom failing before it acted: nothing to adopt, so creating again is right.
    assert client.find_by_marker(marker("willkommen", SEED_DATE)) is None


@pytest.mark.parametrize("fault", [Fault("drop_create_answer"), Fault("slow", delay=1.5)])
def test_lost_create_answer_then_the_marker_finds_exactly_one_meeting(
    clock: ManualClock, sleeps: SleepRecorder, fault: Fault
) -> None:
    with running_sandbox(clock) as sandbox:
        client = make_client(sandbox, clock, sleeps=sleeps, timeout=0.3)
        sandbox.queue_meeting(**SEED_MEETING)
        sandbox.inject(fault)
        with pytest.raises(LostCreateAnswer):
            client.create_meeting(session_request())
        assert sandbox.create_calls == 1
        found = client.find_by_marker(marker("willkommen", SEED_DATE))
        assert found is not None
        adopted = client.get_meeting(found.id)
        assert adopted.join_url == "https://bertelsmann-stiftung-de.zoom.us/j/66547677759"
        assert adopted.one_tap() == "+496950500952,,66547677759#,,,,*717531#"
        assert list(sandbox.meetings) == [66547677759]
        assert sandbox.create_calls == 1


def test_never_two_meetings_per_session_through_a_fault_storm(
    sandbox: ZoomSandbox, client: ZoomClient
) -> None:
    """The runner's create-or-adopt step, repeated across runs while Zoom misbehaves."""
    dates = [SEED_DATE + dt.timedelta(days=28 * i) for i in range(4)]
    faults = [
        Fault("drop_create_answer"),
        Fault("500", method="POST"),
        Fault("429", retry_after="1", method="POST"),
        Fault("drop_create_answer"),
    ]
    stored: dict[dt.date, int] = {}
    for run in range(3):
        for d, f in zip(dates, faults, strict=True):
            if d in stored:
                continue
            if run == 0:
                sandbox.inject(f)
            found = client.find_by_marker(marker("willkommen", d))
            if found is not None:
                stored[d] = found.id
                continue
            with contextlib.suppress(LostCreateAnswer):  # the next run looks for the marker
                stored[d] = client.create_meeting(session_request(d)).id
    assert len(stored) == 4
    assert sorted(stored.values()) == sorted(sandbox.meetings)
    for d, mid in stored.items():
        assert sandbox.meetings[mid]["agenda"].startswith(marker("willkommen", d))


def test_unreachable_zoom_is_unavailable_not_a_lost_create(
    clock: ManualClock, sleeps: SleepRecorder
) -> None:
    with running_sandbox(clock) as sandbox:
        client = make_client(sandbox, clock, sleeps=sleeps)
        client.get_user()  # token cached
    with pytest.raises(ZoomUnavailable) as err:  # the server is gone: the request never left
        client.create_meeting(session_request())
    assert not isinstance(err.value, LostCreateAnswer)
    assert "could not connect" in str(err.value)
    assert sleeps.waits == [0.5, 1.0, 2.0]


def test_a_meeting_made_in_berlin_winter_and_summer(client: ZoomClient) -> None:
    winter = client.create_meeting(session_request(dt.date(2025, 2, 26)))
    summer = client.create_meeting(session_request(dt.date(2025, 6, 25)))
    assert winter.local_start == dt.datetime(2025, 2, 26, 12, 30, tzinfo=BERLIN)
    assert summer.start_time == dt.datetime(2025, 6, 25, 10, 30, tzinfo=UTC)


def test_a_client_that_is_not_used_calls_nothing(sandbox: ZoomSandbox, clock: ManualClock) -> None:
    """A re-run with nothing to do must not touch Zoom: not even for a token."""
    with make_client(sandbox, clock):
        pass
    assert sandbox.requests == []
