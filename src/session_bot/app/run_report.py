"""What one reconcile run did: the runner fills it in, its callers print and record it."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

from session_bot.app.delivery import DeliveryReport


@dataclass
class RunReport:
    trigger: str
    started_at: dt.datetime
    planned: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    held: list[str] = field(default_factory=list)
    meetings_created: int = 0
    meetings_adopted: int = 0
    mailings_frozen: int = 0
    delivery: DeliveryReport = field(default_factory=DeliveryReport)
    dry_run: bool = False
    error: str | None = None  # why the run stopped before its end

    @property
    def outcome(self) -> str:
        """ok: everything due is done and delivered. incomplete: mail is left for a retry.
        partial: some mail failed for good or a mailing could not go out. error: the run stopped."""
        d = self.delivery
        if self.error is not None:
            return "error"
        if d.permanent or d.stuck:
            return "partial"
        if d.temporary:
            return "incomplete"
        return "ok"

    @property
    def problems(self) -> list[str]:
        """Why the run is not ``ok``, in a line each (for the log, `status` and the CLI)."""
        d = self.delivery
        lines = [f"stopped: {self.error}"] if self.error else []
        lines += [f"could not be sent: {why}" for why in d.stuck]
        if d.permanent:
            first = f" (first: {d.failures[0]})" if d.failures else ""
            lines.append(f"{d.permanent} message(s) refused for good{first}")
        if d.temporary:
            when = (
                f" from {d.next_attempt_at.isoformat(timespec='minutes')}"
                if d.next_attempt_at
                else ""
            )
            lines.append(f"{d.temporary} message(s) not delivered yet, retried{when}")
        return lines

    @property
    def nothing_to_do(self) -> bool:
        return not self.planned and not (self.delivery.sent or self.delivery.temporary)

    def counts(self) -> dict[str, int]:
        """What the run did, as numbers: the console words them in the reader's language
        (``summary`` is the log's English line)."""
        d = self.delivery
        return {
            "meetings_created": self.meetings_created,
            "meetings_adopted": self.meetings_adopted,
            "mailings_frozen": self.mailings_frozen,
            "sent": d.sent,
            "temporary": d.temporary,
            "failed": d.permanent,
            "stuck": len(d.stuck),
            "held": len(self.held),
            "stopped": int(self.error is not None),
        }

    def summary(self) -> str:
        if self.dry_run:
            return "dry run: " + ("; ".join(self.planned) if self.planned else "nothing due")
        parts = [
            f"{len(self.done)} action(s)",
            f"{self.meetings_created} meeting(s) created",
            f"{self.meetings_adopted} adopted",
            f"{self.mailings_frozen} mailing(s) frozen",
            f"{self.delivery.sent} message(s) sent",
        ]
        if self.delivery.temporary:
            parts.append(f"{self.delivery.temporary} to retry")
        if self.delivery.permanent:
            parts.append(f"{self.delivery.permanent} failed")
        if self.delivery.stuck:
            parts.append(f"{len(self.delivery.stuck)} mailing(s) could not be sent")
        if self.held:
            parts.append(f"{len(self.held)} held")
        summary = ", ".join(parts)
        if self.outcome != "ok":
            summary += " — " + "; ".join(self.problems)
        return summary
