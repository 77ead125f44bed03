"""Subscribe / confirm / unsubscribe over real HTTP (uvicorn) with mail at a real aiosmtpd server."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from session_bot.app.subscriptions import confirm_token, unsubscribe_token
from tests.conftest import SEED_INVITATION_AT
from tests.support.web_subscribe import (
    SECRET,
    World,
    confirm_link,
    header_unsubscribe_url,
    text_of,
    wait_for,
    world,
)

AFTER_INVITATION = SEED_INVITATION_AT + dt.timedelta(days=1)


@pytest.fixture
def w(tmp_path: Path) -> Iterator[World]:
    with world(tmp_path, now=AFTER_INVITATION) as the_world:
        yield the_world


@pytest.fixture
def http(w: World) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=w.url, headers={"User-Agent": "pytest-browser/1.0"}) as c:
        yield c


def subscribe(http: httpx.Client, address: str, **extra: str) -> httpx.Response:
    return http.post("/subscribe", data={"email": address, "name": "", **extra})


def altered(token: str) -> str:
    body, _, sig = token.partition(".")
    return f"{body}.{('A' if sig[0] != 'A' else 'B') + sig[1:]}"


def test_form_speaks_german_by_default_english_on_request_and_loads_nothing_external(
    http: httpx.Client,
) -> None:
    de = http.get("/subscribe")
    assert de.status_code == 200 and '<html lang="de">' in de.text
    assert "E-Mail-Adresse" in de.text and 'autocomplete="email"' in de.text
    assert '<label for="email">' in de.text
    en = http.get("/subscribe", headers={"Accept-Language": "en-GB,en;q=0.9,de;q=0.5"})
    assert '<html lang="en">' in en.text and "E-mail address" in en.text
    forced = http.get("/subscribe?lang=de", headers={"Accept-Language": "en"})
    assert '<html lang="de">' in forced.text
    for page in (de, en):
        assert not re.search(r"""(src|href|action)=["']?(https?:)?//""", page.text)
        csp = page.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "unsafe-inline" not in csp
        assert page.headers["referrer-policy"] == "no-referrer"


def test_subscribe_mails_a_confirmation_and_records_the_request_as_proof(
    w: World, http: httpx.Client
) -> None:
    r = subscribe(http, "Neu.Person@Example.org", name="Jörg Müller", language="de")
    assert r.status_code == 200 and "Postfach" in r.text
    row = w.store.subscribers.get("neu.person@example.org")
    assert row is not None and row["status"] == "pending"
    assert row["name"] == "Jörg Müller" and row["email"] == "Neu.Person@example.org"
    assert row["request_ip"] == "127.0.0.1" and row["request_user_agent"] == "pytest-browser/1.0"
    assert row["request_url"] == f"{w.url}/subscribe"
    assert row["consent_version"].startswith("de-") and row["requested_at"] == AFTER_INVITATION
    (mail,) = w.wait_mails("Neu.Person@example.org", 1)
    assert "bestätigen" in str(mail["Subject"]) and mail["List-Unsubscribe"] is None
    assert "Jörg Müller" in text_of(mail)
    assert confirm_link(mail).startswith(f"{w.url}/confirm/")


def test_confirm_link_opens_a_page_only_its_button_confirms(w: World, http: httpx.Client) -> None:
    subscribe(http, "neu@example.org")
    link = confirm_link(w.wait_mails("neu@example.org", 1)[0])
    page = http.get(link)
    assert page.status_code == 200 and page.text.count("<button") == 1
    assert 'method="post"' in page.text
    # A link scanner's GETs (and HEADs) change nothing.
    http.get(link)
    assert w.store.subscribers.get("neu@example.org")["status"] == "pending"  # type: ignore[index]
    w.clock.advance(minutes=5)
    done = http.post(link, headers={"User-Agent": "clicker/2"})
    assert done.status_code == 200 and "bestätigt" in done.text
    row = w.store.subscribers.get("neu@example.org")
    assert row is not None and row["status"] == "confirmed"
    assert row["confirmed_at"] == AFTER_INVITATION + dt.timedelta(minutes=5)
    assert row["confirm_ip"] == "127.0.0.1" and row["confirm_user_agent"] == "clicker/2"
    again = http.post(link)
    assert again.status_code == 200 and "bereits bestätigt" in again.text


def test_forged_or_altered_tokens_get_a_plain_invalid_page_and_change_nothing(
    w: World, http: httpx.Client
) -> None:
    subscribe(http, "neu@example.org")
    link = confirm_link(w.wait_mails("neu@example.org", 1)[0])
    token = link.rsplit("/", 1)[1]
    victim = w.store.subscribers.get("early@example.org")
    assert victim is not None
    forged_confirm = confirm_token("not-the-key-0123456789", 1, AFTER_INVITATION)
    bad = [
        f"/confirm/{altered(token)}",
        f"/confirm/{forged_confirm}",
        "/confirm/nonsense",
        f"/unsubscribe/{altered(unsubscribe_token(SECRET, victim['id']))}",
        f"/unsubscribe/{unsubscribe_token('not-the-key-0123456789', victim['id'])}",
        f"/unsubscribe/{confirm_token(SECRET, victim['id'], AFTER_INVITATION)}",  # wrong purpose
    ]
    for path in bad:
        for method in ("GET", "POST"):
            r = http.request(method, path, data={"List-Unsubscribe": "One-Click"})
            assert r.status_code == 400, (method, path)
            assert "Link ungültig" in r.text and "link not valid" in r.text
    assert w.store.subscribers.get("neu@example.org")["status"] == "pending"  # type: ignore[index]
    assert w.store.subscribers.get("early@example.org")["status"] == "confirmed"  # type: ignore[index]


def test_a_newer_request_retires_the_older_confirm_link(w: World, http: httpx.Client) -> None:
    subscribe(http, "neu@example.org")
    first = confirm_link(w.wait_mails("neu@example.org", 1)[0])
    w.clock.advance(minutes=1)
    subscribe(http, "neu@example.org")
    second = confirm_link(w.wait_mails("neu@example.org", 2)[1])
    assert first != second
    assert http.post(first).status_code == 400
    assert w.store.subscribers.get("neu@example.org")["status"] == "pending"  # type: ignore[index]
    assert http.post(second).status_code == 200
    assert w.store.subscribers.get("neu@example.org")["status"] == "confirmed"  # type: ignore[index]


def test_confirm_links_expire_after_thirty_days(w: World, http: httpx.Client) -> None:
    subscribe(http, "spaet@example.org")
    link = confirm_link(w.wait_mails("spaet@example.org", 1)[0])
    w.clock.advance(days=31)
    r = http.post(link)
    assert r.status_code == 410 and "abgelaufen" in r.text
    assert w.store.subscribers.get("spaet@example.org")["status"] == "pending"  # type: ignore[index]


def test_resubmitting_a_confirmed_address_changes_nothing_and_tells_the_owner_once_a_day(
    w: World, http: httpx.Client
) -> None:
    before = w.store.subscribers.get("early@example.org")
    assert before is not None
    for _ in range(3):
        r = subscribe(http, "EARLY@example.org", name="Angreifer", language="en")
        assert r.status_code == 200 and "Postfach" in r.text  # reveals nothing
    after = w.store.subscribers.get("early@example.org")
    assert after is not None
    assert {k: v for k, v in after.items() if k != "owner_notice_at"} == {
        k: v for k, v in before.items() if k != "owner_notice_at"
    }
    notices = wait_for(
        lambda: [
            m for m in w.mails_to("early@example.org") if "bereits angemeldet" in str(m["Subject"])
        ],
        "the owner notice",
    )
    assert len(notices) == 1
    assert f"{w.url}/unsubscribe/" in text_of(notices[0])
    w.clock.advance(hours=25)
    subscribe(http, "early@example.org")
    wait_for(
        lambda: (
            len(
                [
                    m
                    for m in w.mails_to("early@example.org")
                    if "bereits angemeldet" in str(m["Subject"])
                ]
            )
            == 2
        ),
        "the next day's notice",
    )


def test_subscribe_requests_are_limited_per_address_and_per_client(
    w: World, http: httpx.Client
) -> None:
    for _ in range(5):
        assert subscribe(http, "opfer@example.org").status_code == 200
    # Three confirmation mails a day at most, however often the form is sent.
    w.wait_mails("opfer@example.org", 3)
    for i in range(5):
        assert subscribe(http, f"person{i}@example.org").status_code == 200
    limited = subscribe(http, "noch-eine@example.org")
    assert limited.status_code == 429 and "Zu viele" in limited.text
    assert int(limited.headers["retry-after"]) > 0
    assert w.store.subscribers.get("noch-eine@example.org") is None
    assert len(w.mails_to("opfer@example.org")) == 3
    # Windows end: the next hour the client may ask again.
    w.clock.advance(hours=1, minutes=1)
    assert subscribe(http, "noch-eine@example.org").status_code == 200


def test_invalid_addresses_re_show_the_form_with_an_accessible_error(http: httpx.Client) -> None:
    for value in ("", "kein-at-zeichen", "a@b", "x@localhost"):
        r = subscribe(http, value, name="<script>x</script>")
        assert r.status_code == 400
        assert 'aria-invalid="true"' in r.text and 'role="alert"' in r.text
        assert "<script>x" not in r.text


def test_late_confirmation_gets_the_invitation_that_already_went_out(
    w: World, http: httpx.Client
) -> None:
    assert len(w.mails_to("early@example.org")) == 1  # the invitation of 26 February
    subscribe(http, "spaet@example.org")
    link = confirm_link(w.wait_mails("spaet@example.org", 1)[0])
    r = http.post(link)
    assert "schon verschickt" in r.text
    mails = w.wait_mails("spaet@example.org", 2)
    invitation = mails[1]
    assert "66547677759" in text_of(invitation) and "26. Februar 2025" in text_of(invitation)
    assert w.runs == ["confirm"]
    assert len(w.mails_to("early@example.org")) == 1  # nobody else got it twice


def test_one_click_post_from_the_list_unsubscribe_header_takes_the_subscriber_out(
    w: World, http: httpx.Client
) -> None:
    (invitation,) = w.mails_to("early@example.org")
    assert invitation["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    url = header_unsubscribe_url(invitation)
    assert url.startswith(w.url)
    # As a mailbox provider does it: a bare POST, no cookies, no page visited before.
    with httpx.Client() as provider:
        r = provider.post(
            url,
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    assert r.status_code == 200
    row = w.store.subscribers.get("early@example.org")
    assert row is not None and row["status"] == "unsubscribed"
    assert row["unsubscribed_at"] == AFTER_INVITATION
    # The reminder (frozen later) and any resumed mailing skip them.
    w.clock.set(dt.datetime(2025, 2, 25, 8, 0, tzinfo=dt.UTC))
    w.runner.run("test")
    assert len(w.mails_to("early@example.org")) == 1
    # The unsubscribe link's page (GET) says so and changes nothing.
    page = http.get(url)
    assert page.status_code == 200 and "bereits abgemeldet" in page.text


def test_unsubscribe_page_has_one_button_and_get_changes_nothing(
    w: World, http: httpx.Client
) -> None:
    row = w.store.subscribers.get("early@example.org")
    assert row is not None
    path = f"/unsubscribe/{unsubscribe_token(SECRET, row['id'])}"
    page = http.get(path, headers={"Accept-Language": "en"})
    assert page.status_code == 200 and page.text.count("<button") == 1
    assert '<html lang="de">' in page.text  # the subscriber's language wins over the browser's
    assert w.store.subscribers.get("early@example.org")["status"] == "confirmed"  # type: ignore[index]
    english = http.get(path + "?lang=en")
    assert "Unsubscribe now" in english.text
    done = http.post(path + "?lang=en", data={"confirm": "yes"})
    assert done.status_code == 200 and "You are unsubscribed" in done.text
    assert w.store.subscribers.get("early@example.org")["status"] == "unsubscribed"  # type: ignore[index]


def test_english_visitors_get_english_pages_and_an_english_confirmation(
    w: World, http: httpx.Client
) -> None:
    form = http.get("/subscribe", headers={"Accept-Language": "en-US,en;q=0.8"})
    assert '<option value="en" selected lang="en">' in form.text
    r = subscribe(http, "reader@example.org", language="en", page_lang="en")
    assert '<html lang="en">' in r.text and "check your inbox" in r.text
    row = w.store.subscribers.get("reader@example.org")
    assert row is not None and row["language"] == "en" and row["consent_version"].startswith("en-")
    (mail,) = w.wait_mails("reader@example.org", 1)
    assert mail["Content-Language"] == "en"
    link = confirm_link(mail)
    page = http.get(link)  # no ?lang=: the subscriber's language
    assert '<html lang="en">' in page.text and "Confirm subscription" in page.text
