"""A real SMTP server (aiosmtpd) on 127.0.0.1 for tests: collects what it receives.

Faults can be injected per stage (MAIL, RCPT, DATA): an answer such as ``451 4.7.1 try later`` or
``550 5.1.1 no such mailbox`` for chosen recipients, the n-th message or every connection's n-th
message, or a dropped connection (after the data, with or without keeping the message: the
client sees no answer either way). Optional STARTTLS / implicit TLS and AUTH.
"""

from __future__ import annotations

import asyncio
import email
import email.policy
import socket
import ssl
import subprocess
import threading
import time
import warnings
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Literal

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session


@dataclass
class Received:
    mail_from: str
    rcpt_tos: list[str]
    data: bytes
    at: float = 0.0  # time.time() when the server took the message (before its 250)
    connection: int = 0

    def message(self) -> EmailMessage:
        msg = email.message_from_bytes(self.data, policy=email.policy.default)
        assert isinstance(msg, EmailMessage)
        return msg


@dataclass
class Fault:
    """One injected behaviour; applies to matching transactions, ``times`` times (None: always).

    ``recipient``: only for this address. ``nth``: only the n-th message the server sees (counted
    at MAIL, 1-based). ``from_nth_on_connection``: every message from the n-th on each connection
    (a relay that closes after n-1 messages). ``drop``: close the connection without answering;
    at the DATA stage ``keep`` says whether the server still keeps the message (its 250 is lost).
    """

    stage: Literal["mail", "rcpt", "data"]
    reply: str = ""
    recipient: str | None = None
    nth: int | None = None
    from_nth_on_connection: int | None = None
    drop: bool = False
    keep: bool = False
    close_after: bool = False  # close the connection after sending ``reply`` (e.g. 421)
    times: int | None = None
    hits: int = 0


@dataclass
class CollectingHandler:
    messages: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    # Optional hook: return an SMTP reply string (e.g. "451 4.7.1 try later") to refuse a DATA.
    on_data: Any = None
    faults: list[Fault] = field(default_factory=list)
    delay: float = 0.0  # seconds the server takes per message (to catch a sender mid-mailing)
    pipelining: bool = False  # advertise PIPELINING (RFC 2920): clients may batch commands
    connections: int = 0  # connections that carried at least one MAIL
    transactions: int = 0  # MAIL commands seen

    def add_fault(self, fault: Fault) -> Fault:
        with self.lock:
            self.faults.append(fault)
        return fault

    def _fault(self, stage: str, session: Session, rcpt: str | None = None) -> Fault | None:
        with self.lock:
            for f in self.faults:
                if f.stage != stage or (f.times is not None and f.hits >= f.times):
                    continue
                if f.recipient is not None and f.recipient != rcpt:
                    continue
                if f.nth is not None and f.nth != getattr(session, "txn_number", 0):
                    continue
                n_on_conn = getattr(session, "txn_on_connection", 0)
                if f.from_nth_on_connection is not None and n_on_conn < f.from_nth_on_connection:
                    continue
                f.hits += 1
                return f
        return None

    def _apply(self, fault: Fault, server: SMTP, session: Session) -> str:
        if fault.drop:
            assert server.transport is not None
            server.transport.close()
            return "250 2.0.0 never seen by the client"
        if fault.close_after:
            session.close_after_reply = True  # type: ignore[attr-defined]
        return fault.reply

    async def handle_EHLO(
        self,
        server: SMTP,
        session: Session,
        envelope: Envelope,
        hostname: str,
        responses: list[str],
    ) -> list[str]:
        session.host_name = hostname
        if self.pipelining:
            # aiosmtpd reads commands one by one from its buffer, so batched ones just work.
            responses.insert(-1, "250-PIPELINING")
        return responses

    async def handle_MAIL(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        with self.lock:
            self.transactions += 1
            session.txn_number = self.transactions  # type: ignore[attr-defined]
            if not getattr(session, "connection_number", 0):
                self.connections += 1
                session.connection_number = self.connections  # type: ignore[attr-defined]
        session.txn_on_connection = getattr(session, "txn_on_connection", 0) + 1  # type: ignore[attr-defined]
        fault = self._fault("mail", session)
        if fault is not None:
            return self._apply(fault, server, session)
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 2.1.0 OK"

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        fault = self._fault("rcpt", session, address)
        if fault is not None:
            return self._apply(fault, server, session)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        if self.on_data is not None:
            reply = self.on_data(envelope)
            if reply:
                return str(reply)
        rcpt = envelope.rcpt_tos[0] if envelope.rcpt_tos else None
        fault = self._fault("data", session, rcpt)
        if fault is not None and not (fault.drop and fault.keep):
            return self._apply(fault, server, session)
        self._keep(session, envelope)
        if fault is not None:
            return self._apply(fault, server, session)
        return "250 2.0.0 OK queued"

    def _keep(self, session: Session, envelope: Envelope) -> None:
        data = envelope.original_content or envelope.content
        assert isinstance(data, bytes)
        with self.lock:
            self.messages.append(
                Received(
                    str(envelope.mail_from),
                    [str(r) for r in envelope.rcpt_tos],
                    data,
                    time.time(),
                    getattr(session, "connection_number", 0),
                )
            )

    def to(self, address: str) -> list[Received]:
        with self.lock:
            return [m for m in self.messages if address in m.rcpt_tos]

    def copies(self) -> dict[str, int]:
        """Recipient address → how many messages the server kept for it."""
        out: dict[str, int] = {}
        with self.lock:
            for m in self.messages:
                for r in m.rcpt_tos:
                    out[r] = out.get(r, 0) + 1
        return out


class _FaultySMTP(SMTP):
    async def push(self, status: Any) -> None:
        await super().push(status)
        if self.session is not None and getattr(self.session, "close_after_reply", False):
            assert self.transport is not None
            self.transport.close()


class _Controller(Controller):
    def factory(self) -> SMTP:
        with warnings.catch_warnings():
            # "AUTH without requiring TLS": aiosmtpd cannot see that port-465 style is TLS.
            warnings.simplefilter("ignore", UserWarning)
            return _FaultySMTP(self.handler, **self.SMTP_kwargs)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 (openssl); returns (cert.pem, key.pem)."""
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return cert, key


class SmtpServer:
    """``with SmtpServer() as srv: srv.port, srv.handler.messages``

    ``tls``: a (cert, key) pair; with ``implicit_tls`` the server speaks TLS from the first byte
    (port 465 style), otherwise it offers STARTTLS. ``login``: (user, password) required for AUTH.
    """

    def __init__(
        self,
        handler: CollectingHandler | None = None,
        *,
        tls: tuple[Path, Path] | None = None,
        implicit_tls: bool = False,
        login: tuple[str, str] | None = None,
    ) -> None:
        self.handler = handler or CollectingHandler()
        # aiosmtpd's Controller cannot listen on port 0 (it probes the port it was given).
        self._port = free_port()
        kwargs: dict[str, Any] = {}
        context: ssl.SSLContext | None = None
        if tls is not None:
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(str(tls[0]), str(tls[1]))
            if implicit_tls:
                kwargs["ssl_context"] = context
            else:
                kwargs["tls_context"] = context
                kwargs["require_starttls"] = True
        if login is not None:
            kwargs["authenticator"] = _authenticator(login)
            kwargs["auth_required"] = True
            # aiosmtpd only knows about STARTTLS; a port-465 connection is TLS from the start.
            kwargs["auth_require_tls"] = tls is not None and not implicit_tls
        self._controller = _Controller(
            self.handler, hostname="127.0.0.1", port=self._port, **kwargs
        )

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


def _authenticator(login: tuple[str, str]) -> Any:
    def check(
        server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and (
                data.login.decode(),
                data.password.decode(),
            )
            == login
        )
        return AuthResult(success=ok, handled=False)

    return check
