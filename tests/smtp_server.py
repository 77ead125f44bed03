"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: collects what it receives."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class CollectingHandler:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Optional hook: return an SMTP reply string (e.g. "451 4.7.1 try later") to refuse a DATA.
    on_data: Any = None

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.on_data is not None:
            reply = self.on_data(envelope)
            if reply:
                return str(reply)
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        with self.lock:
            self.messages.append(
                Received(str(envelope.mail_from), [str(r) for r in envelope.rcpt_tos], data)
            )
        return "250 2.0.0 OK queued"

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class SmtpServer:
    """``with SmtpServer() as srv: srv.port, srv.handler.messages``"""

    def __init__(self, handler: CollectingHandler | None = None) -> None:
        self.handler = handler or CollectingHandler()
        # aiosmtpd's Controller cannot listen on port 0 (it probes the port it was given).
        self._port = free_port()
        self._controller = Controller(self.handler, hostname="127.0.0.1", port=self._port)

    def __enter__(self) -> SmtpServer:
        self._controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._controller.stop()

    @property
    def host(self) -> str:
        return "127.0.0.1"

    @property
    def port(self) -> int:
        return self._port
