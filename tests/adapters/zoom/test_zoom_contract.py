"""Contract: every request the client sends and every answer the sandbox gives fits Zoom's spec.

The spec is Zoom's own OpenAPI subset (tests/data/zoom-session-bot-subset.openapi.json), checked
with openapi-core. Zoom's documents do not cover three things, checked with JSON Schemas from the
facts in shared/zoom/README.md instead: the token endpoint, Zoom's error body
``{"code", "message"[, "errors"]}`` (the spec describes error codes only in prose), and statuses
the spec leaves out (401 on operations other than PATCH, 5xx).

One deliberate relaxation: the spec declares ``format: date-time`` for ``start_time`` in the
create and update request bodies, while the same field's description (and Zoom) asks for local
time without offset plus ``timezone`` (the README names this quirk for PATCH; POST has it too).
``test_the_strict_spec_rejects_only_the_local_start_time`` pins down that this is the only
difference.
"""

from __future__ import annotations

import copy
import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import jsonschema
import pytest
import requests
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.exceptions import OpenAPIError
from werkzeug.datastructures import Headers, ImmutableMultiDict

from session_bot.adapters.clock import ManualClock
from session_bot.adapters.zoom import LostCreateAnswer
from session_bot.core.errors import ZoomError
from session_bot.sandbox.zoom import Fault, RecordedRequest, ZoomSandbox
from tests.support.zoom import (
    CREDS,
    HOST_EMAIL,
    SEED_DATE,
    SEED_MEETING,
    START,
    make_client,
    running_sandbox,
    session_request,
)

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type")  # oauth2: not checkable

SPEC_FILE = Path(__file__).parents[2] / "data" / "zoom-session-bot-subset.openapi.json"
ZOOM_API = "https://api.zoom.us"  # the spec's server is https://api.zoom.us/v2

ERROR_BODY = {
    "type": "object",
    "required": ["code", "message"],
    "additionalProperties": False,
    "properties": {
        "code": {"type": "integer"},
        "message": {"type": "string", "minLength": 1},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["field", "message"],
                "properties": {"field": {"type": "string"}, "message": {"type": "string"}},
            },
        },
    },
}
TOKEN_FORM = {
    "type": "object",
    "required": ["grant_type", "account_id"],
    "additionalProperties": False,
    "properties": {
        "grant_type": {"const": "account_credentials"},
        "account_id": {"type": "string", "minLength": 1},
    },
}
TOKEN_OK = {
    "type": "object",
    "required": ["access_token", "token_type", "expires_in", "scope"],
    "properties": {
        "access_token": {"type": "string", "minLength": 20},
        "token_type": {"const": "bearer"},
        "expires_in": {"type": "integer", "minimum": 1},
        "scope": {"type": "string"},
        "api_url": {"type": "string"},
    },
}
TOKEN_ERROR = {
    "type": "object",
    "required": ["reason", "error"],
    "properties": {"reason": {"type": "string"}, "error": {"type": "string"}},
}


def _relaxed(spec: dict[str, Any]) -> dict[str, Any]:
    spec = copy.deepcopy(spec)
    for path, method in (("/users/{userId}/meetings", "post"), ("/meetings/{meetingId}", "patch")):
        body = spec["paths"][path][method]["requestBody"]["content"]["application/json"]
        del body["schema"]["properties"]["start_time"]["format"]
    return spec


@pytest.fixture(scope="module")
def raw_spec() -> dict[str, Any]:
    return json.loads(SPEC_FILE.read_text(encoding="utf-8"))  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def spec(raw_spec: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(_relaxed(raw_spec))


@pytest.fixture(scope="module")
def strict_spec(raw_spec: dict[str, Any]) -> OpenAPI:
    return OpenAPI.from_dict(raw_spec)


# --- adapters from recorded exchanges to openapi-core's protocols -----------------------------------


class _Request:
    def __init__(self, rec: RecordedRequest) -> None:
        self.host_url = ZOOM_API
        self.path = rec.path
        self.method = rec.method.lower()
        self.body = rec.body or None
        self.content_type = rec.headers.get("content-type", "")
        self.parameters = RequestParameters(
            query=ImmutableMultiDict([(k, v) for k, vs in rec.query.items() for v in vs]),
            header=Headers(list(rec.headers.items())),
        )


class _Response:
    def __init__(self, rec: RecordedRequest) -> None:
        assert rec.status is not None
        self.status_code = rec.status
        self.content_type = rec.response_headers.get("Content-Type", "")
        self.headers = Headers(list(rec.response_headers.items()))
        self.data = rec.response_body or None


def documented_statuses(raw: dict[str, Any], rec: RecordedRequest) -> set[int]:
    for template, ops in raw["paths"].items():
        pattern = (
            "^/v2" + template.replace("{userId}", "[^/]+").replace("{meetingId}", "[^/]+") + "$"
        )
        if re.match(pattern, rec.path) and rec.method.lower() in ops:
            return {int(code) for code in ops[rec.method.lower()]["responses"]}
    return set()


def check_exchange(spec: OpenAPI, raw: dict[str, Any], rec: RecordedRequest, *, ours: bool) -> str:
    """Validate one exchange; ``ours`` = the request came from our client. Returns what was checked."""
    if rec.is_token:
        if ours:
            assert rec.method == "POST" and rec.raw_query == ""
            assert rec.headers["content-type"] == "application/x-www-form-urlencoded"
            assert rec.headers["authorization"].startswith("Basic ")
            form = {k: v[-1] for k, v in parse_qs(rec.body.decode()).items()}
            jsonschema.validate(form, TOKEN_FORM)
        if rec.status is not None:
            jsonschema.validate(rec.response_json, TOKEN_OK if rec.status == 200 else TOKEN_ERROR)
        return "token"
    if ours:
        spec.validate_request(_Request(rec))
        assert rec.headers["accept"] == "application/json"
    if rec.status is None:
        return "request"  # answer dropped on purpose
    if rec.status >= 400 and rec.response_headers.get("Content-Type", "").startswith(
        "application/json"
    ):
        jsonschema.validate(rec.response_json, ERROR_BODY)
    if rec.status in documented_statuses(raw, rec):
        spec.validate_response(_Request(rec), _Response(rec))
        return "spec"
    assert rec.status in (401, 500, 502, 503), f"undocumented status {rec.status} for {rec.path}"
    return "error-shape"


# --- the contract ----------------------------------------------------------------------------------


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(START)


@pytest.fixture
def sandbox(clock: ManualClock) -> Iterator[ZoomSandbox]:
    with running_sandbox(clock, max_page_size=2) as sb:
        yield sb


def test_every_client_request_and_sandbox_answer_fits_the_spec(
    spec: OpenAPI, raw_spec: dict[str, Any], sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    client = make_client(sandbox, clock, timeout=0.5, attempts=6)
    sandbox.queue_meeting(**SEED_MEETING)
    seed = client.create_meeting(session_request(alternative_hosts=("co@example.org",)))
    for weeks in (1, 2, 3, 4):
        client.create_meeting(session_request(SEED_DATE + dt.timedelta(weeks=weeks)))
    client.update_meeting(seed.id, session_request(hhmm=(13, 0), duration=90))
    assert len(list(client.list_upcoming())) == 5  # three pages
    assert client.find_by_marker(f"[session-bot willkommen {SEED_DATE}]") is not None
    client.get_user()
    client.get_invitation(seed.id)
    # Faults: 429s with and without hints, 5xx, an expired token, a lost create answer.
    sandbox.inject(Fault("429", retry_after="1"))
    sandbox.inject(Fault("429", retry_after="2025-02-12T08:00:05Z"))
    sandbox.inject(Fault("500"))
    sandbox.inject(Fault("502"))
    sandbox.inject(Fault("expire_token"))
    client.get_meeting(seed.id)
    sandbox.inject(Fault("429", daily=True, retry_after="2025-02-13T00:00:00Z"))
    with pytest.raises(ZoomError):
        client.update_meeting(seed.id, session_request())
    sandbox.inject(Fault("drop_create_answer"))
    with pytest.raises(LostCreateAnswer):
        client.create_meeting(session_request(SEED_DATE + dt.timedelta(weeks=8)))
    client.delete_meeting(seed.id)
    with pytest.raises(ZoomError):
        client.get_meeting(seed.id)
    with pytest.raises(ZoomError):
        client.delete_meeting(seed.id)
    client.close()

    checked = [check_exchange(spec, raw_spec, rec, ours=True) for rec in sandbox.requests]
    ops = {
        (r.method, r.path.split("/")[2] if r.path.startswith("/v2/") else r.path)
        for r in sandbox.requests
    }
    assert ops >= {
        ("POST", "/oauth/token"),
        ("POST", "users"),
        ("GET", "users"),
        ("GET", "meetings"),
        ("PATCH", "meetings"),
        ("DELETE", "meetings"),
    }
    assert checked.count("spec") >= 15 and "error-shape" in checked and "token" in checked


def test_sandbox_error_answers_fit_the_spec_and_zoom_error_shape(
    spec: OpenAPI, raw_spec: dict[str, Any], clock: ManualClock
) -> None:
    with (
        running_sandbox(clock, users=[HOST_EMAIL], daily_limit=1) as sb,
        requests.Session() as http,
    ):
        auth = (CREDS[1], CREDS[2])
        form = {"grant_type": "account_credentials", "account_id": CREDS[0]}
        http.post(sb.oauth_url + "/oauth/token", data=form, auth=("x", "y"), timeout=5)
        http.post(sb.oauth_url + "/oauth/token", params=form, auth=auth, timeout=5)
        token = http.post(sb.oauth_url + "/oauth/token", data=form, auth=auth, timeout=5).json()
        h = {"Authorization": f"Bearer {token['access_token']}", "Accept": "application/json"}
        api = sb.api_url
        http.get(f"{api}/users/{HOST_EMAIL}", timeout=5)  # no token
        http.get(f"{api}/users/nobody@example.org", headers=h, timeout=5)
        http.get(f"{api}/users/nobody@example.org/meetings", headers=h, timeout=5)
        http.get(f"{api}/meetings/12345678901", headers=h, timeout=5)
        http.get(f"{api}/meetings/12345678901/invitation", headers=h, timeout=5)
        http.patch(f"{api}/meetings/12345678901", json={"duration": 5}, headers=h, timeout=5)
        http.delete(f"{api}/meetings/12345678901", headers=h, timeout=5)
        create = f"{api}/users/{HOST_EMAIL}/meetings"
        http.post(create, json={"start_time": "tomorrow"}, headers=h, timeout=5)
        http.post(
            create, json={"type": 2, "start_time": "2025-03-26T12:30:00"}, headers=h, timeout=5
        )
        http.post(create, json={"type": 2}, headers=h, timeout=5)  # daily limit reached
        for kind in ("scheduled", "live", "upcoming", "upcoming_meetings", "previous_meetings"):
            http.get(create, params={"type": kind, "page_size": 300}, headers=h, timeout=5)
        statuses = [r.status for r in sb.requests]
        checked = [check_exchange(spec, raw_spec, r, ours=False) for r in sb.requests]
    assert {400, 401, 404, 429, 200, 201} <= set(statuses)
    assert checked.count("spec") >= 12


def test_the_strict_spec_rejects_only_the_local_start_time(
    spec: OpenAPI, strict_spec: OpenAPI, sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    client = make_client(sandbox, clock)
    m = client.create_meeting(session_request())
    client.update_meeting(m.id, session_request(duration=75))
    for rec in sandbox.requests:
        if rec.method not in ("POST", "PATCH") or rec.is_token:
            continue
        spec.validate_request(_Request(rec))
        with pytest.raises(OpenAPIError) as err:
            strict_spec.validate_request(_Request(rec))
        problems = [e.message for e in err.value.__cause__.schema_errors]  # type: ignore[union-attr]
        assert problems == [f"'{rec.json['start_time']}' is not a 'date-time'"]
        # With a Zulu time the strict spec is satisfied: the format is the only difference.
        zulu = {**rec.json, "start_time": "2025-02-26T11:30:00Z"}
        tampered = copy.copy(rec)
        tampered.body = json.dumps(zulu).encode()
        strict_spec.validate_request(_Request(tampered))


def test_the_contract_check_catches_a_wrong_request_and_a_wrong_answer(
    spec: OpenAPI, raw_spec: dict[str, Any], sandbox: ZoomSandbox, clock: ManualClock
) -> None:
    client = make_client(sandbox, clock)
    m = client.create_meeting(session_request())
    client.get_meeting(m.id)
    post = next(r for r in sandbox.requests if r.method == "POST" and not r.is_token)
    get = sandbox.requests[-1]
    check_exchange(spec, raw_spec, post, ours=True)
    check_exchange(spec, raw_spec, get, ours=True)

    bad_request = copy.copy(post)
    bad_request.body = json.dumps({**post.json, "duration": "60"}).encode()
    with pytest.raises(OpenAPIError):
        check_exchange(spec, raw_spec, bad_request, ours=True)
    bad_answer = copy.copy(get)
    bad_answer.response_body = json.dumps({**get.response_json, "id": str(m.id)}).encode()
    with pytest.raises(OpenAPIError):
        check_exchange(spec, raw_spec, bad_answer, ours=True)
    bad_error = copy.copy(get)
    bad_error.status = 404
    bad_error.response_body = json.dumps({"error": "not found"}).encode()
    with pytest.raises(jsonschema.ValidationError):
        check_exchange(spec, raw_spec, bad_error, ours=True)
