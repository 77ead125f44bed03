"""HTTP plumbing of the Zoom sandbox: a threading server that sleeps until there is work, and the
handler that turns HTTP requests into ``ZoomApi`` calls and its replies into HTTP answers."""

from __future__ import annotations

import contextlib
import json
import logging
import secrets
import selectors
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from session_bot.sandbox.zoom_api import ZoomApi
from session_bot.sandbox.zoom_faults import DROPPING_KINDS
from session_bot.sandbox.zoom_wire import JSON_TYPE, RecordedRequest, Reply, rate_category

# The name the sandbox logged under before it was split into modules; log filters may use it.
log = logging.getLogger("session_bot.zoom_sandbox")  # the component name admins filter by


class SandboxServer(ThreadingHTTPServer):
    """Serves ``api`` on ``addr``; ``base_url`` is where clients reach it.

    ``serve_forever`` blocks in select() with no timeout and ``shutdown`` wakes it through a
    socket pair. The stdlib loop polls instead: a stop waited up to one poll interval (0.5 s, in
    every test teardown), and a shorter interval would cost idle CPU in the daemon.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr: tuple[str, int], api: ZoomApi) -> None:
        self.api = api
        self.stopping = threading.Event()  # set by the owner first: delayed answers give up
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        self._stop_asked = threading.Event()
        self._stopped = threading.Event()
        super().__init__(addr, _Handler)
        self._wake_recv, self._wake_send = socket.socketpair()
        self.base_url = f"http://{addr[0]}:{self.server_port}"

    def serve_forever(self, poll_interval: float = 0.5) -> None:
        """Handle connections until ``shutdown()``; ``poll_interval`` is unused (nothing polls)."""
        self._stopped.clear()
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.socket, selectors.EVENT_READ)
                selector.register(self._wake_recv, selectors.EVENT_READ)
                while not self._stop_asked.is_set():
                    ready = {key.fileobj for key, _ in selector.select()}
                    if self._stop_asked.is_set():
                        break
                    if self._wake_recv in ready:
                        self._wake_recv.recv(64)  # left by an earlier shutdown(); would spin
                    if self.socket in ready:
                        self._accept()
                    self.service_actions()
        finally:
            self._stop_asked.clear()
            self._stopped.set()

    def shutdown(self) -> None:
        """Stop ``serve_forever`` and wait until it has returned; call from another thread."""
        self._stop_asked.set()
        with contextlib.suppress(OSError):
            self._wake_send.send(b"\0")
        self._stopped.wait()

    def server_close(self) -> None:
        super().server_close()
        self._wake_recv.close()
        self._wake_send.close()

    def _accept(self) -> None:
        # BaseServer._handle_request_noblock, which is private to socketserver.
        try:
            request, client_address = self.get_request()
        except OSError:
            return
        if not self.verify_request(request, client_address):
            self.shutdown_request(request)
            return
        try:
            self.process_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
            self.shutdown_request(request)
        except BaseException:
            self.shutdown_request(request)
            raise

    def track(self, conn: socket.socket, *, open: bool) -> None:
        with self._open_lock:
            (self._open.add if open else self._open.discard)(conn)

    def close_open_connections(self) -> None:
        with self._open_lock:
            conns, self._open = list(self._open), set()
        for conn in conns:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)

    def handle_error(self, request: Any, client_address: Any) -> None:
        # Clients that give up (timeouts in tests) reset connections; that is expected here.
        log.debug("Zoom sandbox: connection from %s ended abruptly", client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes
    server: SandboxServer
    server_version = "ZoomSandbox/1.0"
    sys_version = ""

    def setup(self) -> None:
        super().setup()
        self.server.track(self.connection, open=True)

    def finish(self) -> None:
        self.server.track(self.connection, open=False)
        with contextlib.suppress(OSError):
            super().finish()

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("Zoom sandbox: " + format, *args)

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def _handle(self) -> None:
        server, api = self.server, self.server.api
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        path = split.path
        query = parse_qs(split.query, keep_blank_values=True)
        headers = {k.lower(): v for k, v in self.headers.items()}
        rec = RecordedRequest(self.command, path, split.query, query, _redacted(headers), body)
        api.record(rec)
        fault = api.faults.take(self.command, path)
        if fault is not None:
            rec.fault = fault.kind
        reply = api.answer(self.command, path, query, headers, body, fault, server.base_url)
        if fault is not None and fault.kind in DROPPING_KINDS:
            self.close_connection = True  # processed, but the answer never leaves
            return
        if fault is not None and fault.kind == "slow" and server.stopping.wait(fault.delay):
            self.close_connection = True  # shutting down: do not answer late
            return
        self._write(rec, reply, path)

    def _write(self, rec: RecordedRequest, reply: Reply, path: str) -> None:
        headers = dict(reply.headers)
        data = b""
        if isinstance(reply.body, str):
            data = reply.body.encode()
            headers["Content-Type"] = "text/html;charset=utf-8"
        elif reply.body is not None:
            data = json.dumps(reply.body, ensure_ascii=False).encode()
            headers["Content-Type"] = JSON_TYPE
        if path.startswith("/v2/"):
            headers.setdefault("X-RateLimit-Category", rate_category(self.command, path))
        headers["x-zm-trackingid"] = "sandbox_" + secrets.token_hex(8)
        headers["Content-Length"] = str(len(data))
        rec.status = reply.status
        rec.response_headers = headers
        rec.response_body = data
        try:
            self.send_response(reply.status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.end_headers()
            if data:
                self.wfile.write(data)
        except OSError:
            self.close_connection = True  # the client has gone (e.g. it timed out)


def _redacted(headers: dict[str, str]) -> dict[str, str]:
    """The headers as recorded: a test may print them, so the credentials stay out."""
    shown = dict(headers)
    if "authorization" in shown:
        scheme = shown["authorization"].split(" ", 1)[0]
        shown["authorization"] = f"{scheme} [redacted]"
    return shown
