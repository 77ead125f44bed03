"""The subscriber pages' mails after the response (``web/consent_outbox.py``) and the writer
thread of the form's transaction (``web/writer.py``): through the real web app and a real
aiosmtpd server, and the outbox alone against the Maildir outbox and aiosmtpd."""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from session_bot.adapters.mail import MaildirTransport, SmtpTransport
from session_bot.app.ports.subscribe import MailSender
from session_bot.web.consent_outbox import ConsentOutbox, Job
from tests.conftest import SEED_INVITATION_AT
from tests.support.smtp_server import CollectingHandler, Fault, SmtpServer, free_port
from tests.support.web_subscribe import World, wait_for, world

SENDER = "organiser@example.org"


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path, now=SEED_INVITATION_AT + dt.timedelta(days=1)) as the_world:
        yield the_world


def _subscribe(w: World, address: str) -> httpx.Response:
    return httpx.post(f"{w.url}/subscribe", data={"email": address, "name": ""}, timeout=30)


def _message(to: str) -> bytes:
    return (
        f"From: {SENDER}\r\nTo: {to}\r\nSubject: Bitte bestätigen\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\nHallo\r\n"
    ).encode()


def _mail(to: str) -> Job:
    def send(transport: MailSender) -> bool:
        transport.send(SENDER, to, _message(to))
        return True

    return send


def _sending_threads(name: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(name)]


# --- through the web app ---------------------------------------------------------------------


def test_every_confirmation_goes_out_once_over_the_one_kept_connection(w: World) -> None:
    before = w.smtp.handler.connections
    people = [f"person{i:02d}@example.org" for i in range(27)]
    with ThreadPoolExecutor(9) as pool:
        for hour in range(3):  # one client may ask ten times an hour
            batch = people[hour * 9 : hour * 9 + 9]
            answers = list(pool.map(lambda a: _subscribe(w, a), batch))
            assert {r.status_code for r in answers} == {200}
            w.clock.advance(minutes=61)
    for address in people:
        w.wait_mails(address, 1)
    time.sleep(0.3)  # a second copy would have arrived by now
    copies = w.smtp.handler.copies()
    assert all(copies[a] == 1 for a in people)
    # One thread, one connection, instead of a connection per mail.
    assert w.smtp.handler.connections - before == 1


def test_refused_and_lost_mails_are_logged_and_the_next_confirmation_goes_out(
    w: World, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="session_bot.web_subscribe")
    w.smtp.handler.add_fault(Fault("rcpt", reply="550 5.1.1 no such mailbox", recipient="no@x.org"))
    assert _subscribe(w, "no@x.org").status_code == 200
    wait_for(lambda: "not accepted: 550" in caplog.text, "the refusal in the log")
    w.smtp.handler.add_fault(Fault("mail", drop=True, times=2))  # the connection drops twice
    assert _subscribe(w, "dropped@example.org").status_code == 200
    wait_for(lambda: "connection lost" in caplog.text, "the lost mail in the log")
    assert _subscribe(w, "next@example.org").status_code == 200
    w.wait_mails("next@example.org", 1)
    assert w.mails_to("no@x.org") == [] and w.mails_to("dropped@example.org") == []


def test_the_event_loop_answers_while_a_sign_up_waits_for_the_write_lock(w: World) -> None:
    waiting: list[httpx.Response] = []
    with w.store.db.writer():  # a delivery's write in progress, say
        post = threading.Thread(target=lambda: waiting.append(_subscribe(w, "wait@example.org")))
        post.start()
        time.sleep(0.3)
        assert not waiting  # the sign-up waits for the lock …
        started = time.monotonic()
        form = httpx.get(f"{w.url}/subscribe", timeout=5)  # … the other pages do not
        assert form.status_code == 200 and time.monotonic() - started < 2
    post.join(timeout=10)
    assert waiting and waiting[0].status_code == 200
    w.wait_mails("wait@example.org", 1)


# --- the outbox alone ------------------------------------------------------------------------


def test_a_job_that_raises_is_logged_and_the_thread_sends_the_next(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    outbox = ConsentOutbox(lambda: MaildirTransport(tmp_path / "outbox"))

    def broken(transport: MailSender) -> bool:
        raise RuntimeError("a bug in a job")

    outbox.submit("the broken mail", broken)
    outbox.submit("the good mail", _mail("good@example.org"))
    assert outbox.close(grace=10) == 0
    (file,) = (tmp_path / "outbox" / "new").iterdir()
    assert b"Delivered-To: good@example.org" in file.read_bytes()
    assert "the broken mail not sent" in caplog.text and "RuntimeError" in caplog.text


def test_a_transport_that_failed_is_replaced_by_a_new_one(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with SmtpServer() as smtp:
        made: list[SmtpTransport] = []

        def transport() -> SmtpTransport:
            # The first one points where no server listens: its send raises MailError.
            port = free_port() if not made else smtp.port
            made.append(SmtpTransport(smtp.host, port, tls="none", timeout=5))
            return made[-1]

        outbox = ConsentOutbox(transport)
        outbox.submit("mail one", _mail("one@example.org"))
        outbox.submit("mail two", _mail("two@example.org"))
        assert outbox.close(grace=20) == 0
        assert "mail one not sent" in caplog.text
        assert smtp.handler.copies() == {"two@example.org": 1} and len(made) == 2


def test_an_outbox_that_cannot_be_written_is_logged_per_mail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "file").write_text("not a folder")
    outbox = ConsentOutbox(lambda: MaildirTransport(tmp_path / "file" / "outbox"))
    outbox.submit("mail one", _mail("one@example.org"))
    outbox.submit("mail two", _mail("two@example.org"))
    assert outbox.close(grace=10) == 0
    assert "mail one not sent: cannot use the Maildir outbox" in caplog.text
    assert "mail two not sent: cannot use the Maildir outbox" in caplog.text


def test_close_sends_what_is_queued_first() -> None:
    with SmtpServer(CollectingHandler(delay=0.05)) as smtp:
        outbox = ConsentOutbox(
            lambda: SmtpTransport(smtp.host, smtp.port, tls="none"), name="queued"
        )
        people = [f"queued{i}@example.org" for i in range(10)]
        for address in people:
            outbox.submit(f"mail to {address}", _mail(address))
        assert outbox.close(grace=20) == 0
        assert smtp.handler.copies() == {a: 1 for a in people}
    assert not _sending_threads("queued")


def test_close_gives_up_after_its_grace_and_logs_what_is_left(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with SmtpServer(CollectingHandler(delay=1.0)) as smtp:
        outbox = ConsentOutbox(lambda: SmtpTransport(smtp.host, smtp.port, tls="none"), name="slow")
        for i in range(4):
            outbox.submit(f"mail {i}", _mail(f"slow{i}@example.org"))
        started = time.monotonic()
        left = outbox.close(grace=0.5)
        assert time.monotonic() - started < 1.5
        assert left >= 2
        assert f"{left} mail(s) not sent at shutdown" in caplog.text and "mail 3" in caplog.text
        outbox.submit("mail after the end", _mail("late@example.org"))
        assert "mail after the end not sent: the web app is shutting down" in caplog.text
        wait_for(lambda: not _sending_threads("slow"), "the sending thread to end", timeout=10)
        assert "late@example.org" not in smtp.handler.copies()


def test_an_idle_thread_ends_with_its_connection_and_the_next_mail_starts_one() -> None:
    with SmtpServer() as smtp:
        outbox = ConsentOutbox(
            lambda: SmtpTransport(smtp.host, smtp.port, tls="none"), idle_seconds=0.2, name="idle"
        )
        outbox.submit("first", _mail("first@example.org"))
        wait_for(lambda: smtp.handler.copies().get("first@example.org"), "the first mail")
        wait_for(lambda: not _sending_threads("idle"), "the idle thread to end")
        outbox.submit("second", _mail("second@example.org"))
        wait_for(lambda: smtp.handler.copies().get("second@example.org"), "the second mail")
        assert outbox.close() == 0
        assert smtp.handler.connections == 2
