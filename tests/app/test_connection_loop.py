"""One thread driving several connections (``app.connection_loop``), on real socket pairs."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from session_bot.app import connection_loop
from session_bot.app.connection_loop import Sleep, Work, drive
from session_bot.app.ports.mail import Awaiting


@pytest.fixture
def pairs() -> Iterator[list[tuple[socket.socket, socket.socket]]]:
    made = [socket.socketpair() for _ in range(3)]
    yield made
    for a, b in made:
        a.close()
        b.close()


def reader(name: str, sock: socket.socket, log: list[str], rounds: int = 1) -> Work:
    """A connection: 'sends', pauses for the answer, then reads it (blocking, as SMTP does)."""
    for _ in range(rounds):
        yield Awaiting(sock.fileno())
        log.append(f"{name}:{sock.recv(16).decode()}")


def test_the_connection_whose_answer_came_first_goes_on_first(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    log: list[str] = []
    (a, a_server), (b, b_server), (c, c_server) = pairs
    works = [reader("a", a, log), reader("b", b, log), reader("c", c, log)]

    def answer() -> None:
        for server, text in ((c_server, "3"), (a_server, "1"), (b_server, "2")):
            time.sleep(0.05)
            server.sendall(text.encode())

    t = threading.Thread(target=answer)
    t.start()
    drive(works, threading.Event())
    t.join()
    # In the order the answers arrived, not the order the connections were started.
    assert log == ["c:3", "a:1", "b:2"]


def test_a_silent_connection_does_not_hold_the_others(
    pairs: list[tuple[socket.socket, socket.socket]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(connection_loop, "STALL", 0.5)
    log: list[str] = []
    (quiet, _), (busy, busy_server), _ = pairs
    quiet.settimeout(3.0)  # the transport's own timeout ends the silent one's read

    def answer() -> None:
        for i in range(5):
            busy_server.sendall(str(i).encode())
            time.sleep(0.02)

    t = threading.Thread(target=answer)
    t.start()
    started = time.monotonic()

    def silent() -> Work:
        yield Awaiting(quiet.fileno())
        try:
            quiet.recv(16)
        except TimeoutError:
            log.append(f"quiet: timed out after {time.monotonic() - started:.1f} s")

    drive([silent(), reader("busy", busy, log, rounds=5)], threading.Event())
    t.join()
    # Every answer of the busy connection was taken before the silent one was given up on.
    assert log[:5] == ["busy:0", "busy:1", "busy:2", "busy:3", "busy:4"]
    assert log[5].startswith("quiet: timed out")


def test_a_sleeping_connection_wakes_when_told_to_stop() -> None:
    stop = threading.Event()
    woke: list[float] = []

    def sleeper() -> Work:
        yield Sleep(60.0)
        woke.append(time.monotonic())

    threading.Timer(0.2, stop.set).start()
    started = time.monotonic()
    drive([sleeper()], stop)
    assert woke and woke[0] - started < 5.0


def test_sleeps_end_in_order_of_their_length() -> None:
    order: list[str] = []

    def nap(name: str, seconds: float) -> Work:
        yield Sleep(seconds)
        order.append(name)

    drive([nap("long", 0.3), nap("short", 0.05), nap("none", 0.0)], threading.Event())
    assert order == ["none", "short", "long"]


def test_a_zero_sleep_lets_the_waiting_connections_read_their_answers(
    pairs: list[tuple[socket.socket, socket.socket]],
) -> None:
    log: list[str] = []
    (a, a_server), _, _ = pairs
    a_server.sendall(b"ok")
    stop = threading.Event()

    def yielder() -> Work:
        # Gives way until the other connection has read its answer; gives up after 2 s.
        deadline = time.monotonic() + 2.0
        while not log and time.monotonic() < deadline:
            yield Sleep(0)
        log.append("yielder:done")

    drive([reader("a", a, log), yielder()], stop)
    assert log == ["a:ok", "yielder:done"]
