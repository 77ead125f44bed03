"""The console against a real uvicorn server: an app with the sandbox, an organiser with a
password, and an httpx client signed in as her (cookies kept, CSRF token at hand)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.core.plan import Plan
from session_bot.daemon.runs import report_dict
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from tests.support.web_server import ServerThread

ORGANISER = "kristina@example.org"
PASSWORD = "ein langes sicheres Passwort"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


@dataclass
class Console:
    url: str
    store: Store
    clock: ManualClock
    sandbox: ZoomSandbox
    settings: Settings
    outbox: Path

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Accept-Language": "de-DE"})

    def sign_in(self, client: httpx.Client, password: str = PASSWORD) -> httpx.Response:
        form = client.get("/admin/sign-in")
        token = csrf_of(form.text)
        return client.post(
            "/admin/sign-in", data={"email": ORGANISER, "password": password, "csrf": token}
        )

    @contextmanager
    def signed_in(self) -> Iterator[httpx.Client]:
        with self.client() as client:
            answer = self.sign_in(client)
            assert answer.status_code == 303, answer.text
            yield client

    def csrf(self, client: httpx.Client) -> str:
        return csrf_of(client.get("/admin/").text)


def csrf_of(html: str) -> str:
    m = _CSRF.search(html)
    assert m is not None, "no CSRF token on the page"
    return m.group(1)


def add_organiser(store: Store, clock: ManualClock, password: str = PASSWORD) -> None:
    accounts = wiring.accounts(store, clock)
    invitation = accounts.add(ORGANISER, "Kristina Neumann", "test")
    assert invitation is not None
    result = accounts.set_password(invitation.token, password, password, None)
    assert not isinstance(result, str), result


@contextmanager
def console_server(
    settings: Settings, plan: Plan, store: Store, clock: ManualClock, sandbox: ZoomSandbox
) -> Iterator[Console]:
    """The web app as the daemon builds it (runs through the runner, mail to the outbox)."""
    zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
    outbox = settings.resolved_outbox
    transport = MaildirTransport(outbox)
    runner = wiring.build_runner(settings, plan, store, zoom, clock, transport=transport)
    ctx = WebContext(
        settings=settings,
        store=store,
        clock=clock,
        plan=lambda: plan,
        transport=lambda: transport,
        secret_key=wiring.secret_key(settings),
        trigger_run=lambda trigger: report_dict(runner.run(trigger)),
    )
    add_organiser(store, clock)
    with ServerThread(create_app(ctx)) as server:
        yield Console(server.url, store, clock, sandbox, settings, outbox)
