"""Issue 14, finding 3: X-Forwarded-For picks neither the rate-limit bucket nor the stored consent
IP unless the connecting peer is a proxy named in SESSION_BOT_TRUSTED_PROXIES."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
import requests

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.mail import MaildirTransport
from session_bot.app.addresses import email_key
from session_bot.app.double_opt_in import RateLimits
from session_bot.core.plan import Plan
from session_bot.web.client_address import forwarded_client
from session_bot.web.deps import WebContext
from tests.conftest import SEED_INVITATION_AT
from tests.support.settings import SECRET_KEY
from tests.support.waiting import wait_for
from tests.web.hardening_support import Served, hardening_settings, serve

PER_CLIENT = RateLimits().per_client
TRIES = PER_CLIENT + 5


def _rotating_subscribes(url: str) -> list[int]:
    statuses = []
    for i in range(TRIES):
        resp = requests.post(
            url + "/subscribe",
            data={"email": f"visitor{i}@example.org"},
            headers={"X-Forwarded-For": f"198.51.100.{i + 1}"},
            timeout=10,
        )
        statuses.append(resp.status_code)
    return statuses


def _request_ip(served: Served, i: int) -> str | None:
    row = served.store.subscribers.get(email_key(f"visitor{i}@example.org"))
    assert row is not None
    return row["request_ip"]  # type: ignore[no-any-return]


def test_forwarded_for_from_an_untrusted_peer_is_ignored(
    tmp_path: Path, example_plan: Plan
) -> None:
    with serve(hardening_settings(tmp_path), example_plan) as s:
        statuses = _rotating_subscribes(s.url)
        assert statuses == [200] * PER_CLIENT + [429] * (TRIES - PER_CLIENT)
        assert _request_ip(s, 0) == "127.0.0.1"


def test_forwarded_for_from_a_trusted_proxy_names_the_client(
    tmp_path: Path, example_plan: Plan
) -> None:
    settings = hardening_settings(tmp_path, trusted_proxies="127.0.0.1")
    with serve(settings, example_plan) as s:
        assert _rotating_subscribes(s.url) == [200] * TRIES
        assert _request_ip(s, 0) == "198.51.100.1"
        # One visitor behind the proxy is still limited on its own.
        same = [
            requests.post(
                s.url + "/subscribe",
                data={"email": f"same{i}@example.org"},
                headers={"X-Forwarded-For": "203.0.113.9"},
                timeout=10,
            ).status_code
            for i in range(TRIES)
        ]
        assert same == [200] * PER_CLIENT + [429] * (TRIES - PER_CLIENT)


PROXIES = ["10.0.0.0/8", "127.0.0.1/32"]


@pytest.mark.parametrize(
    ("peer", "header", "proxies", "client"),
    [
        ("127.0.0.1", ["1.2.3.4"], [], "127.0.0.1"),  # no setting: the header means nothing
        ("192.0.2.7", ["1.2.3.4"], PROXIES, "192.0.2.7"),  # the peer is no proxy of ours
        ("127.0.0.1", ["1.2.3.4"], PROXIES, "1.2.3.4"),
        # The client wrote the left part itself; our proxies appended the right part.
        ("127.0.0.1", ["6.6.6.6, 1.2.3.4, 10.1.1.1"], PROXIES, "1.2.3.4"),
        ("127.0.0.1", ["6.6.6.6", "1.2.3.4, 10.1.1.1"], PROXIES, "1.2.3.4"),
        ("127.0.0.1", ["1.2.3.4:5678"], PROXIES, "1.2.3.4"),
        ("127.0.0.1", ["[2001:db8::1]:443"], PROXIES, "2001:db8::1"),
        ("127.0.0.1", ["10.2.2.2, 10.1.1.1"], PROXIES, "10.2.2.2"),
        ("127.0.0.1", ["1.2.3.4, not-an-ip"], PROXIES, "127.0.0.1"),
        ("127.0.0.1", [], PROXIES, "127.0.0.1"),
        ("::ffff:127.0.0.1", ["1.2.3.4"], PROXIES, "1.2.3.4"),
        (None, ["1.2.3.4"], PROXIES, None),
    ],
)
def test_forwarded_client(
    peer: str | None, header: list[str], proxies: list[str], client: str | None
) -> None:
    assert forwarded_client(peer, header, proxies) == client


def test_the_daemons_web_server_does_not_rewrite_the_peer(
    tmp_path: Path, example_plan: Plan
) -> None:
    from session_bot.daemon.lifecycle import WebThread

    settings = hardening_settings(tmp_path)
    store = wiring.open_store(settings)
    ctx = WebContext(
        settings=settings, store=store, clock=ManualClock(SEED_INVITATION_AT),
        plan=lambda: example_plan, transport=lambda: MaildirTransport(settings.resolved_outbox),
        secret_key=SECRET_KEY,
    )  # fmt: skip
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    web = WebThread()
    web.start(ctx, sock, lambda: {})
    try:
        wait_for(lambda: _answers(web.url), "the daemon's web server")
        statuses = _rotating_subscribes(web.url)
    finally:
        web.stop()
        sock.close()
        store.close()
    assert statuses == [200] * PER_CLIENT + [429] * (TRIES - PER_CLIENT)


def _answers(url: str) -> bool:
    try:
        return requests.get(url + "/subscribe", timeout=1).status_code == 200
    except requests.ConnectionError:
        return False
