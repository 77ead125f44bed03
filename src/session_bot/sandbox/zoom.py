"""A local Zoom: S2S OAuth and the Meetings API on 127.0.0.1, for the demo and for tests.

Laid out like Zoom, so the real client is pointed at it by URL alone:

    POST /oauth/token                      as on zoom.us (form body or query, Basic auth)
    GET  /v2/users/{userId}                as on api.zoom.us/v2
    GET  /v2/users/{userId}/meetings       type, page_size, next_page_token (15 min)
    POST /v2/users/{userId}/meetings       201 + meeting
    GET|PATCH|DELETE /v2/meetings/{id}     200 | 204 (no body) | 204; 404/3001 when unknown
    GET  /v2/meetings/{id}/invitation      200

Field names, status codes and error bodies (``{"code", "message"[, "errors"]}``) follow Zoom's
OpenAPI documents and the facts in shared/zoom/README.md. Where Zoom's behaviour is unverified
(the body for a wrong ``account_id``, an unknown ``next_page_token``, unknown routes) the choice
is marked "unverified" in the modules beside this one. Tests can queue the next meeting's
id/passcode/dial-in number and inject faults (429, 5xx, slow answers, dropped answers, expired
tokens).

The sandbox stands in for an external server, so without a ``clock`` it uses the system clock.

This module is the public face; the parts live beside it: ``zoom_model`` (configuration, state,
persistence), ``zoom_oauth``, ``zoom_meetings`` (users and meetings), ``zoom_documents`` and
``zoom_schema`` (Zoom's answers and request checks), ``zoom_faults``, ``zoom_api`` (routing) and
``zoom_http`` (server and handler).
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import logging
import re
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from session_bot.sandbox.zoom_api import ZoomApi
from session_bot.sandbox.zoom_faults import Fault, FaultQueue
from session_bot.sandbox.zoom_http import SandboxServer
from session_bot.sandbox.zoom_model import QueuedMeeting, SandboxConfig, SandboxState
from session_bot.sandbox.zoom_oauth import ALL_SCOPES
from session_bot.sandbox.zoom_wire import UTC, RecordedRequest

__all__ = ["Fault", "RecordedRequest", "ZoomSandbox", "main", "run_sandbox"]

log = logging.getLogger("session_bot.zoom_sandbox")  # the component name admins filter by


class ZoomSandbox:
    """A faithful local Zoom on 127.0.0.1. Use as a context manager or ``start()``/``stop()``."""

    def __init__(
        self,
        *,
        state_file: Path | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        join_host: str = "zoom.us",
        require: tuple[str, str, str] | None = None,
        token_ttl: int = 3600,
        clock: Callable[[], dt.datetime] | None = None,
        embed_passcode: bool = False,
        users: Sequence[str] | None = None,
        scopes: Sequence[str] | None = None,
        daily_limit: int = 100,
        single_token: bool = False,
        default_timezone: str = "Europe/Berlin",
        default_dial_in_countries: Sequence[str] = ("DE",),
        seed: int | None = None,
        max_page_size: int = 300,
    ) -> None:
        self.state_file = state_file
        self.host = host
        self.port = port
        self.config = SandboxConfig(
            join_host=join_host,
            require=require,
            token_ttl=token_ttl,
            clock=clock or (lambda: dt.datetime.now(UTC)),
            embed_passcode=embed_passcode,
            users=tuple(u.lower() for u in users) if users is not None else None,
            scopes=tuple(scopes) if scopes is not None else ALL_SCOPES,
            daily_limit=daily_limit,
            single_token=single_token,
            default_timezone=default_timezone,
            default_dial_in_countries=tuple(default_dial_in_countries),
            max_page_size=max_page_size,
        )
        self._state = SandboxState(state_file, seed)
        self._faults = FaultQueue()
        self._api = ZoomApi(self.config, self._state, self._faults)
        self._server: SandboxServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle -----------------------------------------------------------------------------

    def start(self) -> ZoomSandbox:
        if self._server is not None:
            return self
        self._server = SandboxServer((self.host, self.port), self._api)
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="zoom-sandbox", daemon=True
        )
        self._thread.start()
        log.info("Zoom sandbox listening on %s", self.base_url)
        return self

    def stop(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        server.stopping.set()
        server.shutdown()
        server.server_close()
        server.close_open_connections()  # keep-alive handlers would serve on after a stop
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._thread = None

    def __enter__(self) -> ZoomSandbox:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        if self._server is None:
            raise RuntimeError("the Zoom sandbox is not running; call start() first")
        return self._server.base_url

    @property
    def oauth_url(self) -> str:
        return self.base_url

    @property
    def api_url(self) -> str:
        return self.base_url + "/v2"

    # --- test controls -------------------------------------------------------------------------

    def queue_meeting(
        self, *, id: int, password: str, dial_in: str, pstn_password: str | None = None
    ) -> None:
        """Hand out this id, passcode and first dial-in number on the next create."""
        with self._state.lock:
            if pstn_password is None:
                pstn_password = password if password.isdigit() else self._state.digits(6)
            self._state.queue.append(QueuedMeeting(int(id), password, dial_in, pstn_password))

    def inject(self, fault: Fault) -> None:
        self._faults.inject(fault)

    def clear_faults(self) -> None:
        self._faults.clear()

    @property
    def meetings(self) -> dict[int, dict[str, Any]]:
        """Current meetings as Zoom's GET returns them (a copy)."""
        with self._state.lock:
            return copy.deepcopy(self._state.meetings)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._state.lock:
            return list(self._state.requests)

    def clear_requests(self) -> None:
        with self._state.lock:
            self._state.requests.clear()

    def count(self, method: str, path_pattern: str) -> int:
        """Recorded requests whose method matches and whose path fully matches the regex."""
        return sum(
            1
            for r in self.requests
            if r.method == method.upper() and re.fullmatch(path_pattern, r.path)
        )

    @property
    def token_calls(self) -> int:
        return self.count("POST", "/oauth/token")

    @property
    def create_calls(self) -> int:
        return self.count("POST", r"/v2/users/[^/]+/meetings")

    def expire_tokens(self) -> None:
        """Every token issued so far is expired from now on."""
        self._api.oauth.expire_all()


# --- command line --------------------------------------------------------------------------------


def run_sandbox(
    port: int,
    state_file: Path,
    join_host: str,
    *,
    host: str = "127.0.0.1",
    stop: threading.Event | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    """Serve until Ctrl-C (or until ``stop`` is set); meetings persist in ``state_file``."""
    sandbox = ZoomSandbox(state_file=state_file, host=host, port=port, join_host=join_host)
    with sandbox:
        echo(f"Zoom sandbox on {sandbox.base_url} (meetings kept in {state_file}).")
        echo("Point session-bot at it with:")
        echo(f"  SESSION_BOT_ZOOM_OAUTH_URL={sandbox.oauth_url}")
        echo(f"  SESSION_BOT_ZOOM_API_URL={sandbox.api_url}")
        echo("Any non-empty account id, client id and secret are accepted. Ctrl-C stops it.")
        waiter = stop or threading.Event()
        try:
            while not waiter.wait(0.5):
                pass
        except KeyboardInterrupt:
            echo("Zoom sandbox stopped.")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m session_bot.sandbox.zoom", description="Serve a local Zoom API."
    )
    parser.add_argument("--port", type=int, default=8099)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--state-file", type=Path, default=Path("var/zoom-sandbox.json"))
    parser.add_argument("--join-host", default="zoom.us")
    args = parser.parse_args(argv)
    run_sandbox(args.port, args.state_file, args.join_host, host=args.host)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
