"""The SMTP transport: TLS, AUTH, reconnects and PIPELINING on the delivery hot path.

This is the one place where smtplib, socket and ssl exceptions become our ``MailError`` (the
transport cannot be used) or a ``SendResult`` (this message's outcome; see ``transport``).

Reading order: the transport opens a connection (``_connect``), then ``send_many`` runs one
``_transaction`` per message — envelope, refusal check, data — and retries once on a fresh
connection when a reused one turns out closed before anything was taken.
"""

from __future__ import annotations

import contextlib
import re
import smtplib
import ssl
from collections.abc import Generator, Iterable, Iterator
from typing import Literal

from session_bot.adapters.mail.smtp_wire import TlsContext, kernel_timeouts, read_reply
from session_bot.app.ports.mail import Awaiting, NoLeadingDots, Outcome, SendResult, dotted
from session_bot.core.errors import MailError

TlsMode = Literal["starttls", "ssl", "none"]

_LEADING_DOT = re.compile(rb"(?m)^\.")
_UNSAFE_PATH = re.compile(r"[\x00-\x20<>\x7f]")
_PRIMED = (b"", b"", b"")  # MAIL, RCPT, DATA already sent: three answers to read


def classify(code: int) -> Outcome:
    if 200 <= code < 300:
        return "sent"
    if 400 <= code < 500:
        return "temporary"
    return "permanent"


class _NotTaken(Exception):
    """The connection failed or is closing before the end of DATA: nothing was taken."""

    def __init__(self, code: int | None, text: str) -> None:
        super().__init__(text)
        self.code = code
        self.text = text


class SmtpTransport:
    """One SMTP connection, opened lazily and reused for every message; reconnects after a drop."""

    def __init__(
        self,
        host: str,
        port: int,
        *,
        tls: TlsMode = "starttls",
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
        local_hostname: str | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host, self.port, self.tls = host, port, tls
        self._user, self._password = user, password
        self._timeout = timeout
        self._local_hostname = local_hostname
        self._tls = TlsContext(ssl_context)
        self._conn: smtplib.SMTP | None = None
        self.description = f"SMTP {host}:{port} ({tls})"
        self.connects = 0  # connections opened so far (reconnects show up here)
        # The envelope sender found usable on this connection: checked once, not per message.
        self._sender_checked: tuple[str, smtplib.SMTP] | None = None

    def clone(self) -> SmtpTransport:
        twin = SmtpTransport(
            self.host,
            self.port,
            tls=self.tls,
            user=self._user,
            password=self._password,
            timeout=self._timeout,
            local_hostname=self._local_hostname,
        )
        twin._tls = self._tls  # one context for all: each costs ≈ 20 ms of loading CA certificates
        return twin

    def _connect(self) -> smtplib.SMTP:
        """A new, greeted (and logged-in) connection; ``MailError`` naming the setting to fix."""
        where = f"{self.host}:{self.port}"
        conn: smtplib.SMTP | None = None
        try:
            if self.tls == "ssl":
                conn = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    timeout=self._timeout,
                    context=self._tls.get(),
                    local_hostname=self._local_hostname,
                )
            else:
                conn = smtplib.SMTP(
                    self.host, self.port, timeout=self._timeout, local_hostname=self._local_hostname
                )
                if self.tls == "starttls":
                    conn.starttls(context=self._tls.get())
            if self._user:
                conn.login(self._user, self._password or "")
            conn.ehlo_or_helo_if_needed()
        except smtplib.SMTPAuthenticationError:
            _close_quietly(conn)
            raise MailError(
                f"the SMTP server {where} refused the login for SESSION_BOT_SMTP_USER; check "
                "SESSION_BOT_SMTP_USER and SESSION_BOT_SMTP_PASSWORD"
            ) from None
        except smtplib.SMTPNotSupportedError as exc:
            _close_quietly(conn)
            what = "AUTH" if self._user and "auth" in str(exc).lower() else "STARTTLS"
            fix = (
                "unset SESSION_BOT_SMTP_USER if this server needs no login, or use its submission "
                "port"
                if what == "AUTH"
                else "set SESSION_BOT_SMTP_TLS=ssl (port 465) or, only on a trusted network, none"
            )
            raise MailError(f"the SMTP server {where} does not offer {what}; {fix}") from None
        except ssl.SSLError as exc:
            _close_quietly(conn)
            raise MailError(
                f"TLS with the SMTP server {where} failed ({exc.reason or exc}); check "
                "SESSION_BOT_SMTP_TLS (starttls for port 587, ssl for 465) and the server's "
                "certificate"
            ) from None
        except (OSError, smtplib.SMTPException) as exc:
            _close_quietly(conn)
            raise MailError(
                f"cannot connect to SMTP server {where} ({_describe(exc)}); check "
                "SESSION_BOT_SMTP_HOST/_PORT/_TLS"
            ) from None
        kernel_timeouts(conn.sock, self._timeout)
        self.connects += 1
        return conn

    def check(self) -> None:
        conn = self._connect()
        with contextlib.suppress(smtplib.SMTPException, OSError):
            conn.quit()

    def send(self, sender: str, recipient: str, message: bytes) -> SendResult:
        results = self.send_many(sender, [(recipient, message)])
        try:
            return next(results)
        finally:
            results.close()

    def send_many(
        self, sender: str, messages: Iterable[tuple[str, bytes]]
    ) -> Generator[SendResult, None, None]:
        """One result per message, in order (``send_steps`` without its pauses)."""
        steps = self.send_steps(sender, messages)
        try:
            for step in steps:
                if not isinstance(step, Awaiting):
                    yield step
        finally:
            steps.close()

    def send_steps(
        self, sender: str, messages: Iterable[tuple[str, bytes]]
    ) -> Generator[SendResult | Awaiting, None, None]:
        """One result per message, in order, and an ``Awaiting`` after each message's data went
        out, before its answer is read: one thread serves several connections by moving on
        there (``app.delivery``). With PIPELINING (RFC 2920) the envelope (MAIL, RCPT, DATA)
        goes out in one write, and after the first message in the same write as the previous
        message's data: one round trip per message instead of four."""
        pending = iter(messages)
        item = next(pending, None)
        primed = False  # the envelope of ``item`` is already on the wire
        retried = False
        try:
            while item is not None:
                reused = self._conn is not None
                if self._conn is None:
                    self._conn = self._connect()
                try:
                    result, following, primed, failure = yield from self._transaction(
                        self._conn, sender, item, pending, primed
                    )
                except _NotTaken as exc:
                    self._drop()
                    primed = False
                    if reused and not retried:
                        # Closed while idle, or closing after N messages (421): nothing was
                        # taken, so one more try on a fresh connection is safe.
                        retried = True
                        continue
                    result, following = SendResult("temporary", exc.code, exc.text), None
                    yield result
                    item, retried = next(pending, None), False
                    continue
                retried = False
                yield result
                if failure is not None:
                    raise failure
                item = following
        finally:
            if primed:
                self._drop()  # an envelope in flight that no message will follow

    def _transaction(
        self,
        conn: smtplib.SMTP,
        sender: str,
        item: tuple[str, bytes],
        pending: Iterator[tuple[str, bytes]],
        primed: bool,
    ) -> Generator[
        Awaiting, None, tuple[SendResult, tuple[str, bytes] | None, bool, BaseException | None]
    ]:
        """MAIL, RCPT, DATA, then the message; a failure is known to be before or after the data.

        Returns the result, the next message (taken from ``pending`` once this one's DATA was
        accepted, so its envelope can ride along), whether that envelope went out, and the error
        taking the next message raised (this message is still finished first). Pauses once,
        with the message sent and its answer not yet read.
        """
        recipient, message = item
        if self._sender_checked != (sender, conn) and not _usable_path(sender, conn):
            raise MailError(
                f"the envelope sender {sender!r} cannot be used with the SMTP server {self.host}; "
                "set SESSION_BOT_BOUNCE_ADDRESS or SESSION_BOT_MAIL_FROM to a plain address"
            )
        self._sender_checked = (sender, conn)
        if not _usable_path(recipient, conn):
            result = SendResult("permanent", None, f"address {recipient!r} cannot be used in SMTP")
            return result, next(pending, None), False, None
        pipelining = conn.has_extn("pipelining")
        # Primed: the envelope went out with the previous message's data; only its answers are
        # read here, so it is not built a second time.
        commands = _PRIMED if primed else _envelope(conn, sender, recipient, message)
        answers = _exchange_envelope(conn, commands, pipelining, primed)
        refused = self._refused(conn, sender, answers)
        if refused is not None:
            return refused, next(pending, None), False, None
        failure: BaseException | None = None
        try:
            following = next(pending, None)
        except Exception as exc:  # e.g. a template error: this message still goes out first
            following, failure = None, exc
        tail = b""
        if following is not None and pipelining and _usable_path(following[0], conn):
            tail = b"".join(_envelope(conn, sender, *following))
        try:
            _send_data(conn, message, tail)
            sock = conn.sock
            try:
                yield Awaiting(sock.fileno() if sock is not None else -1)
            except GeneratorExit:
                self._drop()  # an answer on its way that nobody will read: never reuse this
                raise
            code, reply = read_reply(conn)
        except (smtplib.SMTPServerDisconnected, OSError) as exc:
            self._drop()
            lost = SendResult(
                "temporary",
                None,
                f"connection lost after the message was sent, before the server's answer: {exc}",
                ambiguous=True,
            )
            return lost, following, False, failure
        result = SendResult(classify(code), code, _text(reply))
        if code == 421:
            self._drop()  # the server answered, then closes: the answer itself is final
            return result, following, False, failure
        return result, following, bool(tail), failure

    def _refused(
        self, conn: smtplib.SMTP, sender: str, answers: list[tuple[int, bytes]]
    ) -> SendResult | None:
        """The envelope's outcome if it was not accepted (after ending the transaction)."""
        codes = [code for code, _ in answers]
        if len(codes) == 3 and codes[0] // 100 == 2 and codes[1] // 100 == 2 and codes[2] == 354:
            return None  # the common case, decoding nothing
        (mail_code, mail_text), *rest = [(code, _text(reply)) for code, reply in answers]
        if mail_code // 100 != 2:
            self._abort(conn, answers)
            if mail_code >= 500:
                raise MailError(
                    f"the SMTP server {self.host} refused the envelope sender {sender} "
                    f"({mail_code} {mail_text}); set SESSION_BOT_BOUNCE_ADDRESS or "
                    "SESSION_BOT_MAIL_FROM to an address this account may send from"
                )
            return SendResult("temporary", mail_code, mail_text)
        rcpt_code, rcpt_text = rest[0]
        if rcpt_code // 100 != 2:
            self._abort(conn, answers)
            return SendResult(classify(rcpt_code), rcpt_code, rcpt_text)
        data_code, data_text = rest[1]
        if data_code != 354:
            self._abort(conn, answers)
            return SendResult(classify(data_code), data_code, data_text)
        return None

    def _abort(self, conn: smtplib.SMTP, answers: list[tuple[int, bytes]]) -> None:
        """End a refused transaction; a server that accepted DATA anyway gets an empty message."""
        try:
            if len(answers) == 3 and answers[2][0] == 354:
                conn.send(b".\r\n")
                conn.getreply()
            conn.rset()
        except (smtplib.SMTPServerDisconnected, OSError):
            self._drop()

    def _drop(self) -> None:
        _close_quietly(self._conn)
        self._conn = None

    def close(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(smtplib.SMTPException, OSError):
                self._conn.quit()
            _close_quietly(self._conn)
        self._conn = None


def _envelope(
    conn: smtplib.SMTP, sender: str, recipient: str, message: bytes
) -> tuple[bytes, bytes, bytes]:
    options = f" SIZE={len(message)}" if conn.has_extn("size") else ""
    if not (sender + recipient).isascii():
        options += " SMTPUTF8"
    return (
        f"MAIL FROM:<{sender}>{options}\r\n".encode(),
        f"RCPT TO:<{recipient}>\r\n".encode(),
        b"DATA\r\n",
    )


def _exchange_envelope(
    conn: smtplib.SMTP, commands: tuple[bytes, bytes, bytes], pipelining: bool, primed: bool
) -> list[tuple[int, bytes]]:
    """Send MAIL, RCPT and DATA and read their answers; ``_NotTaken`` if the connection is lost
    or closing. Pipelined, all three go out in one write (unless ``primed``: already sent with
    the previous message's data) and every answer is read; otherwise one at a time, stopping at
    the first refusal."""
    try:
        if pipelining and not primed:
            conn.send(b"".join(commands))
        answers: list[tuple[int, bytes]] = []  # decoded only if refused: 3 a message
        for stage, command in enumerate(commands):
            if not pipelining:
                conn.send(command)
            code, reply = read_reply(conn)
            answers.append((code, reply))
            if code == 421:
                raise _NotTaken(code, _text(reply))
            expected = 354 if stage == 2 else 250
            if code // 100 != expected // 100 and not pipelining:
                break
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise _NotTaken(None, f"connection lost before the message was sent: {exc}") from None
    return answers


def _send_data(conn: smtplib.SMTP, message: bytes, tail: bytes) -> None:
    """Send the message (dot-stuffed, ended with ``.``) and ``tail`` in one write."""
    body = message
    if type(message) is not NoLeadingDots and dotted(body):
        body = _LEADING_DOT.sub(b"..", body)
    if not body.endswith(b"\r\n"):
        body += b"\r\n"
    conn.send(body + b".\r\n" + tail)


def _usable_path(address: str, conn: smtplib.SMTP) -> bool:
    """An address that can go into MAIL FROM/RCPT TO as is: no spaces, controls or brackets,
    and non-ASCII only if the server speaks SMTPUTF8."""
    if not address or _UNSAFE_PATH.search(address):
        return False
    return address.isascii() or conn.has_extn("smtputf8")


def _text(reply: bytes | str) -> str:
    return reply.decode("utf-8", "replace") if isinstance(reply, bytes) else reply


def _close_quietly(conn: smtplib.SMTP | None) -> None:
    if conn is not None:
        with contextlib.suppress(OSError):
            conn.close()


def _describe(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPResponseException):
        return f"{exc.smtp_code} {_text(exc.smtp_error)}"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__
