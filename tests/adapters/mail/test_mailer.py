"""The transports against a real aiosmtpd server: TLS, AUTH, reuse, answers, check()."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from session_bot.adapters.mail import MaildirTransport, SendResult, SmtpTransport
from session_bot.app.ports.mail import Awaiting, NoLeadingDots
from session_bot.core.errors import MailError
from tests.support.smtp_server import (
    CollectingHandler,
    Fault,
    SmtpServer,
    free_port,
    self_signed_cert,
)

MESSAGE = b"From: a@sb.example.org\r\nTo: b@example.org\r\nSubject: x\r\n\r\n.dot line\r\nok\r\n"
LOGIN = ("sessionbot", "s3cret-pass")


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return self_signed_cert(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def trusting(cert: tuple[Path, Path]) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(cert[0]))


@pytest.fixture
def starttls_server(cert: tuple[Path, Path]) -> Iterator[SmtpServer]:
    with SmtpServer(tls=cert, login=LOGIN) as srv:
        yield srv


def test_starttls_and_login_then_one_connection_for_many_messages(
    starttls_server: SmtpServer, trusting: ssl.SSLContext
) -> None:
    t = SmtpTransport(
        starttls_server.host, starttls_server.port, tls="starttls", user=LOGIN[0],
        password=LOGIN[1], ssl_context=trusting,
    )  # fmt: skip
    results = [t.send("a@sb.example.org", f"r{i}@example.org", MESSAGE) for i in range(5)]
    t.close()
    assert [r.outcome for r in results] == ["sent"] * 5
    assert starttls_server.handler.connections == 1
    got = starttls_server.handler.messages
    assert [m.rcpt_tos for m in got] == [[f"r{i}@example.org"] for i in range(5)]
    # Dot-stuffing is undone by the server: the body arrives exactly as given.
    assert got[0].data.replace(b"\r\n", b"\n") == MESSAGE.replace(b"\r\n", b"\n")


def test_the_ca_certificates_are_loaded_once_for_a_transport_and_its_clones_never_for_plain(
    starttls_server: SmtpServer,
    any_server: SmtpServer,
    trusting: ssl.SSLContext,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[ssl.SSLContext] = []

    def default_context(*args: object, **kwargs: object) -> ssl.SSLContext:
        made.append(trusting)  # the test's CA stands in for the system's
        return trusting

    monkeypatch.setattr(ssl, "create_default_context", default_context)
    plain = SmtpTransport(any_server.host, any_server.port, tls="none")
    plain_twin = plain.clone()
    for t in (plain, plain_twin):
        assert t.send("a@sb.example.org", "p@example.org", MESSAGE).outcome == "sent"
        t.close()
    assert made == []
    first = SmtpTransport(
        starttls_server.host, starttls_server.port, tls="starttls", user=LOGIN[0],
        password=LOGIN[1],
    )  # fmt: skip
    family = [first, first.clone(), first.clone()]
    for i, t in enumerate(family):
        assert t.send("a@sb.example.org", f"t{i}@example.org", MESSAGE).outcome == "sent"
    for t in family:
        t.close()
    assert starttls_server.handler.connections == 3
    assert len(made) == 1


def test_a_message_without_leading_dots_goes_as_it_is_and_any_other_is_stuffed(
    any_server: SmtpServer,
) -> None:
    plain = b"Subject: x\r\n\r\nno dot here\r\n"
    t = SmtpTransport(any_server.host, any_server.port, tls="none")
    results = list(
        t.send_many(
            "a@sb.example.org",
            [("r1@example.org", NoLeadingDots(plain)), ("r2@example.org", MESSAGE)],
        )
    )
    t.close()
    assert [r.outcome for r in results] == ["sent", "sent"]
    got = [m.data.replace(b"\r\n", b"\n") for m in any_server.handler.messages]
    assert got == [plain.replace(b"\r\n", b"\n"), MESSAGE.replace(b"\r\n", b"\n")]


def test_a_send_abandoned_before_its_answer_leaves_no_connection_to_reuse(
    any_server: SmtpServer,
) -> None:
    t = SmtpTransport(any_server.host, any_server.port, tls="none")
    steps = t.send_steps("a@sb.example.org", [("r1@example.org", MESSAGE)])
    assert isinstance(next(steps), Awaiting)  # the message went out, its answer not read
    steps.close()
    # The next message gets its own answer on a new connection, not the one left unread.
    result = t.send("a@sb.example.org", "r2@example.org", MESSAGE)
    t.close()
    assert result.outcome == "sent" and result.code == 250
    assert any_server.handler.connections == 2


def test_implicit_tls_with_login(cert: tuple[Path, Path], trusting: ssl.SSLContext) -> None:
    with SmtpServer(tls=cert, implicit_tls=True, login=LOGIN) as srv:
        t = SmtpTransport(
            srv.host, srv.port, tls="ssl", user=LOGIN[0], password=LOGIN[1], ssl_context=trusting
        )
        t.check()
        assert t.send("a@sb.example.org", "b@example.org", MESSAGE).outcome == "sent"
        t.close()
        assert len(srv.handler.messages) == 1


def test_wrong_password_names_the_settings(
    starttls_server: SmtpServer, trusting: ssl.SSLContext
) -> None:
    t = SmtpTransport(
        starttls_server.host, starttls_server.port, user=LOGIN[0], password="wrong",
        ssl_context=trusting,
    )  # fmt: skip
    with pytest.raises(MailError, match="SESSION_BOT_SMTP_PASSWORD") as err:
        t.check()
    assert "wrong" not in str(err.value)  # never a secret in a message
    with pytest.raises(MailError):
        t.send("a@sb.example.org", "b@example.org", MESSAGE)
    assert starttls_server.handler.messages == []


def test_untrusted_certificate_is_refused(starttls_server: SmtpServer) -> None:
    t = SmtpTransport(starttls_server.host, starttls_server.port, user=LOGIN[0], password=LOGIN[1])
    with pytest.raises(MailError, match=r"TLS .*SESSION_BOT_SMTP_TLS"):
        t.check()


def test_server_without_starttls(smtp_server: SmtpServer) -> None:
    t = SmtpTransport(smtp_server.host, smtp_server.port, tls="starttls")
    with pytest.raises(MailError, match="does not offer STARTTLS"):
        t.check()


def test_nothing_listening() -> None:
    t = SmtpTransport("127.0.0.1", free_port(), tls="none", timeout=2)
    with pytest.raises(MailError, match=r"cannot connect to SMTP server 127\.0\.0\.1"):
        t.check()


@pytest.fixture(params=[False, True], ids=["one-by-one", "pipelining"])
def any_server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    with SmtpServer(CollectingHandler(pipelining=request.param)) as srv:
        yield srv


def test_pipelining_is_used_when_offered(any_server: SmtpServer) -> None:
    t = SmtpTransport(any_server.host, any_server.port, tls="none")
    assert t.send("s@sb.example.org", "r@x.org", MESSAGE).outcome == "sent"
    assert t._conn is not None
    assert t._conn.has_extn("pipelining") == any_server.handler.pipelining
    t.close()


def test_answers_per_recipient(any_server: SmtpServer) -> None:
    smtp_server = any_server
    h = smtp_server.handler
    h.add_fault(
        Fault("rcpt", "550 5.1.1 <gone@example.org>: no such mailbox", recipient="gone@x.org")
    )
    h.add_fault(Fault("rcpt", "452 4.2.2 mailbox full", recipient="full@x.org"))
    h.add_fault(Fault("data", "554 5.7.1 spam", recipient="spam@x.org"))
    h.add_fault(Fault("data", "451 4.7.1 throttled", recipient="slow@x.org"))
    t = SmtpTransport(smtp_server.host, smtp_server.port, tls="none")
    got = {a: t.send("s@sb.example.org", a, MESSAGE) for a in
           ("gone@x.org", "full@x.org", "spam@x.org", "slow@x.org", "ok@x.org")}  # fmt: skip
    t.close()
    assert got["gone@x.org"].outcome == "permanent" and got["gone@x.org"].hard_bounce
    assert got["gone@x.org"].code == 550
    assert (got["full@x.org"].outcome, got["full@x.org"].code) == ("temporary", 452)
    assert got["spam@x.org"].outcome == "permanent" and not got["spam@x.org"].hard_bounce
    assert (got["slow@x.org"].outcome, got["slow@x.org"].code) == ("temporary", 451)
    assert got["ok@x.org"].outcome == "sent"
    # Refusals reset the transaction; the connection carried on.
    assert smtp_server.handler.connections == 1
    assert [m.rcpt_tos for m in h.messages] == [["ok@x.org"]]


def test_drop_before_data_reconnects_drop_after_data_is_ambiguous(
    any_server: SmtpServer,
) -> None:
    smtp_server = any_server
    h = smtp_server.handler
    t = SmtpTransport(smtp_server.host, smtp_server.port, tls="none")
    assert t.send("s@sb.example.org", "one@x.org", MESSAGE).outcome == "sent"
    h.add_fault(Fault("mail", drop=True, times=1))  # e.g. the server's idle timeout
    again = t.send("s@sb.example.org", "two@x.org", MESSAGE)
    assert again.outcome == "sent" and t.connects == 2
    h.add_fault(Fault("data", drop=True, keep=True, times=1))
    lost = t.send("s@sb.example.org", "three@x.org", MESSAGE)
    assert (lost.outcome, lost.ambiguous, lost.code) == ("temporary", True, None)
    assert t.send("s@sb.example.org", "four@x.org", MESSAGE).outcome == "sent"
    t.close()
    assert [m.rcpt_tos[0] for m in h.messages] == ["one@x.org", "two@x.org", "three@x.org",
                                                   "four@x.org"]  # fmt: skip


def test_421_closing_answer_then_fresh_connection(any_server: SmtpServer) -> None:
    smtp_server = any_server
    h = smtp_server.handler
    h.add_fault(Fault("mail", "421 4.7.0 closing", from_nth_on_connection=3, close_after=True))
    t = SmtpTransport(smtp_server.host, smtp_server.port, tls="none")
    results = [t.send("s@sb.example.org", f"r{i}@x.org", MESSAGE) for i in range(6)]
    t.close()
    assert [r.outcome for r in results] == ["sent"] * 6
    assert h.connections == 3


def test_enhanced_status_parsing() -> None:
    assert SendResult("permanent", 550, "5.1.1 <a@b>: Recipient address rejected").hard_bounce
    assert SendResult("permanent", 550, "5.1.10 null MX").hard_bounce
    assert not SendResult("permanent", 550, "5.7.1 relaying denied").hard_bounce
    assert not SendResult("permanent", 550, "no such user").hard_bounce  # no enhanced code
    assert not SendResult("temporary", 450, "4.1.1 try later").hard_bounce


def test_maildir_check_and_clone(tmp_path: Path) -> None:
    box = MaildirTransport(tmp_path / "outbox")
    box.check()
    assert box.clone() is box
    assert box.send("s@x.org", "r@x.org", MESSAGE).outcome == "sent"
    assert len(list((tmp_path / "outbox" / "new").iterdir())) == 1
    (tmp_path / "outbox" / "tmp").rmdir()
    (tmp_path / "outbox" / "tmp").write_text("not a folder")
    with pytest.raises(MailError, match="SESSION_BOT_OUTBOX"):
        box.check()


def test_refused_sender_and_unusable_addresses(any_server: SmtpServer) -> None:
    any_server.handler.add_fault(Fault("mail", "553 5.7.1 not your address", times=1))
    t = SmtpTransport(any_server.host, any_server.port, tls="none")
    with pytest.raises(MailError, match="refused the envelope sender"):
        t.send("s@sb.example.org", "r@x.org", MESSAGE)
    bad = t.send("s@sb.example.org", "r@x.org>\r\nRCPT TO:<evil@x.org", MESSAGE)
    assert (bad.outcome, bad.code) == ("permanent", None)
    with pytest.raises(MailError, match="cannot be used"):
        t.send("s@sb.example.org\r\nRSET", "r@x.org", MESSAGE)
    assert t.send("s@sb.example.org", "ok@x.org", MESSAGE).outcome == "sent"
    t.close()
    assert [m.rcpt_tos for m in any_server.handler.messages] == [["ok@x.org"]]
