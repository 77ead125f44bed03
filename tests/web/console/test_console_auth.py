"""Signing in to the console: passwords through one-time links, sessions, CSRF, lockout."""

from __future__ import annotations

import datetime as dt
import mailbox

import httpx
import pytest

from session_bot import wiring
from session_bot.app.console.accounts import MAX_FAILURES
from tests.support.console import ORGANISER, PASSWORD, Console, csrf_of

PAGES = ["/admin/", "/admin/run-now", "/admin/mailings", "/admin/subscribers", "/admin/audit"]


def test_every_page_sends_a_stranger_to_the_sign_in(console: Console) -> None:
    with console.client() as client:
        for path in ["/admin/", "/admin"]:
            answer = client.get(path)
            assert answer.status_code == 303
            assert answer.headers["location"].startswith("/admin/sign-in?next=")
        client.cookies.set("sb_console", "forged-token-value")
        forged = client.get("/admin/")
        assert forged.status_code == 303 and "expired=1" in forged.headers["location"]


def test_sign_in_shows_the_overview_in_german_and_signs_out(console: Console) -> None:
    with console.client() as client:
        answer = console.sign_in(client)
        assert answer.status_code == 303 and answer.headers["location"] == "/admin/"
        cookie = next(c for c in client.cookies.jar if c.name == "sb_console")
        assert cookie.path == "/admin" and cookie.has_nonstandard_attr("HttpOnly")
        page = client.get("/admin/")
        assert page.status_code == 200
        assert "Übersicht" in page.text and "Angemeldet als Kristina Neumann" in page.text
        # The seed session's invitation is due now: the overview says so in words.
        assert "Einladung an 3 Abonnent:innen" in page.text
        assert "Mittwoch, 26. Februar 2025, 12:30 Uhr" in page.text
        assert page.headers["cache-control"] == "no-store"
        assert "default-src 'none'" in page.headers["content-security-policy"]

        # Sign-out without the form token changes nothing; with it, the session ends.
        assert client.post("/admin/sign-out").headers["location"] == "/admin/"
        assert client.get("/admin/").status_code == 200
        token = csrf_of(page.text)
        out = client.post("/admin/sign-out", data={"csrf": token})
        assert out.headers["location"] == "/admin/sign-in?signed_out=1"
    stale = httpx.get(f"{console.url}/admin/", cookies={"sb_console": cookie.value or ""})
    assert stale.status_code == 303
    actions = [e.action for e in console.store.audit.latest()]
    assert actions[:2] == ["sign-out", "sign-in"]


def test_the_sign_in_form_needs_its_own_token(console: Console) -> None:
    with console.client() as client:
        answer = client.post(
            "/admin/sign-in", data={"email": ORGANISER, "password": PASSWORD, "csrf": "x"}
        )
        assert answer.status_code == 400 and "Formular war abgelaufen" in answer.text
        assert "sb_console" not in client.cookies


def test_wrong_passwords_lock_the_address_for_a_while_and_mail_nobody(console: Console) -> None:
    mails_before = len(mailbox.Maildir(str(console.outbox)))
    with console.client() as client:
        answers = [console.sign_in(client, password=f"falsch-{n}") for n in range(20)]
        assert [a.status_code for a in answers[: MAX_FAILURES - 1]] == [401] * (MAX_FAILURES - 1)
        assert all(a.status_code == 429 for a in answers[MAX_FAILURES - 1 :])
        assert "Zu viele Fehlversuche" in answers[-1].text
        # Even the right password waits now …
        assert console.sign_in(client).status_code == 429
        # … until the window has passed.
        console.clock.advance(minutes=16)
        assert console.sign_in(client).status_code == 303
    assert len(mailbox.Maildir(str(console.outbox))) == mails_before


def test_an_unknown_address_gets_the_same_answer(console: Console) -> None:
    with console.client() as client:
        form = client.get("/admin/sign-in")
        answer = client.post(
            "/admin/sign-in",
            data={"email": "nobody@example.org", "password": PASSWORD, "csrf": csrf_of(form.text)},
        )
    assert answer.status_code == 401
    assert "E-Mail-Adresse oder Passwort stimmen nicht." in answer.text


def test_an_idle_session_expires(console: Console) -> None:
    with console.signed_in() as client:
        assert client.get("/admin/").status_code == 200
        console.clock.advance(hours=2, minutes=1)
        answer = client.get("/admin/")
        assert answer.status_code == 303 and "expired=1" in answer.headers["location"]


def test_a_password_link_works_once(console: Console) -> None:
    accounts = wiring.accounts(console.store, console.clock)
    invitation = accounts.add("zweite@example.org", None, "test")
    assert invitation is not None
    path = f"/admin/password/{invitation.token}"
    with console.client() as client:
        form = client.get(path)
        assert form.status_code == 200 and "Passwort für zweite@example.org" in form.text
        token = csrf_of(form.text)
        short = client.post(path, data={"password": "kurz", "repeated": "kurz", "csrf": token})
        assert short.status_code == 400 and "mindestens 12 Zeichen" in short.text
        token = csrf_of(short.text)
        good = "Sonnenblumen auf dem Balkon"
        saved = client.post(path, data={"password": good, "repeated": good, "csrf": token})
        assert saved.status_code == 200 and "Ihr Passwort ist gespeichert" in saved.text
        again = client.get(path)
        assert again.status_code == 410 and "nicht mehr gültig" in again.text
    stored = console.store.organisers.get("zweite@example.org")
    assert stored is not None and stored.password_hash is not None
    assert stored.password_hash.startswith("$argon2id$") and good not in stored.password_hash


@pytest.mark.parametrize("target", ["https://evil.example/", "//evil.example/admin"])
def test_sign_in_never_redirects_elsewhere(console: Console, target: str) -> None:
    with console.client() as client:
        form = client.get("/admin/sign-in")
        answer = client.post(
            "/admin/sign-in",
            data={
                "email": ORGANISER,
                "password": PASSWORD,
                "csrf": csrf_of(form.text),
                "next": target,
            },
        )
    assert answer.headers["location"] == "/admin/"


def test_the_console_shows_no_secret(console: Console) -> None:
    secrets = [
        console.settings.secret_key.get_secret_value() if console.settings.secret_key else ""
    ]
    with console.signed_in() as client:
        for path in ["/admin/", "/admin/sign-in"]:
            text = client.get(path).text
            assert not any(s and s in text for s in secrets)
    _ = dt


@pytest.mark.parametrize("console", ["https"], indirect=True)
def test_cookies_are_secure_when_the_public_url_is_https(console: Console) -> None:
    answer = httpx.get(f"{console.url}/admin/sign-in")
    cookie = answer.headers["set-cookie"]
    assert "Secure" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie
