"""Issue 14, finding 4: when the database cannot be used, the subscriber pages answer 503 with
Retry-After and a short page, the one-click POST a 503 its mail client retries, and the log gets
one line — never a traceback carrying a subscriber's address from the SQL parameters."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from session_bot.app import subscriptions as subs
from session_bot.core.plan import Plan
from session_bot.settings import Settings
from tests.support.settings import SECRET_KEY
from tests.web.hardening_support import (
    Served,
    event_body,
    hardening_settings,
    serve,
    signed_headers,
)

PENDING = "pending.person@example.org"
CONFIRMED = "confirmed.person@example.org"
NEW = "new.person@example.org"
GERMAN = (
    "Gerade ist ein technisches Problem aufgetreten. Ihre Anfrage wurde nicht gespeichert. "
    "Bitte versuchen Sie es in einigen Minuten noch einmal."
)
ENGLISH = "A technical problem has just occurred. Your request was not saved."


@dataclass
class Broken:
    served: Served
    confirm_token: str
    unsubscribe_token: str


def _break(settings: Settings) -> None:
    """Another process ruins the database under the running app (as a bad restore would)."""
    path = settings.resolved_database_url.removeprefix("sqlite:///")
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE subscribers")
        db.execute("DROP TABLE sessions")


@pytest.fixture
def broken(
    tmp_path: Path, example_plan: Plan, caplog: pytest.LogCaptureFixture
) -> Iterator[Broken]:
    settings = hardening_settings(tmp_path)
    with serve(settings, example_plan) as s:
        proof = subs.RequestProof(None, None, None)
        pending = subs.request_subscription(
            s.store, SECRET_KEY, address=PENDING, name=None, language="de",
            consent_version="de-test", proof=proof, now=s.clock(),
        )  # fmt: skip
        assert pending.confirm_token is not None
        sid = s.store.subscribers.add(
            CONFIRMED, name=None, language="de", status="confirmed", now=s.clock()
        )
        _break(settings)
        caplog.set_level(logging.DEBUG)
        caplog.clear()
        yield Broken(s, pending.confirm_token, subs.unsubscribe_token(SECRET_KEY, int(sid)))


def _no_address_logged(caplog: pytest.LogCaptureFixture) -> None:
    text = caplog.text.lower()
    for address in (PENDING, CONFIRMED, NEW):
        assert address not in text and address.split("@")[0] not in text, caplog.text
    assert "Traceback" not in caplog.text
    failures = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(failures) == 1, [r.getMessage() for r in failures]
    assert "503" in failures[0].getMessage()


def _ours(caplog: pytest.LogCaptureFixture) -> str:
    # Access lines (uvicorn's, the test client's) show paths by design; our lines must not.
    return "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("session_bot"))


def _assert_page(resp: requests.Response, text: str) -> None:
    assert resp.status_code == 503, resp.text
    assert int(resp.headers["Retry-After"]) > 0
    assert resp.headers["content-type"].startswith("text/html")
    assert text in resp.text
    assert "Content-Security-Policy" in resp.headers  # the pages' own headers and style


def test_subscribe_form_post(broken: Broken, caplog: pytest.LogCaptureFixture) -> None:
    resp = requests.post(broken.served.url + "/subscribe", data={"email": NEW}, timeout=10)
    _assert_page(resp, GERMAN)
    _no_address_logged(caplog)


def test_subscribe_form_post_in_english(broken: Broken, caplog: pytest.LogCaptureFixture) -> None:
    resp = requests.post(broken.served.url + "/subscribe?lang=en", data={"email": NEW}, timeout=10)
    _assert_page(resp, ENGLISH)
    assert resp.headers["Content-Language"] == "en"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_confirm(broken: Broken, caplog: pytest.LogCaptureFixture, method: str) -> None:
    resp = requests.request(
        method, f"{broken.served.url}/confirm/{broken.confirm_token}", timeout=10
    )
    _assert_page(resp, GERMAN)
    _no_address_logged(caplog)
    assert broken.confirm_token not in _ours(caplog)  # a token is a key to a subscription


def test_one_click_unsubscribe(broken: Broken, caplog: pytest.LogCaptureFixture) -> None:
    resp = requests.post(
        f"{broken.served.url}/unsubscribe/{broken.unsubscribe_token}",
        data={"List-Unsubscribe": "One-Click"},
        timeout=10,
    )
    _assert_page(resp, GERMAN)
    _no_address_logged(caplog)
    assert broken.unsubscribe_token not in _ours(caplog)


def test_unsubscribe_page(broken: Broken, caplog: pytest.LogCaptureFixture) -> None:
    resp = requests.get(
        f"{broken.served.url}/unsubscribe/{broken.unsubscribe_token}",
        headers={"Accept-Language": "en-GB,en;q=0.9"},
        timeout=10,
    )
    _assert_page(resp, ENGLISH)


def test_webhook_answers_503_for_zoom_to_retry(
    broken: Broken, caplog: pytest.LogCaptureFixture
) -> None:
    body = event_body({"event": "meeting.deleted", "payload": {"object": {"id": 66547677759}}})
    resp = requests.post(
        broken.served.url + "/zoom/webhook",
        data=body,
        headers=signed_headers(broken.served.clock, body),
        timeout=10,
    )
    assert resp.status_code == 503 and "Retry-After" in resp.headers
    assert resp.json()["ok"] is False
    assert "Traceback" not in caplog.text
