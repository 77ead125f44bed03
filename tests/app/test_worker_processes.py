"""How many processes a large mailing may use: one per core, one fewer when the mail server runs
on this host (it needs a core for every message we send), and the admin's number when set."""

from __future__ import annotations

import socket

import pytest

from session_bot.adapters.mail.smtp_wire import is_local_host
from session_bot.app.delivery_policy import worker_processes


@pytest.mark.parametrize(
    ("configured", "cores", "local", "expected"),
    [
        (0, 2, False, 2),  # a provider elsewhere: every core is ours
        (0, 2, True, 1),  # a local mail server keeps a core
        (0, 8, True, 7),
        (0, 1, True, 1),  # never none
        (3, 2, True, 3),  # SESSION_BOT_DELIVERY_WORKERS decides when set
        (1, 8, False, 1),
    ],
)
def test_worker_processes(configured: int, cores: int, local: bool, expected: int) -> None:
    assert worker_processes(configured, cores, local_server=local) == expected


@pytest.mark.parametrize(
    "host",
    ["127.0.0.1", "127.0.1.1", "::1", "[::1]", "localhost", "LocalHost.", "mail.localhost"],
)
def test_a_mail_server_on_this_host_is_recognised(host: str) -> None:
    assert is_local_host(host)


def test_this_hosts_own_name_is_local() -> None:
    assert is_local_host(socket.gethostname().upper())


@pytest.mark.parametrize(
    "host", ["smtp.example.org", "192.0.2.10", "2001:db8::1", "localhost.example.org", ""]
)
def test_a_mail_server_elsewhere_is_not_local(host: str) -> None:
    assert not is_local_host(host)
