"""The sandbox speaks Zoom: raw HTTP against it, no session-bot client involved."""

from __future__ import annotations

import base64
import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from session_bot.adapters.clock import ManualClock
from session_bot.sandbox.zoom import Fault, ZoomSandbox, run_sandbox
from tests.support.zoom import CREDS, HOST_EMAIL, SEED_JOIN_HOST, SEED_MEETING, START

UTC = dt.UTC
BASIC = "Basic " + base64.b64encode(f"{CREDS[1]}:{CREDS[2]}".encode()).decode()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sandbox(clock: ManualClock) -> Iterator[ZoomSandbox]:
    with ZoomSandbox(clock=clock, require=CREDS, join_host=SEED_JOIN_HOST) as sb:
        yield sb


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def token_for(sb: ZoomSandbox, http: requests.Session) -> str:
    r = http.post(
        sb.oauth_url + "/oauth/token",
        data={"grant_type": "account_credentials", "account_id": CREDS[0]},
        headers={"Authorization": BASIC},
        timeout=5,
    )
    assert r.status_code == 200, r.text
    return str(r.json()["access_token"])


class Api:
    """Bearer-authenticated JSON calls against the sandbox."""

    def __init__(self, sb: ZoomSandbox, http: requests.Session) -> None:
        self.sb, self.http = sb, http
        self.renew()

    def renew(self) -> None:
        self.auth = {"Authorization": f"Bearer {token_for(self.sb, self.http)}"}

    def __call__(self, method: str, path: str, **kw: Any) -> requests.Response:
        headers = {**self.auth, "Accept": "application/json", **kw.pop("headers", {})}
        return self.http.request(method, self.sb.api_url + path, headers=headers, timeout=5, **kw)

    def create(self, **body: Any) -> requests.Response:
        body.setdefault("topic", "Willkommen")
        body.setdefault("type", 2)
        body.setdefault("start_time", "2025-02-26T12:30:00")
        body.setdefault("timezone", "Europe/Berlin")
        return self("POST", f"/users/{HOST_EMAIL}/meetings", json=body)


@pytest.fixture
def api(sandbox: ZoomSandbox, http: requests.Session) -> Api:
    return Api(sandbox, http)


# --- OAuth ---------------------------------------------------------------------------------------


def test_token_from_form_body_or_query_string(sandbox: ZoomSandbox, http: requests.Session) -> None:
    form = http.post(
        sandbox.oauth_url + "/oauth/token",
        data={"grant_type": "account_credentials", "account_id": CREDS[0]},
        headers={"Authorization": BASIC},
        timeout=5,
    )
    query = http.post(
        sandbox.oauth_url + "/oauth/token",
        params={"grant_type": "account_credentials", "account_id": CREDS[0]},
        headers={"Authorization": BASIC},
        timeout=5,
    )
    for r in (form, query):
        assert r.status_code == 200
        body = r.json()
        assert body["token_type"] == "bearer"
        assert body["expires_in"] == 3600
        assert body["access_token"].count(".") == 2  # JWT-shaped
        assert "meeting:write:meeting:admin" in body["scope"].split()
    assert form.json()["access_token"] != query.json()["access_token"]


@pytest.mark.parametrize(
    ("auth", "params", "error"),
    [
        (None, {"grant_type": "account_credentials", "account_id": CREDS[0]}, "invalid_client"),
        (
            "Basic " + base64.b64encode(f"{CREDS[1]}:wrong".encode()).decode(),
            {"grant_type": "account_credentials", "account_id": CREDS[0]},
            "invalid_client",
        ),
        (
            BASIC,
            {"grant_type": "client_credentials", "account_id": CREDS[0]},
            "unsupported_grant_type",
        ),
        (BASIC, {"grant_type": "account_credentials", "account_id": "nope"}, "invalid_request"),
        (BASIC, {"grant_type": "account_credentials"}, "invalid_request"),
    ],
)
def test_token_errors_use_zoom_oauth_bodies(
    sandbox: ZoomSandbox,
    http: requests.Session,
    auth: str | None,
    params: dict[str, str],
    error: str,
) -> None:
    headers = {"Authorization": auth} if auth else {}
    r = http.post(sandbox.oauth_url + "/oauth/token", data=params, headers=headers, timeout=5)
    assert r.status_code == 400
    assert r.json()["error"] == error
    assert r.json()["reason"]


def test_any_non_empty_credentials_unless_told(http: requests.Session) -> None:
    with ZoomSandbox() as sb:
        r = http.post(
            sb.oauth_url + "/oauth/token",
            data={"grant_type": "account_credentials", "account_id": "x"},
            auth=("any", "thing"),
            timeout=5,
        )
        assert r.status_code == 200
        r = http.post(
            sb.oauth_url + "/oauth/token",
            data={"grant_type": "account_credentials", "account_id": "x"},
            auth=("any", ""),
            timeout=5,
        )
        assert r.status_code == 400


def test_api_rejects_missing_unknown_and_expired_tokens(
    sandbox: ZoomSandbox, http: requests.Session, clock: ManualClock
) -> None:
    url = f"{sandbox.api_url}/users/{HOST_EMAIL}"
    r = http.get(url, timeout=5)
    assert (r.status_code, r.json()) == (401, {"code": 124, "message": "Invalid access token."})
    r = http.get(url, headers={"Authorization": "Bearer forged"}, timeout=5)
    assert r.json()["code"] == 124
    token = token_for(sandbox, http)
    assert http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5).status_code == 200
    clock.advance(minutes=60)
    r = http.get(url, headers={"Authorization": f"Bearer {token}"}, timeout=5)
    assert (r.status_code, r.json()) == (401, {"code": 124, "message": "Access token has expired."})


def test_single_token_mode_invalidates_the_previous_token(http: requests.Session) -> None:
    with ZoomSandbox(single_token=True, require=CREDS) as sb:
        first, second = token_for(sb, http), token_for(sb, http)
        url = f"{sb.api_url}/users/{HOST_EMAIL}"
        assert (
            http.get(url, headers={"Authorization": f"Bearer {first}"}, timeout=5).status_code
            == 401
        )
        assert (
            http.get(url, headers={"Authorization": f"Bearer {second}"}, timeout=5).status_code
            == 200
        )


def test_missing_scope_is_400_4711(http: requests.Session) -> None:
    with ZoomSandbox(scopes=["user:read:user:admin"]) as sb:
        api = Api(sb, http)
        assert api("GET", f"/users/{HOST_EMAIL}").status_code == 200
        r = api.create()
        assert r.status_code == 400 and r.json()["code"] == 4711
        assert "meeting:write:meeting:admin" in r.json()["message"]


# --- meetings ------------------------------------------------------------------------------------


def test_create_answers_like_zoom(sandbox: ZoomSandbox, api: Api) -> None:
    sandbox.queue_meeting(**SEED_MEETING)
    r = api.create(agenda="[session-bot willkommen 2025-02-26]", duration=60)
    assert r.status_code == 201
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["X-RateLimit-Category"] == "Light"
    m = r.json()
    assert m["id"] == 66547677759
    assert m["start_time"] == "2025-02-26T11:30:00Z"  # local Berlin 12:30 in CET
    assert m["timezone"] == "Europe/Berlin"
    assert m["join_url"] == "https://bertelsmann-stiftung-de.zoom.us/j/66547677759"
    assert m["password"] == m["pstn_password"] == "717531"
    assert m["host_email"] == HOST_EMAIL
    assert m["status"] == "waiting" and m["type"] == 2 and m["creation_source"] == "open_api"
    numbers = m["settings"]["global_dial_in_numbers"]
    assert numbers[0] == {
        "country": "DE",
        "country_name": "Germany",
        "city": "Frankfurt am Main",
        "number": "+496950500952",
        "type": "toll",
    }
    assert all(n["country"] == "DE" for n in numbers)
    assert "+49 69 5050 0952" not in [n["number"] for n in numbers]  # same number, not twice
    assert api("GET", f"/meetings/{m['id']}").json() == m


def test_generated_meetings_have_11_digit_ids_and_passcodes(api: Api) -> None:
    ids = set()
    for _ in range(5):
        m = api.create().json()
        assert len(str(m["id"])) == 11
        assert m["password"].isdigit() and len(m["password"]) == 6
        ids.add(m["id"])
    assert len(ids) == 5


def test_embed_passcode_puts_pwd_into_the_join_url(http: requests.Session) -> None:
    with ZoomSandbox(embed_passcode=True) as sb:
        m = Api(sb, http).create().json()
        assert m["join_url"] == f"https://zoom.us/j/{m['id']}?pwd={m['encrypted_password']}.1"


def test_alphanumeric_passcode_gets_a_numeric_phone_passcode(
    sandbox: ZoomSandbox, api: Api
) -> None:
    sandbox.queue_meeting(id=91386932573, password="SqJ16r", dial_in="+496950500952")
    m = api.create().json()
    assert m["password"] == "SqJ16r"
    assert m["pstn_password"].isdigit() and len(m["pstn_password"]) == 6


def test_dial_in_numbers_follow_the_requested_countries(api: Api) -> None:
    m = api.create(settings={"global_dial_in_countries": ["AT", "DE"]}).json()
    countries = [n["country"] for n in m["settings"]["global_dial_in_numbers"]]
    assert countries[0] == "AT" and set(countries) == {"AT", "DE"}
    assert m["settings"]["global_dial_in_countries"] == ["AT", "DE"]


def test_z_time_is_gmt_and_ignores_the_timezone(api: Api) -> None:
    m = api.create(start_time="2025-02-26T12:30:00Z", timezone="Europe/Berlin").json()
    assert m["start_time"] == "2025-02-26T12:30:00Z"


def test_summer_time_is_converted(api: Api) -> None:
    assert (
        api.create(start_time="2025-06-25T12:30:00").json()["start_time"] == "2025-06-25T10:30:00Z"
    )


def test_past_or_missing_start_means_now(api: Api, clock: ManualClock) -> None:
    assert (
        api.create(start_time="2020-01-01T10:00:00").json()["start_time"] == "2025-02-12T08:00:00Z"
    )
    body = {"topic": "x", "type": 2}
    r = api("POST", f"/users/{HOST_EMAIL}/meetings", json=body)
    assert r.json()["start_time"] == "2025-02-12T08:00:00Z"
    assert r.json()["timezone"] == "Europe/Berlin"  # the user's zone


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"start_time": "26.02.2025 12:30"}, "start_time"),
        ({"start_time": "2025-02-30T12:30:00"}, "start_time"),
        ({"start_time": "2025-02-26T12:30:00+01:00"}, "start_time"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"topic": "x" * 201}, "topic"),
        ({"agenda": "x" * 2001}, "agenda"),
        ({"duration": 0}, "duration"),
        ({"duration": "60"}, "duration"),
        ({"type": 5}, "type"),
        ({"settings": {"approval_type": 7}}, "settings.approval_type"),
        ({"settings": {"global_dial_in_countries": "DE"}}, "settings.global_dial_in_countries"),
    ],
)
def test_invalid_fields_are_300(
    sandbox: ZoomSandbox, api: Api, body: dict[str, Any], field: str
) -> None:
    r = api.create(**body)
    assert r.status_code == 400
    assert r.json() == {
        "code": 300,
        "message": "Validation Failed.",
        "errors": [{"field": field, "message": "Invalid field."}],
    }
    assert sandbox.meetings == {}


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]"])
def test_missing_or_broken_body_is_300(api: Api, raw: bytes) -> None:
    r = api(
        "POST",
        f"/users/{HOST_EMAIL}/meetings",
        data=raw,
        headers={"Content-Type": "application/json"},
    )
    assert r.status_code == 400 and r.json()["code"] == 300


def test_unknown_meeting_and_user(http: requests.Session) -> None:
    with ZoomSandbox(users=[HOST_EMAIL]) as sb:
        api = Api(sb, http)
        for method in ("GET", "PATCH", "DELETE"):
            r = api(method, "/meetings/12345678901", json={} if method == "PATCH" else None)
            assert (r.status_code, r.json()) == (
                404,
                {"code": 3001, "message": "Meeting does not exist: 12345678901."},
            )
        assert api("GET", "/meetings/abc").json()["code"] == 3001
        r = api("GET", "/users/nobody@example.org/meetings")
        assert (r.status_code, r.json()) == (
            404,
            {"code": 1001, "message": "User does not exist: nobody@example.org."},
        )
        assert api("GET", f"/users/{HOST_EMAIL.upper()}").status_code == 200
        assert api("GET", "/users/me").json()["email"] == HOST_EMAIL
        user_id = api("GET", f"/users/{HOST_EMAIL}").json()["id"]
        assert api("GET", f"/users/{user_id}").json()["email"] == HOST_EMAIL


def test_patch_is_204_without_body_and_delete_is_204(sandbox: ZoomSandbox, api: Api) -> None:
    mid = api.create(duration=60).json()["id"]
    r = api("PATCH", f"/meetings/{mid}", json={"duration": 90, "start_time": "2025-02-26T14:00:00"})
    assert r.status_code == 204 and r.content == b"" and "Content-Type" not in r.headers
    m = api("GET", f"/meetings/{mid}").json()
    assert (m["duration"], m["start_time"]) == (90, "2025-02-26T13:00:00Z")
    api("PATCH", f"/meetings/{mid}", json={"start_time": "2020-01-01T10:00:00"})
    assert api("GET", f"/meetings/{mid}").json()["start_time"] == "2025-02-26T13:00:00Z"  # ignored
    r = api("DELETE", f"/meetings/{mid}")
    assert r.status_code == 204 and r.content == b""
    assert api("GET", f"/meetings/{mid}").status_code == 404


def test_list_cuts_agenda_to_250_and_shows_only_list_fields(api: Api) -> None:
    api.create(agenda="[session-bot willkommen 2025-02-26] " + "x" * 600)
    r = api("GET", f"/users/{HOST_EMAIL}/meetings", params={"type": "upcoming"})
    assert r.headers["X-RateLimit-Category"] == "Medium"
    (item,) = r.json()["meetings"]
    assert len(item["agenda"]) == 250
    assert set(item) == {
        "uuid", "id", "host_id", "topic", "type", "start_time", "duration", "timezone",
        "agenda", "created_at", "join_url",
    }  # fmt: skip
    assert r.json()["next_page_token"] == ""


def test_list_pages_with_next_page_token_that_expires(api: Api, clock: ManualClock) -> None:
    for day in range(10, 17):
        api.create(start_time=f"2025-03-{day}T12:30:00")
    seen: list[int] = []
    params: dict[str, Any] = {"page_size": 3}
    pages = 0
    while True:
        body = api("GET", f"/users/{HOST_EMAIL}/meetings", params=params).json()
        pages += 1
        assert body["total_records"] == 7 and body["page_size"] == 3
        seen += [m["id"] for m in body["meetings"]]
        if not body["next_page_token"]:
            break
        params = {"next_page_token": body["next_page_token"]}
    assert pages == 3 and len(set(seen)) == 7
    first = api("GET", f"/users/{HOST_EMAIL}/meetings", params={"page_size": 3}).json()
    clock.advance(minutes=16)
    r = api(
        "GET", f"/users/{HOST_EMAIL}/meetings", params={"next_page_token": first["next_page_token"]}
    )
    assert r.status_code == 400 and r.json()["code"] == 300


def test_list_types_upcoming_scheduled_previous(api: Api, clock: ManualClock) -> None:
    soon = api.create(start_time="2025-02-13T10:00:00").json()["id"]
    later = api.create(start_time="2025-04-01T10:00:00").json()["id"]

    def ids(kind: str) -> set[int]:
        r = api("GET", f"/users/{HOST_EMAIL}/meetings", params={"type": kind})
        return {m["id"] for m in r.json()["meetings"]}

    clock.advance(days=5)  # `soon` is over, not yet expired
    api.renew()
    assert ids("upcoming") == {later}
    assert ids("previous_meetings") == {soon}
    assert ids("scheduled") == {soon, later}
    clock.advance(days=40)  # `soon` expired 30 days after its date
    api.renew()
    assert ids("scheduled") == {later}
    assert api("GET", f"/users/{HOST_EMAIL}/meetings", params={"type": "bogus"}).status_code == 400


def test_invitation_text(sandbox: ZoomSandbox, api: Api) -> None:
    sandbox.queue_meeting(**SEED_MEETING)
    mid = api.create(topic="Willkommen").json()["id"]
    text = api("GET", f"/meetings/{mid}/invitation").json()["invitation"]
    assert "\r\nMeeting ID: 665 4767 7759\r\n" in text
    assert "+496950500952,,66547677759#,,,,*717531# Germany (Frankfurt am Main)" in text


def test_daily_create_update_limit_per_user(http: requests.Session, clock: ManualClock) -> None:
    with ZoomSandbox(daily_limit=2, clock=clock) as sb:
        api = Api(sb, http)
        mid = api.create().json()["id"]
        assert api("PATCH", f"/meetings/{mid}", json={"duration": 30}).status_code == 204
        r = api.create()
        assert r.status_code == 429
        assert "daily rate limit (2)" in r.json()["message"]
        assert "Retry-After" not in r.headers and "X-RateLimit-Type" not in r.headers
        clock.advance(hours=16)  # next UTC day
        api.renew()
        assert api.create().status_code == 201


# --- faults ----------------------------------------------------------------------------------------


def test_faults_apply_to_matching_requests_the_given_number_of_times(
    sandbox: ZoomSandbox, api: Api
) -> None:
    sandbox.inject(Fault("429", times=2, retry_after="3"))
    for _ in range(2):
        r = api("GET", f"/users/{HOST_EMAIL}")
        assert r.status_code == 429
        assert r.headers["Retry-After"] == "3" and r.headers["X-RateLimit-Type"] == "QPS"
        assert r.json()["code"] == 4001
    assert api("GET", f"/users/{HOST_EMAIL}").status_code == 200
    sandbox.inject(Fault("429", daily=True, retry_after="2025-02-13T00:00:00Z"))
    r = api("GET", f"/users/{HOST_EMAIL}")
    assert r.headers["X-RateLimit-Type"] == "Daily-limit"
    assert r.headers["Retry-After"] == "2025-02-13T00:00:00Z"
    sandbox.inject(Fault("502", method="POST"))
    assert api("GET", f"/users/{HOST_EMAIL}").status_code == 200  # GET does not match
    r = api.create()
    assert r.status_code == 502 and r.headers["Content-Type"].startswith("text/html")
    assert sandbox.meetings == {}


def test_dropped_create_answer_still_creates(sandbox: ZoomSandbox, api: Api) -> None:
    sandbox.inject(Fault("drop_create_answer"))
    with pytest.raises(requests.ConnectionError):
        api.create()
    assert len(sandbox.meetings) == 1
    assert (
        sandbox.requests[-1].status is None and sandbox.requests[-1].fault == "drop_create_answer"
    )


def test_requests_are_recorded_with_secrets_redacted(sandbox: ZoomSandbox, api: Api) -> None:
    api("GET", f"/users/{HOST_EMAIL}")
    token_req, user_req = sandbox.requests
    assert token_req.is_token and token_req.headers["authorization"] == "Basic [redacted]"
    assert user_req.headers["authorization"] == "Bearer [redacted]"
    assert CREDS[2] not in repr(sandbox.requests)
    assert user_req.status == 200 and user_req.response_json["email"] == HOST_EMAIL


# --- persistence and serving ---------------------------------------------------------------------


def test_restart_with_state_file_keeps_meetings_and_tokens(
    tmp_path: Path, http: requests.Session, clock: ManualClock
) -> None:
    state = tmp_path / "var" / "zoom-sandbox.json"
    with ZoomSandbox(state_file=state, clock=clock) as sb:
        api = Api(sb, http)
        sb.queue_meeting(**SEED_MEETING)
        created = api.create().json()
        gone = api.create().json()["id"]
        api("DELETE", f"/meetings/{gone}")
        auth = api.auth
    assert state.exists()
    with ZoomSandbox(state_file=state, clock=clock) as sb2:
        assert list(sb2.meetings) == [66547677759]
        r = http.get(f"{sb2.api_url}/meetings/66547677759", headers=auth, timeout=5)
        assert r.status_code == 200 and r.json() == created
        assert (
            http.get(f"{sb2.api_url}/meetings/{gone}", headers=auth, timeout=5).status_code == 404
        )


def test_stop_closes_kept_alive_connections(sandbox: ZoomSandbox, api: Api) -> None:
    url = f"{sandbox.api_url}/users/{HOST_EMAIL}"
    assert api.http.get(url, headers=api.auth, timeout=5).status_code == 200  # pooled now
    sandbox.stop()
    with pytest.raises(requests.ConnectionError):
        api.http.get(url, headers=api.auth, timeout=5)


def test_run_sandbox_serves_until_stopped(tmp_path: Path, http: requests.Session) -> None:
    lines: list[str] = []
    stop = threading.Event()
    thread = threading.Thread(
        target=run_sandbox,
        args=(0, tmp_path / "zoom.json", "example.zoom.us"),
        kwargs={"stop": stop, "echo": lines.append},
    )
    thread.start()
    try:
        for _ in range(200):
            if any("SESSION_BOT_ZOOM_API_URL=" in ln for ln in lines):
                break
            stop.wait(0.01)
        api_url = next(ln.split("=", 1)[1] for ln in lines if "SESSION_BOT_ZOOM_API_URL=" in ln)
        oauth_url = next(ln.split("=", 1)[1] for ln in lines if "SESSION_BOT_ZOOM_OAUTH_URL=" in ln)
        assert api_url == oauth_url + "/v2"
        r = http.post(
            oauth_url + "/oauth/token",
            data={"grant_type": "account_credentials", "account_id": "a"},
            auth=("b", "c"),
            timeout=5,
        )
        token = r.json()["access_token"]
        r = http.post(
            f"{api_url}/users/{HOST_EMAIL}/meetings",
            json={"topic": "t", "start_time": "2099-01-01T10:00:00"},
            headers={"Authorization": f"Bearer {token}"},
            timeout=5,
        )
        assert r.json()["join_url"].startswith("https://example.zoom.us/j/")
    finally:
        stop.set()
        thread.join(timeout=5)
    assert not thread.is_alive()
    assert (tmp_path / "zoom.json").exists()
