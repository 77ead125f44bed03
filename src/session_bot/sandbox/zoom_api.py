"""The Zoom sandbox behind its HTTP plumbing: records requests, applies faults, routes each one to
OAuth or to an authenticated API operation, and turns it into a ``Reply``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import unquote

from session_bot.sandbox.zoom_faults import ANSWERING_KINDS, Fault, FaultQueue, fault_reply
from session_bot.sandbox.zoom_meetings import Meetings
from session_bot.sandbox.zoom_model import SandboxConfig, SandboxState
from session_bot.sandbox.zoom_oauth import OAuth
from session_bot.sandbox.zoom_wire import RecordedRequest, Reply, zoom_error


class ZoomApi:
    """What the request handler threads call; safe to call from several at once."""

    def __init__(self, config: SandboxConfig, state: SandboxState, faults: FaultQueue) -> None:
        self.state = state
        self.faults = faults
        self.oauth = OAuth(config, state)
        self.meetings = Meetings(config, state)
        m = self.meetings
        self._ops: dict[str, Callable[..., Reply]] = {
            "user": m.op_user,
            "list": m.op_list,
            "create": m.op_create,
            "get": m.op_get,
            "update": m.op_update,
            "delete": m.op_delete,
            "invitation": m.op_invitation,
        }

    def record(self, rec: RecordedRequest) -> None:
        with self.state.lock:
            self.state.requests.append(rec)

    def answer(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
        base_url: str,
    ) -> Reply:
        """The answer to a request, if it gets one (dropping and delaying is the handler's)."""
        if fault is not None and fault.kind in ANSWERING_KINDS:
            return fault_reply(fault, method, path)
        try:
            return self.dispatch(method, path, query, headers, body, fault, base_url)
        except Reply as r:
            return r

    def dispatch(
        self,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: dict[str, str],
        body: bytes,
        fault: Fault | None,
        base_url: str,
    ) -> Reply:
        if path == "/oauth/token":
            if method != "POST":
                raise zoom_error(405, 405, "Method Not Allowed")
            return self.oauth.token(query, headers, body, api_url=base_url)
        if not path.startswith("/v2/"):
            raise zoom_error(404, 404, "Not Found")  # body unverified
        parts = [unquote(p) for p in path[len("/v2/") :].split("/")]
        route = self.route(method, parts)
        if route is None:
            raise zoom_error(404, 404, "Not Found")  # body unverified
        name, args = route
        with self.state.lock:
            if fault is not None and fault.kind == "expire_token":
                self.oauth.expire_presented(headers)
            self.oauth.check(headers, name)
            return self._ops[name](*args, query=query, body=body, headers=headers)

    @staticmethod
    def route(method: str, parts: list[str]) -> tuple[str, tuple[Any, ...]] | None:
        if len(parts) == 2 and parts[0] == "users" and method == "GET":
            return "user", (parts[1],)
        if len(parts) == 3 and parts[0] == "users" and parts[2] == "meetings":
            return {"GET": ("list", (parts[1],)), "POST": ("create", (parts[1],))}.get(method)
        if len(parts) >= 2 and parts[0] == "meetings":
            mid = parts[1]  # checked after authentication, in Meetings.meeting()
            if len(parts) == 2:
                ops = {"GET": "get", "PATCH": "update", "DELETE": "delete"}
                return (ops[method], (mid,)) if method in ops else None
            if len(parts) == 3 and parts[2] == "invitation" and method == "GET":
                return "invitation", (mid,)
        return None
