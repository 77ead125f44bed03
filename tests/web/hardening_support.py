"""Shared pieces of the issue-14 hardening tests: the app served like the daemon serves it, raw
HTTP for bodies no ordinary client sends, and signed Zoom deliveries.

Holds no tests itself.
"""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from session_bot import wiring
from session_bot.adapters.clock import ManualClock
from session_bot.adapters.db.store import Store
from session_bot.adapters.mail import MaildirTransport
from session_bot.core.plan import Plan
from session_bot.settings import Settings
from session_bot.web.app import create_app
from session_bot.web.deps import WebContext
from session_bot.web.zoom_webhook import sign
from tests.conftest import SEED_INVITATION_AT
from tests.support.settings import SECRET_KEY, make_settings
from tests.support.waiting import wait_for

HOOK_SECRET = "zoom-webhook-secret-123"


class CountingApp:
    """Wraps the app from outside and counts the body bytes it took from the server: what the
    app read, however it read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.read = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def counted() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                self.read += len(message.get("body", b""))
            return message

        await self.app(scope, counted, send)


class DaemonLikeServer:
    """uvicorn as the daemon runs it (no log config of its own, so records reach caplog), but
    with ``proxy_headers=False`` — the setting daemon/lifecycle.py needs (see client_address)."""

    def __init__(self, app: ASGIApp) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> DaemonLikeServer:
        self.thread.start()
        wait_for(lambda: self.server.started, "uvicorn to start")
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()


@dataclass
class Served:
    url: str
    port: int
    ctx: WebContext
    store: Store
    clock: ManualClock
    counting: CountingApp
    runs: list[str] = field(default_factory=list)


def hardening_settings(tmp_path: Path, **overrides: Any) -> Settings:
    return make_settings(tmp_path, zoom_webhook_secret=HOOK_SECRET, **overrides)


@contextmanager
def serve(
    settings: Settings,
    plan: Plan,
    *,
    store: Store | None = None,
    clock: ManualClock | None = None,
    problems: Callable[[], list[str]] | None = None,
) -> Iterator[Served]:
    """``create_app`` with a context like the daemon's; runs are only recorded."""
    own_store = store is None
    store = store or wiring.open_store(settings)
    clock = clock or ManualClock(SEED_INVITATION_AT)
    runs: list[str] = []

    def trigger(reason: str) -> dict[str, Any]:
        runs.append(reason)
        return {"ok": True}

    ctx = WebContext(
        settings=settings,
        store=store,
        clock=clock,
        plan=lambda: plan,
        transport=lambda: MaildirTransport(settings.resolved_outbox),
        secret_key=SECRET_KEY,
        trigger_run=trigger,
        problems=problems,
    )
    counting = CountingApp(create_app(ctx))
    try:
        with DaemonLikeServer(counting) as server:
            yield Served(server.url, server.port, ctx, store, clock, counting, runs)
    finally:
        ctx.close()  # the writer thread and the mail thread end with the server
        if own_store:
            store.close()


def signed_headers(clock: ManualClock, body: bytes, *, age: int = 0) -> dict[str, str]:
    ts = str(int(clock().timestamp()) - age)
    return {
        "x-zm-request-timestamp": ts,
        "x-zm-signature": sign(HOOK_SECRET, ts, body),
        "content-type": "application/json",
    }


def event_body(event: Any) -> bytes:
    return json.dumps(event).encode()


@dataclass
class RawAnswer:
    status: int | None
    head: bytes
    sent: int


def raw_post(
    port: int,
    path: str,
    headers: dict[str, str],
    *,
    total: int,
    chunked: bool,
    chunk: int = 64 * 1024,
    timeout: float = 10.0,
) -> RawAnswer:
    """POST ``total`` bytes (chunked, or under a Content-Length) and stop sending as soon as an
    answer arrives or the server stops taking data; the answer is read by a thread of its own so
    that a reset after it does not lose it."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines.append("Transfer-Encoding: chunked" if chunked else f"Content-Length: {total}")
    got = bytearray()
    done = threading.Event()

    def read() -> None:
        try:
            while b"\r\n\r\n" not in got:
                data = sock.recv(65536)
                if not data:
                    break
                got.extend(data)
        except OSError:
            pass
        done.set()

    reader = threading.Thread(target=read, daemon=True)
    sent = 0
    try:
        sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        reader.start()
        piece = b"x" * chunk
        while sent < total and not done.is_set():
            data = (b"%x\r\n" % chunk + piece + b"\r\n") if chunked else piece
            sock.sendall(data)
            sent += chunk
        if chunked and not done.is_set():
            sock.sendall(b"0\r\n\r\n")
    except OSError:
        pass  # the server closed the connection: its answer, if any, is with the reader
    done.wait(timeout)
    sock.close()
    head = bytes(got)
    status = int(head.split(b" ", 2)[1]) if head.startswith(b"HTTP/1.1 ") else None
    return RawAnswer(status, head, sent)
