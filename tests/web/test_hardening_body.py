"""Issue 14, finding 1: no request body is read beyond the limit, and the webhook checks its
signature headers before it reads one. Real uvicorn, raw HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from session_bot.core.plan import Plan
from tests.web.hardening_support import (
    Served,
    hardening_settings,
    raw_post,
    serve,
    signed_headers,
)

LIMIT = 64 * 1024
HUGE = 50 * 1024 * 1024
# The server hands the app what one read of the socket brought; one such read may pass the limit.
SLACK = 1024 * 1024


@pytest.fixture
def served(tmp_path: Path, example_plan: Plan) -> Iterator[Served]:
    with serve(hardening_settings(tmp_path), example_plan) as s:
        yield s


def _signed_looking(served: Served) -> dict[str, str]:
    # Fresh and well-formed, so the body is read; it cannot match a body not yet sent.
    return signed_headers(served.clock, b"")


def test_streamed_webhook_body_stops_at_the_limit(served: Served) -> None:
    answer = raw_post(
        served.port, "/zoom/webhook", _signed_looking(served), total=HUGE, chunked=True
    )
    assert answer.status == 413, answer.head
    assert served.counting.read <= LIMIT + SLACK
    assert answer.sent < HUGE


def test_declared_oversize_body_is_refused_before_it_is_sent(served: Served) -> None:
    # Nothing of the body follows the headers: only an answer given at once arrives in time.
    answer = raw_post(
        served.port, "/zoom/webhook", _signed_looking(served), total=HUGE, chunked=False,
        chunk=HUGE, timeout=5,
    )  # fmt: skip
    assert answer.status == 413, answer.head
    assert served.counting.read == 0


@pytest.mark.parametrize(
    ("path", "status"),
    # A forged token is refused without the body being read at all.
    [("/subscribe", 413), ("/unsubscribe/abc.def", 400), ("/confirm/abc.def", 400)],
)
def test_forms_read_no_streamed_body_beyond_the_limit(
    served: Served, path: str, status: int
) -> None:
    headers = {"content-type": "application/x-www-form-urlencoded"}
    answer = raw_post(served.port, path, headers, total=HUGE, chunked=True)
    assert answer.status == status, answer.head
    assert served.counting.read <= LIMIT + SLACK


def test_bodies_within_the_limit_still_work(served: Served) -> None:
    resp = requests.post(
        served.url + "/subscribe",
        data={"email": "x" * 100 + "@example.org", "name": "n" * 30_000},
        timeout=10,
    )
    assert resp.status_code in (200, 400)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"x-zm-request-timestamp": "1700000000", "x-zm-signature": "v0=" + "0" * 64},
        {"x-zm-signature": "v0=" + "0" * 64},
        {"x-zm-request-timestamp": "now", "x-zm-signature": "v0=" + "0" * 64},
        {"x-zm-request-timestamp": "1", "x-zm-signature": "nonsense"},
    ],
)
def test_webhook_without_usable_signature_headers_reads_no_body(
    served: Served, headers: dict[str, str]
) -> None:
    if "x-zm-request-timestamp" in headers and headers["x-zm-request-timestamp"] == "1":
        headers = {**headers, "x-zm-request-timestamp": str(int(served.clock().timestamp()))}
    resp = requests.post(
        served.url + "/zoom/webhook", data=b"{" * 60_000, headers=headers, timeout=10
    )
    assert resp.status_code == 401
    assert served.counting.read == 0


def test_the_limit_is_a_setting(tmp_path: Path, example_plan: Plan) -> None:
    settings = hardening_settings(tmp_path, max_body_bytes=2048)
    with serve(settings, example_plan) as s:
        resp = requests.post(s.url + "/subscribe", data={"name": "n" * 4096}, timeout=10)
        assert resp.status_code == 413
