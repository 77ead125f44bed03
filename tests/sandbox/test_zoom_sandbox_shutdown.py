"""The sandbox stops at once: test teardowns used to wait for its 0.5 s poll interval."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest
import requests

from session_bot.sandbox.zoom import Fault, ZoomSandbox

# Far below the old poll interval (stop took ~0.48 s), far above a loaded machine's ~1 ms.
PROMPT = 0.25


@pytest.fixture
def http() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


def timed_stop(sb: ZoomSandbox) -> float:
    t0 = time.perf_counter()
    sb.stop()
    return time.perf_counter() - t0


def get_user(sb: ZoomSandbox | str, http: requests.Session) -> requests.Response:
    api_url = sb if isinstance(sb, str) else sb.api_url
    return http.get(f"{api_url}/users/me", timeout=5)


def test_idle_sandbox_stops_promptly() -> None:
    sb = ZoomSandbox().start()
    time.sleep(0.05)
    assert timed_stop(sb) < PROMPT


def test_stop_with_a_kept_alive_connection_is_prompt(http: requests.Session) -> None:
    sb = ZoomSandbox().start()
    api_url = sb.api_url
    assert get_user(api_url, http).status_code == 401  # the connection stays pooled
    assert timed_stop(sb) < PROMPT
    with pytest.raises(requests.ConnectionError):
        get_user(api_url, http)


def test_stop_cuts_a_slow_answer_short(http: requests.Session) -> None:
    sb = ZoomSandbox().start()
    sb.inject(Fault("slow", delay=30))
    errors: list[Exception] = []

    def call() -> None:
        try:
            get_user(sb, http)
        except requests.RequestException as exc:
            errors.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    for _ in range(500):
        if sb.requests:
            break
        time.sleep(0.01)
    assert timed_stop(sb) < PROMPT
    caller.join(timeout=5)
    assert not caller.is_alive()
    assert len(errors) == 1


def test_restart_after_stop_serves_again(http: requests.Session) -> None:
    sb = ZoomSandbox()
    for _ in range(3):
        with sb:
            assert get_user(sb, http).status_code == 401
        http.close()
    assert sb.count("GET", "/v2/users/me") == 3
