"""The daemon's web socket (``daemon.lifecycle.listen_socket``) listens as soon as it is bound:
the log says "web: listening on …" before the web thread accepts, and a visitor who comes in
between waits in the backlog instead of being refused."""

from __future__ import annotations

import socket

import pytest

from session_bot.core.errors import ConfigError
from session_bot.daemon.lifecycle import listen_socket


def test_a_visitor_before_the_web_thread_is_up_waits_instead_of_being_refused() -> None:
    server = listen_socket("127.0.0.1", 0)
    try:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2) as visitor:
            visitor.sendall(b"GET / HTTP/1.0\r\n\r\n")
            accepted, _ = server.accept()  # what the web thread does once it runs
            with accepted:
                assert accepted.recv(64).startswith(b"GET / HTTP/1.0")
    finally:
        server.close()


def test_a_busy_port_names_the_setting() -> None:
    taken = listen_socket("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="pick another port with `serve --port`"):
            listen_socket("127.0.0.1", taken.getsockname()[1])
    finally:
        taken.close()
