"""Issue 14, finding 2: a validly signed but malformed Zoom event is a 400 or a 200 "ignored",
never a 500 (Zoom retries those for days); a replayed delivery has no effect."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.mail import MaildirTransport
from session_bot.core.plan import Plan
from session_bot.sandbox.zoom import ZoomSandbox
from tests.conftest import SEED_MEETING
from tests.web.hardening_support import (
    Served,
    event_body,
    hardening_settings,
    serve,
    signed_headers,
)

OURS = int(SEED_MEETING["id"])  # type: ignore[call-overload]


@pytest.fixture
def served(
    tmp_path: Path, example_plan: Plan, sandbox: ZoomSandbox, clock: ManualClock
) -> Iterator[Served]:
    settings = hardening_settings(tmp_path)
    store = wiring.open_store(settings)
    sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    transport = MaildirTransport(tmp_path / "outbox")
    wiring.build_runner(settings, example_plan, store, zoom, clock, transport).run("test")
    try:
        with serve(settings, example_plan, store=store, clock=clock) as s:
            yield s
    finally:
        zoom.close()
        store.close()


def _post(served: Served, body: bytes, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        served.url + "/zoom/webhook",
        data=body,
        headers=headers or signed_headers(served.clock, body),
        timeout=10,
    )


def _deleted(meeting_id: Any) -> dict[str, Any]:
    return {"event": "meeting.deleted", "payload": {"object": {"id": meeting_id}}}


MALFORMED: list[tuple[str, bytes]] = [
    ("id 10**40", event_body(_deleted(10**40))),
    ("id 2**63", event_body(_deleted(2**63))),
    ("id 0", event_body(_deleted(0))),
    ("id negative", event_body(_deleted(-OURS))),
    ("id float", event_body(_deleted(float(OURS)))),
    ("id bool", event_body(_deleted(True))),
    ("id huge string", event_body(_deleted("9" * 400))),
    ("id list", event_body(_deleted([OURS]))),
    ("payload list", event_body({"event": "meeting.deleted", "payload": [1]})),
    ("payload string", event_body({"event": "meeting.updated", "payload": "x"})),
    ("object number", event_body({"event": "meeting.deleted", "payload": {"object": 5}})),
    ("event not a string", event_body({"event": ["meeting.deleted"], "payload": {}})),
    ("top level list", event_body([1])),
    ("top level number", b"5"),
    ("not json", b"\xff\xfe not json"),
    ("deeply nested lists", b"[" * 30_000 + b"]" * 30_000),
    ("deeply nested objects", b'{"a":' * 10_000 + b"1" + b"}" * 10_000),
    (
        "deep payload",
        b'{"event":"meeting.deleted","payload":' + b"[" * 30_000 + b"]" * 30_000 + b"}",
    ),
    ("validation without token", event_body({"event": "endpoint.url_validation", "payload": {}})),
]


@pytest.mark.parametrize(("name", "body"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_signed_malformed_events_are_never_a_500(served: Served, name: str, body: bytes) -> None:
    assert len(body) <= 64 * 1024
    resp = _post(served, body)
    assert resp.status_code in (200, 400), (resp.status_code, resp.text)
    if resp.status_code == 200:
        assert resp.json() == {"status": "ignored"}
    assert served.store.sessions.to_check() == [] and served.runs == []


def test_replayed_delivery_is_answered_duplicate_without_effect(served: Served) -> None:
    body = event_body(_deleted(OURS))
    headers = signed_headers(served.clock, body)
    first = _post(served, body, headers)
    assert first.status_code == 200 and first.json() == {"status": "accepted"}
    served.store.sessions.clear_zoom_check(_session_id(served))
    for _ in range(3):
        again = _post(served, body, headers)
        assert again.status_code == 200 and again.json() == {"status": "duplicate"}
    assert served.store.sessions.to_check() == []
    assert served.runs == ["webhook"]


def test_a_new_delivery_of_the_same_event_still_counts(served: Served) -> None:
    body = event_body(_deleted(OURS))
    assert _post(served, body).json() == {"status": "accepted"}
    served.clock.advance(seconds=1)  # Zoom's retry: a new timestamp, so a new signature
    assert _post(served, body).json() == {"status": "accepted"}


def test_validation_challenge_still_answers(served: Served) -> None:
    body = event_body({"event": "endpoint.url_validation", "payload": {"plainToken": "abc"}})
    resp = _post(served, body)
    assert resp.status_code == 200 and resp.json()["plainToken"] == "abc"


def _session_id(served: Served) -> int:
    keys = served.store.sessions.to_check()
    assert keys, "the delivery flagged no session"
    session = served.store.sessions.get(keys[0])
    assert session is not None
    return int(session.id)


def test_nesting_beyond_the_parser_with_a_raised_limit_is_a_400(
    tmp_path: Path, example_plan: Plan
) -> None:
    settings = hardening_settings(tmp_path, max_body_bytes=1024 * 1024)
    with serve(settings, example_plan) as s:
        body = b"[" * 100_000 + b"]" * 100_000
        resp = requests.post(
            s.url + "/zoom/webhook", data=body, headers=signed_headers(s.clock, body), timeout=10
        )
        assert resp.status_code == 400 and s.runs == []
