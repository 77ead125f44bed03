"""The Maildir outbox: the embedded default when no SMTP server is configured."""

from __future__ import annotations

import mailbox
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

from session_bot.app.ports.mail import SendResult
from session_bot.core.errors import MailError


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
        # mailbox.Maildir names files with a class-wide counter: one writer at a time.
        self._lock = threading.Lock()

    def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        # Return-Path/Delivered-To as a local delivery agent would add them.
        envelope = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode()
        try:
            with self._lock:
                key = self._box.add(envelope + message)
        except (OSError, mailbox.Error) as exc:
            # A folder that cannot be written (read-only, full) is an outbox that cannot be used,
            # as a mail server that cannot be reached: the run ends saying so, nothing is lost.
            reason = exc.strerror if isinstance(exc, OSError) else str(exc)
            raise MailError(
                f"cannot write to the Maildir outbox {self.path} ({reason}); give session-bot's "
                "user write access or set SESSION_BOT_OUTBOX to a writable directory"
            ) from None
        return SendResult("sent", 250, f"written to outbox as {key}")

    def send_many(self, sender: str, messages: Iterable[tuple[str, bytes]]) -> Iterator[SendResult]:
        for recipient, message in messages:
            yield self.send(sender, recipient, message)

    def check(self) -> None:
        probe = self.path / "tmp" / ".session-bot-check"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise MailError(
                f"cannot write to the Maildir outbox {self.path} ({exc.strerror}); set "
                "SESSION_BOT_OUTBOX to a writable directory"
            ) from None

    def clone(self) -> MaildirTransport:
        return self  # a local folder gains nothing from more "connections"

    def close(self) -> None:
        pass
