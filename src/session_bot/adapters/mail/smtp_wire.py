"""Low-level pieces of the SMTP hot path: the socket's timeout and reading a reply."""

from __future__ import annotations

import smtplib
import socket
import struct
import sys

_MAXLINE = smtplib._MAXLINE  # type: ignore[attr-defined]


def read_reply(conn: smtplib.SMTP) -> tuple[int, bytes]:
    """``conn.getreply()`` without its per-line debugging: the same reply, the same errors.
    Four replies a message, on the delivery hot path."""
    file = conn.file
    if file is None:
        return conn.getreply()
    lines: list[bytes] = []
    while True:
        try:
            line = file.readline(_MAXLINE + 1)
        except OSError as exc:
            conn.close()
            raise smtplib.SMTPServerDisconnected(f"Connection unexpectedly closed: {exc}") from None
        if not line:
            conn.close()
            raise smtplib.SMTPServerDisconnected("Connection unexpectedly closed")
        if len(line) > _MAXLINE:
            conn.close()
            raise smtplib.SMTPResponseException(500, "Line too long.")
        lines.append(line[4:].strip(b" \t\r\n"))
        if line[3:4] != b"-":
            break
    try:
        code = int(line[:3])
    except ValueError:
        code = -1
    return code, b"\n".join(lines)


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
