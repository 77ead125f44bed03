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

    @property
    def nothing_to_do(self) -> bool:
        return not self.planned and not (self.delivery.sent or self.delivery.temporary)

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
        if self.held:
            parts.append(f"{len(self.held)} held")
        return ", ".join(parts)
