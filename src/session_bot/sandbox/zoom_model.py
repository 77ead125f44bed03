"""The Zoom sandbox's account: how it is set up (``SandboxConfig``) and what it remembers
(``SandboxState``). Meetings, issued tokens and daily counts outlive a restart in the state file;
page tokens, queued meetings and recorded requests live as long as the process."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from session_bot.sandbox.zoom_wire import RecordedRequest

_TOKEN_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"


@dataclass(frozen=True)
class SandboxConfig:
    """The account's behaviour, as ``ZoomSandbox``'s keyword arguments set it."""

    join_host: str
    require: tuple[str, str, str] | None
    token_ttl: int
    clock: Callable[[], dt.datetime]
    embed_passcode: bool
    users: tuple[str, ...] | None
    scopes: tuple[str, ...]
    daily_limit: int
    single_token: bool
    default_timezone: str
    default_dial_in_countries: tuple[str, ...]
    max_page_size: int


@dataclass
class QueuedMeeting:
    """What the next create hands out instead of random values."""

    id: int
    password: str
    dial_in: str
    pstn_password: str


class SandboxState:
    """Everything the sandbox remembers. Handler threads share it: hold ``lock`` to touch it."""

    def __init__(self, state_file: Path | None, seed: int | None) -> None:
        self.state_file = state_file
        self.lock = threading.RLock()
        self.rng = random.Random(seed)
        self.meetings: dict[int, dict[str, Any]] = {}
        self.tokens: dict[str, dict[str, Any]] = {}  # sha256(token) -> expires_at, client
        self.daily: dict[str, int] = {}  # "user|YYYY-MM-DD" -> create/update count
        self.pages: dict[str, dict[str, Any]] = {}
        self.queue: list[QueuedMeeting] = []
        self.requests: list[RecordedRequest] = []
        self.load()

    def load(self) -> None:
        if self.state_file is None or not self.state_file.exists():
            return
        data = json.loads(self.state_file.read_text(encoding="utf-8"))
        self.meetings = {int(k): v for k, v in data.get("meetings", {}).items()}
        self.tokens = dict(data.get("tokens", {}))
        self.daily = {str(k): int(v) for k, v in data.get("daily", {}).items()}

    def save(self) -> None:
        if self.state_file is None:
            return
        data = {
            "version": 1,
            "meetings": {str(k): v for k, v in self.meetings.items()},
            "tokens": self.tokens,
            "daily": self.daily,
        }
        self.state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.state_file.with_name(self.state_file.name + ".tmp")
        tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")
        os.replace(tmp, self.state_file)

    def new_id(self) -> int:
        while True:
            mid = self.rng.randint(71_000_000_000, 99_999_999_999)
            if mid not in self.meetings:
                return mid

    def digits(self, n: int) -> str:
        return "".join(self.rng.choice("0123456789") for _ in range(n))

    def token_text(self, n: int) -> str:
        return "".join(self.rng.choice(_TOKEN_ALPHABET) for _ in range(n))
