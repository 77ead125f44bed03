"""Shared pieces of the subscribe web tests: a real uvicorn server in a thread, the whole world
(store, Zoom sandbox, runner, aiosmtpd) wired as the daemon would, and mail helpers.

Holds no tests itself; its name only keeps it among the files of the subscribe tests.
"""

from __future__ import annotations

import datetime as dt
import re
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import SmtpTransport
from session_bot.app.runner import Runner
from session_bot.core.plan import Plan, load_plan
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings, load_settings
from session_bot.web.deps import WebContext
from session_bot.web.subscribe import router
from tests.conftest import EXAMPLE_PLAN, SEED_INVITATION_AT, SEED_JOIN_HOST, SEED_MEETING
from tests.support.smtp_server import SmtpServer
from tests.support.waiting import wait_for

SECRET = "test-secret-key-0123456789abcdef"
T = TypeVar("T")


class LiveServer:
    """uvicorn serving ``app`` on 127.0.0.1 in a thread; the port is bound before it starts."""

    def __init__(self, app: FastAPI) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> LiveServer:
        self.thread.start()
        wait_for(lambda: self.server.started, "uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class World:
    settings: Settings
    store: Store
    plan: Plan
    clock: ManualClock
    smtp: SmtpServer
    runner: Runner
    server: LiveServer
    runs: list[str]

    @property
    def url(self) -> str:
        return self.server.url

    def mails_to(self, address: str) -> list[EmailMessage]:
        return [m.message() for m in self.smtp.handler.to(address)]

    def wait_mails(self, address: str, n: int) -> list[EmailMessage]:
        return wait_for(
            lambda: (lambda ms: ms if len(ms) >= n else None)(self.mails_to(address)),
            f"{n} mail(s) to {address}",
        )


def smtp_transport(smtp: SmtpServer) -> SmtpTransport:
    return SmtpTransport(smtp.host, smtp.port, tls="none", timeout=10)


@contextmanager
def world(
    tmp_path: Path,
    *,
    now: dt.datetime = SEED_INVITATION_AT,
    existing: tuple[str, ...] = ("early@example.org",),
    run_first: bool = True,
) -> Iterator[World]:
    """The daemon's parts against real servers: existing subscribers already got the
    invitation of the 26 February 2025 session when ``run_first``; the clock stands at ``now``."""
    plan = load_plan(EXAMPLE_PLAN)
    clock = ManualClock(SEED_INVITATION_AT)
    app = FastAPI()
    app.include_router(router)
    runs: list[str] = []
    lock = threading.Lock()
    with (
        SmtpServer() as smtp,
        ZoomSandbox(state_file=tmp_path / "zoom.json", join_host=SEED_JOIN_HOST) as sandbox,
        LiveServer(app) as server,
    ):
        settings = load_settings(
            None,
            var_dir=tmp_path / "var",
            plan=EXAMPLE_PLAN,
            secret_key=SECRET,
            public_url=server.url,
        )
        store = Store(settings.resolved_database_url)
        store.ensure_schema()
        for address in existing:
            store.subscribers.add(
                address, name=None, language="de", status="confirmed", now=clock()
            )
        zoom = wiring.sandbox_zoom(settings, store, clock, sandbox)
        runner = wiring.build_runner(
            settings, plan, store, zoom, clock, transport=smtp_transport(smtp)
        )
        if run_first:
            sandbox.queue_meeting(**SEED_MEETING)  # type: ignore[arg-type]
            runner.run("test")
        clock.set(now)

        def trigger(name: str) -> dict[str, Any]:
            with lock:
                runs.append(name)
                return {"summary": runner.run(name).summary()}

        app.state.ctx = WebContext(
            settings=settings,
            store=store,
            clock=clock,
            plan=lambda: plan,
            transport=lambda: smtp_transport(smtp),
            secret_key=SECRET,
            trigger_run=trigger,
        )
        try:
            yield World(settings, store, plan, clock, smtp, runner, server, runs)
        finally:
            app.state.ctx.close()  # the last mails out, the writer thread ended
            with lock:
                zoom.close()
                store.close()


def text_of(msg: EmailMessage) -> str:
    part = msg.get_body(preferencelist=("plain",))
    assert part is not None
    return str(part.get_content())


def confirm_link(msg: EmailMessage) -> str:
    m = re.search(r"https?://\S+/confirm/[A-Za-z0-9_.-]+", text_of(msg))
    assert m, text_of(msg)
    return m.group(0)


def header_unsubscribe_url(msg: EmailMessage) -> str:
    m = re.search(r"<(https?://[^>]+/unsubscribe/[^>]+)>", str(msg["List-Unsubscribe"]))
    assert m, msg["List-Unsubscribe"]
    return m.group(1)
