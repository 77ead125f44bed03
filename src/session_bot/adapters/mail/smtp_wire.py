"""Low-level pieces of the SMTP transport: the socket's timeout, reading a reply, the TLS context."""

from __future__ import annotations

import contextlib
import ipaddress
import smtplib
import socket
import ssl
import struct
import sys
from typing import Any

_MAXLINE = smtplib._MAXLINE  # type: ignore[attr-defined]


def read_reply(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """``conn.getreply()`` without its per-line debugging: the same reply, the same errors.
    Four replies a message, on the delivery hot path."""
    file = conn.file
    if file is None:
        return conn.getreply()
    lines: list[bytes] = []
    while True:
        line = _line(conn, file)
        if line[3:4] == b"-":
            lines.append(line[4:].strip(b" \t\r\n"))
            continue
        if not lines and line[:3].isdigit():  # one line: nearly every reply
            return int(line[:3]), line[4:].strip(b" \t\r\n")
        lines.append(line[4:].strip(b" \t\r\n"))
        break
    try:
        code = int(line[:3])
    except ValueError:
        code = -1
    return code, b"\n".join(lines)


def _line(conn: smtplib.SMTP, file: Any) -> bytes:
    try:
        line: bytes = file.readline(_MAXLINE + 1)
    except OSError as exc:
        conn.close()
        raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
    if not line:
        conn.close()
        raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
    if len(line) > _MAXLINE:
        conn.close()
        raise smtplib.SMTPResponseException(500, "Line too long.")
    return line


def is_local_host(host: str) -> bool:
    """Whether ``host`` names this machine (a loopback address, ``localhost``, this host's own
    name): a mail server there shares our cores. Written addresses only, no DNS lookup."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    with contextlib.suppress(ValueError):
        return ipaddress.ip_address(name).is_loopback
    return bool(name) and name == socket.gethostname().lower()


def kernel_timeouts(sock: socket.socket | None, seconds: float) -> None:
    """Blocking I/O with the timeout kept by the kernel (SO_RCVTIMEO/SO_SNDTIMEO): Python's own
    timeout polls the socket before every send and receive, two more system calls per message.
    A server that stops answering still ends the wait after ``seconds``, as an ``OSError``."""
    if sock is None or not sys.platform.startswith("linux"):
        return
    whole = int(seconds)
    tv = struct.pack("ll", whole, int((seconds - whole) * 1_000_000))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, tv)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDTIMEO, tv)
    sock.settimeout(None)


class TlsContext:
    """The TLS context of a transport and its clones, made at the first TLS connection: loading
    the CA certificates costs ≈ 20 ms, once per connection before (and for plain SMTP too)."""

    def __init__(self, given: ssl.SSLContext | None) -> None:
        self._context = given

    def get(self) -> ssl.SSLContext:
        if self._context is None:
            self._context = ssl.create_default_context()
        return self._context
