"""Asking the leader for a run, from a process that cannot run it itself.

A standby runs nothing, but its web pages and the Zoom webhook may need a run (a late invitation
after a confirmation, a Zoom read-back). It leaves a ``RunRequest`` in the key/value table
(``RUN_REQUEST_KEY``); the leader looks for one at every check of its lock and runs the
reconcile. A polled row rather than NOTIFY/LISTEN: it survives a leader change (the next
leader's first run answers it) and works the same on SQLite.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

RUN_REQUEST_KEY = "run_requested"  # kv key of the pending ``RunRequest``


@dataclass(frozen=True)
class RunRequest:
    """A run asked of the leader by a process that could not run it itself: a standby's web
    trigger, or a trigger that found a run already in progress.

    One pending request at most: a newer one replaces the older, and the one run answers both.
    """

    reason: str  # the trigger that asked (confirm | webhook); the leader's run carries it
    by: str  # who asked, for the log: "standby pid 12 on host-b"
    at: dt.datetime

    def encode(self) -> str:
        return json.dumps({"reason": self.reason, "by": self.by, "at": self.at.isoformat()})

    @classmethod
    def decode(cls, raw: str) -> RunRequest:
        """Never fails: whatever the row says, it asks for a run."""
        try:
            data = json.loads(raw)
            return cls(str(data["reason"]), str(data["by"]), dt.datetime.fromisoformat(data["at"]))
        except (ValueError, KeyError, TypeError):
            return cls("requested", "unknown", dt.datetime.fromtimestamp(0, dt.UTC))

    def as_dict(self) -> dict[str, Any]:
        return {"reason": self.reason, "by": self.by, "at": self.at.isoformat()}
