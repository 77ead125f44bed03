"""Mail transports: SMTP and a Maildir outbox, behind one small interface.

Only this module speaks SMTP. It sends bytes it is given; rendering happens elsewhere.
"""

from __future__ import annotations

import contextlib
import mailbox
import smtplib
import ssl
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from session_bot.errors import MailError

Outcome = Literal["sent", "temporary", "permanent"]


@dataclass(frozen=True)
class SendResult:
    outcome: Outcome
    code: int | None
    response: str


class Transport(Protocol):
    """Sends one finished message to one recipient."""

    description: str

    def send(self, sender: str, recipient: str, message: bytes) -> SendResult: ...

    def close(self) -> None: ...


class MaildirTransport:
    """Writes each message into a Maildir (any mail client opens it): the embedded default."""

    def __init__(self, path: Path) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            self._box = mailbox.Maildir(str(path), create=True)
            # Maildir(create=True) skips the subfolders when the folder itself already exists.
            for sub in ("tmp", "new", "cur"):
                (path / sub).mkdir(exist_ok=True)
        except OSError as exc:
            raise MailError(
                f"cannot use the Maildir outbox {path} ({exc.strerror}); set SESSION_BOT_OUTBOX to a "
                "writable directory"
            ) from None
        self.path = path
        self.description = f"Maildir outbox {path}"

    def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        # Return-Path/Delivered-To as a local delivery agent would add them.
        envelope = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()
        try:
            key = self._box.add(envelope + message)
        except OSError as exc:
            return SendResult("temporary", None, f"outbox write failed: {exc.strerror}")
        return SendResult("sent", 250, f"written to outbox as {key}")

    def close(self) -> None:
        pass


def classify(code: int) -> Outcome:
    if 200 <= code < 300:
        return "sent"
    if 400 <= code < 500:
        return "temporary"
    return "permanent"


class SmtpTransport:
    """One SMTP connection, opened lazily and reused; reconnects after a drop."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: Literal["starttls", "ssl", "none"] = "starttls",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self._user, self._password = user, password
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._conn: smtplib.SMTP | None = None
        self.description = f"SMTP {host}:{port} ({tls})"

    def _connect(self) -> smtplib.SMTP:
        ctx = ssl.create_default_context()
        try:
            conn: smtplib.SMTP
            if self.tls == "ssl":
                conn = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self._timeout,
                    context=ctx,
                    local_hostname=self._local_hostname,
                )
            else:
                conn = smtplib.SMTP(
                    self.host, self.port, timeout=self._timeout, local_hostname=self._local_hostname
                )
                if self.tls == "starttls":
                    conn.starttls(context=ctx)
            if self._user:
                conn.login(self._user, self._password or "")
        except smtplib.SMTPAuthenticationError:
            raise MailError(
                f"the SMTP server {self.host} refused the login for SESSION_BOT_SMTP_USER; check "
                "SESSION_BOT_SMTP_USER and SESSION_BOT_SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPNotSupportedError:
            raise MailError(
                f"the SMTP server {self.host}:{self.port} does not offer STARTTLS; set "
                "SESSION_BOT_SMTP_TLS=ssl (port 465) or, only on a trusted network, none"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            raise MailError(
                f"cannot connect to SMTP server {self.host}:{self.port} ({exc}); check "
                "SESSION_BOT_SMTP_HOST/_PORT/_TLS"
            ) from None
        return conn

    def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        if self._conn is None:
            self._conn = self._connect()
        try:
            refused = self._conn.sendmail(sender, [recipient], message)
        except smtplib.SMTPRecipientsRefused as exc:
            code, msg = exc.recipients[recipient]
            return SendResult(classify(code), code, msg.decode(errors="replace"))
        except smtplib.SMTPResponseException as exc:
            if exc.smtp_code == 421:
                self._drop()
            msg = (
                exc.smtp_error.decode(errors="replace")
                if isinstance(exc.smtp_error, bytes)
                else str(exc.smtp_error)
            )
            return SendResult(classify(exc.smtp_code), exc.smtp_code, msg)
        except (TimeoutError, smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            return SendResult("temporary", None, f"connection lost: {exc}")
        if refused:
            code, msg = refused[recipient]
            return SendResult(classify(code), code, msg.decode(errors="replace"))
        return SendResult("sent", 250, "accepted")

    def _drop(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(OSError):
                self._conn.close()
        self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
        self._conn = None
