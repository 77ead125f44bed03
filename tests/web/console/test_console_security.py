"""Every console page and action, found from the app's own routes: nothing without a session,
nothing changed without the form token, no secret on any page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.console import Console

OPEN = {"/admin/sign-in", "/admin/sign-out", "/admin/password/{token}", "/admin/run"}


def console_routes(console: Console) -> list[tuple[str, str]]:
    """(method, path) of every console route, path parameters filled with plausible values."""
    from fastapi.routing import APIRoute

    from session_bot.web.console import router

    def walk(routes: list[Any]) -> Iterator[APIRoute]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI includes lazily
            if inner is not None:
                yield from walk(inner.routes)
            elif isinstance(route, APIRoute):
                yield route

    found = []
    for route in walk(list(router.routes)):
        if not route.path.startswith("/admin"):
            continue
        if route.path in OPEN:
            continue
        path = re.sub(r"\{date\}", "2025-02-26", route.path)
        path = re.sub(r"\{kind\}", "invitation", path)
        path = re.sub(r"\{lang\}", "de", path)
        path = re.sub(r"\{[a-z_]*id\}", "1", path)
        for method in route.methods:
            found.append((method, path))
    return sorted(set(found))


def test_there_are_console_routes_to_check(console: Console) -> None:
    routes = console_routes(console)
    assert len([r for r in routes if r[0] == "POST"]) >= 6
    assert len([r for r in routes if r[0] == "GET"]) >= 10


@pytest.mark.parametrize("cookie", [None, "forged-token-value"])
def test_every_page_and_action_refuses_without_a_session(
    console: Console, cookie: str | None
) -> None:
    before = console.store.subscribers.count(), len(console.store.mailings.open())
    cookies = {"sb_console": cookie} if cookie else {}
    for method, path in console_routes(console):
        answer = httpx.request(method, f"{console.url}{path}", cookies=cookies, data={"csrf": "x"})
        assert answer.status_code == 303, (method, path, answer.status_code)
        assert answer.headers["location"].startswith("/admin/sign-in"), (method, path)
    assert (console.store.subscribers.count(), len(console.store.mailings.open())) == before
    assert [e.action for e in console.store.audit.latest()] == [
        "password-set", "password-link", "organiser-added",
    ]  # fmt: skip


def test_no_action_without_the_form_token(console: Console) -> None:
    with console.signed_in() as client:
        before = console.store.subscribers.count(), console.store.mailings.delivery_counts()
        for method, path in console_routes(console):
            if method != "POST":
                continue
            answer = client.post(path, data={"csrf": "not-the-token", "email": "x@example.org"})
            assert answer.status_code in (400, 404), (path, answer.status_code)
        after = console.store.subscribers.count(), console.store.mailings.delivery_counts()
    assert after == before
    assert not [e for e in console.store.audit.latest() if e.action not in (
        "password-set", "password-link", "organiser-added", "sign-in",
    )]  # fmt: skip


@pytest.mark.parametrize("console", ["secrets"], indirect=True)
def test_no_page_shows_a_secret(console: Console) -> None:
    secrets = [
        s.get_secret_value()
        for s in (
            console.settings.zoom_client_secret,
            console.settings.smtp_password,
            console.settings.admin_token,
            console.settings.secret_key,
            console.settings.zoom_webhook_secret,
        )
        if s is not None
    ]
    assert len(secrets) == 5
    with console.signed_in() as client:
        for method, path in console_routes(console):
            if method == "GET":
                text = client.get(path).text
                assert not any(s in text for s in secrets), path
