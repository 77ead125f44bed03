"""The process around the jobs: the single-instance lock, the backends, the web thread, signals.

Signals: SIGHUP reloads the plan and rebuilds the jobs; SIGTERM/SIGINT stop taking new work,
let the message in flight finish (the rest of a mailing stays pending in the store and goes out
right after the restart) and exit 0 within seconds. The handler only records the signal; the
main thread acts on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import FrameType
from typing import TYPE_CHECKING, Any

import uvicorn

from session_bot import preflight, wiring
from session_bot.adapters.db.store import Store
from session_bot.adapters.lock import FileLock
from session_bot.adapters.mail import Transport
from session_bot.adapters.zoom import ZoomClient
from session_bot.core.clock import Clock
from session_bot.core.errors import ConfigError, LockBusy
from session_bot.daemon.deliveries import HaltableDeliveries
from session_bot.sandbox.zoom import ZoomSandbox
from session_bot.settings import Settings

if TYPE_CHECKING:
    from session_bot.web.deps import WebContext

log = logging.getLogger("session_bot.daemon")

STOP_GRACE_SECONDS = 20.0


def daemon_lock(settings: Settings, note: str = "") -> FileLock:
    """The single-instance lock: next to the SQLite file (``var/daemon.lock`` by default)."""
    return wiring.daemon_lock(settings, note)


def acquire_daemon_lock(settings: Settings, note: str = "") -> FileLock:
    lock = daemon_lock(settings, note)
    try:
        # A moment's patience: `session-bot status` looks at the lock for an instant.
        return lock.acquire(timeout=1.0, poll=0.1)
    except LockBusy:
        holder = lock.path.read_text(errors="replace").strip() or "another process"
        raise LockBusy(
            f"another `session-bot serve` is already running on this database ({holder}; lock "
            f"{lock.path}; database {settings.database_display}). Only one daemon may act "
            "on a SQLite database. Stop the other one first (e.g. `systemctl stop session-bot`), "
            "or give this one its own SESSION_BOT_VAR_DIR / SESSION_BOT_DATABASE_URL."
        ) from None


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind before anything starts, so a busy port is a clear error and port 0 works."""
    try:
        family, kind, proto, _, addr = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(addr)
        # Listening from here on: "web: listening on" is true when it is logged, and a visitor
        # who comes before the web thread is up waits in the backlog instead of being refused.
        sock.listen(2048)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another port with "
            "`serve --port` or SESSION_BOT_PORT, or stop what uses it"
        ) from None
    sock.set_inheritable(True)
    return sock


@dataclass
class Backends:
    """What the runs talk to; ``open_backends`` leaves their closing to its exit stack."""

    store: Store
    zoom: ZoomClient
    transport: Transport
    sandbox: ZoomSandbox | None
    zoom_description: str  # for the start line of the log


def open_backends(
    settings: Settings,
    *,
    clock: Clock,
    sandbox: bool,
    shared: bool,
    halted: Callable[[], bool],
    stack: contextlib.ExitStack,
) -> Backends:
    """The store (its deliveries halt with ``halted``), Zoom (or a sandbox of its own), mail."""
    store = Store(settings.resolved_database_url)
    store.deliveries = HaltableDeliveries(store.deliveries, halted)
    stack.callback(store.close)
    store.ensure_schema()
    # `serve --sandbox` is for trying things out, also on the demo's database; `serve` is live.
    preflight.check_purpose(store, settings, "look" if sandbox else "live")
    if sandbox and shared:
        log.warning(
            "--sandbox on PostgreSQL: every instance runs its own Zoom sandbox, so a standby "
            "that takes over cannot see the meetings of the leader's sandbox. For a shared "
            "one, run `session-bot sandbox` once and point SESSION_BOT_ZOOM_API_URL and "
            "SESSION_BOT_ZOOM_OAUTH_URL of every instance at it (without --sandbox)."
        )
    zoom_sandbox: ZoomSandbox | None = None
    if sandbox:
        zoom_sandbox = ZoomSandbox(state_file=wiring.var_path(settings, "zoom-sandbox.json"))
        zoom_sandbox.start()
        stack.callback(zoom_sandbox.stop)
        zoom = wiring.make_zoom(
            settings,
            store,
            clock,
            api_url=zoom_sandbox.api_url,
            oauth_url=zoom_sandbox.oauth_url,
            sandbox_credentials=True,
        )
        description = f"Zoom sandbox at {zoom_sandbox.base_url}"
    else:
        zoom = wiring.make_zoom(settings, store, clock)
        description = f"Zoom API {settings.zoom_api_url}"
    stack.callback(zoom.close)
    transport = wiring.make_transport(settings)
    stack.callback(transport.close)
    return Backends(store, zoom, transport, zoom_sandbox, description)


class QuietServer(uvicorn.Server):
    """uvicorn waking once a second instead of ten times: a daemon should idle quietly."""

    async def main_loop(self) -> None:
        counter = 0
        while not await self.on_tick(counter):
            counter += 10  # on_tick refreshes the Date header whenever counter % 10 == 0
            await asyncio.sleep(1.0)


class WebThread:
    """The web app in a uvicorn server of its own thread, on a socket bound beforehand."""

    def __init__(self) -> None:
        self.url = ""
        self._server: QuietServer | None = None
        self._thread: threading.Thread | None = None
        self._ctx: WebContext | None = None

    def start(
        self, ctx: WebContext, sock: socket.socket, instance: Callable[[], dict[str, Any]]
    ) -> None:
        from session_bot.web.app import create_app

        config = uvicorn.Config(
            create_app(ctx, instance=instance),
            log_config=None,
            access_log=False,
            lifespan="off",
            server_header=False,
            timeout_graceful_shutdown=3,
            # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default; the web app
            # believes it only from SESSION_BOT_TRUSTED_PROXIES (web/client_address.py).
            proxy_headers=False,
        )
        server = QuietServer(config)
        host, port = sock.getsockname()[:2]
        self.url = f"http://{host}:{port}"
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="web")
        thread.start()
        self._server, self._thread, self._ctx = server, thread, ctx
        log.info("web: listening on %s", self.url)

    def stop(self) -> None:
        """Stop the server, then let what its last pages asked for finish (mails: bounded)."""
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=5)
        if self._ctx is not None:
            self._ctx.close()
        self._server = self._thread = self._ctx = None


class Signals:
    """SIGTERM/SIGINT stop the process, SIGHUP reloads the plan."""

    def __init__(self, on_stop: Callable[[], None]) -> None:
        self._on_stop = on_stop  # called in the handler itself: no new messages from then on
        self._wake = threading.Event()
        self._pending: list[int] = []

    @contextlib.contextmanager
    def installed(self) -> Iterator[None]:
        """Our handlers inside the block, the previous ones again after it."""
        previous = {
            sig: signal.signal(sig, self._on_signal)
            for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
        }
        try:
            yield
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum: int, _frame: FrameType | None) -> None:
        # Only flags: the main loop acts outside the signal handler.
        if signum in (signal.SIGTERM, signal.SIGINT):
            self._on_stop()
        self._pending.append(signum)
        self._wake.set()

    def wait_for_stop(self, reload: Callable[[], None]) -> None:
        """Block until SIGTERM or SIGINT; call ``reload`` at every SIGHUP until then."""
        while True:
            self._wake.wait()
            self._wake.clear()
            pending, self._pending = self._pending, []
            if signal.SIGTERM in pending or signal.SIGINT in pending:
                name = "SIGTERM" if signal.SIGTERM in pending else "SIGINT"
                log.info("%s: stopping after the message in flight", name)
                return
            if signal.SIGHUP in pending:
                log.info("SIGHUP: reloading the plan and rebuilding the jobs")
                reload()
