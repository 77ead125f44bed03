"""A session's mailings: rendered, frozen with their recipient list, delivered.

Every language is rendered before a mailing is frozen, so a template error stops us before
anything is recorded. A mailing frozen in this run keeps its rendering for its delivery; one left
open by an earlier run is rendered again from the plan and what was frozen with it: its details
and the meeting it announced (not the session's meeting now, which a cancellation clears or a
re-created meeting replaces). A mailing that cannot be rendered again fails on its own: the other
mailings of the run still go out.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from session_bot.app.delivery import (
    DeliveryPolicy,
    DeliveryReport,
    RateLimits,
    deliver_mailing,
    settle,
)
from session_bot.app.delivery_policy import processes_for
from session_bot.app.personaliser import Personaliser, RecipientFor
from session_bot.app.ports.delivery import DeliveryHelpers, is_helper
from session_bot.app.ports.render import RenderedMail, RendererFor
from session_bot.app.ports.store import Store
from session_bot.app.run_report import RunReport
from session_bot.core.changes import describe
from session_bot.core.clock import Clock
from session_bot.core.errors import PlanError, SessionBotError
from session_bot.core.languages import LANGUAGES
from session_bot.core.meeting import Meeting
from session_bot.core.plan import Occurrence
from session_bot.core.records import DeliveryRow, MailingRow, SessionRow

if TYPE_CHECKING:
    # The transport's protocol moves to session_bot.app.ports.mail.
    from session_bot.app.ports.mail import Transport

# The runner's log name: admins filter on it, and these lines were the runner's before the split.
log = logging.getLogger("session_bot.runner")


@dataclass(frozen=True)
class DeliveryOptions:
    """How a mailing goes out: as which worker, over how many connections, how fast, until when."""

    worker: str = ""
    connections: int = 1
    rate: RateLimits | None = None
    progress: bool = False
    stop: threading.Event | None = None
    retry_wait: dt.timedelta | None = None  # None: the delivery policy's default


@dataclass(frozen=True)
class Sent:
    """What a deliberate send (`session-bot send`) did."""

    mailing: MailingRow
    sequence: int
    resent: bool  # the session had mailings before this one
    delivery: DeliveryReport


class MailingDesk:
    """Renders, freezes and delivers the mailings of the sessions of one plan."""

    def __init__(
        self,
        *,
        store: Store,
        renderer_for: RendererFor,
        transport: Transport,
        clock: Clock,
        sender: str,
        recipient_for: RecipientFor,
        message_id_domain: str,
        occurrence_for: Callable[[str], Occurrence],
        helpers: DeliveryHelpers | None = None,
    ) -> None:
        self._store = store
        self._renderer_for = renderer_for
        self._transport = transport
        self._clock = clock
        self._sender = sender
        self._recipient_for = recipient_for
        self._message_id_domain = message_id_domain
        self._occurrence_for = occurrence_for
        self._rendered: dict[int, dict[str, RenderedMail]] = {}
        # Worker processes for a large mailing; None: every mailing in this process.
        self.helpers = helpers

    def invited(self, row: SessionRow) -> bool:
        return any(m.kind == "invitation" for m in self._store.mailings.of_session(row.id))

    def freeze(
        self,
        occ: Occurrence,
        row: SessionRow,
        kind: str,
        sequence: int,
        meeting: Meeting | None,
        report: RunReport,
        *,
        fields: list[str] | None = None,
        announce: bool = False,
    ) -> None:
        """Render (every language, so a template error stops us first), then freeze the mailing."""
        now = self._clock()
        # The meeting this mailing announces, so that its later deliveries say the same.
        details: dict[str, Any] = {"meeting": meeting.to_json() if meeting else None}
        if fields:
            details["changes"] = {lang: describe(fields, occ, lang) for lang in LANGUAGES}
        # The cancellation's reason comes from the plan, in each recipient's language.
        rendered = self._render_all(kind, occ, meeting, sequence, now, details)
        mailing_id, created = self._store.mailings.freeze(row.id, kind, sequence, now)
        if created:
            # The same run delivers it next: keep the rendering instead of doing it twice.
            self._rendered[mailing_id] = rendered
        if created:
            self._store.mailings.set_details(mailing_id, details)
        if announce:
            self._store.sessions.record_announcement(
                row.id, occ.announced_fingerprint(), sequence, now
            )
        report.mailings_frozen += int(created)

    def send(
        self,
        occ: Occurrence,
        row: SessionRow,
        kind: str,
        meeting: Meeting,
        now: dt.datetime,
        options: DeliveryOptions,
    ) -> Sent:
        """Freeze ``kind`` anew for every subscriber and deliver it now: a deliberate re-send."""
        earlier = self._store.mailings.of_session(row.id)
        # A new sequence for every deliberate send keeps the calendar SEQUENCE rising.
        sequence = max([row.sequence, *(m.sequence + 1 for m in earlier)])
        details: dict[str, Any] = {"meeting": meeting.to_json()}
        self._render_all(kind, occ, meeting, sequence, now, details)  # a template error stops us
        mailing_id, _ = self._store.mailings.freeze(row.id, kind, sequence, now)
        self._store.mailings.set_details(mailing_id, details)
        announced = (
            occ.announced_fingerprint()
            if kind == "invitation" or row.announced is None
            else row.announced
        )
        self._store.sessions.record_announcement(row.id, announced, sequence, now)
        mailing = self._store.mailings.get(mailing_id)
        return Sent(mailing, sequence, bool(earlier), self.deliver(mailing, options))

    def deliver(self, mailing: MailingRow, options: DeliveryOptions) -> DeliveryReport:
        """Push the mailing's due delivery rows through the transport."""
        try:
            occ = self._occurrence_for(mailing.session_key)
        except PlanError as exc:
            log.error(
                "mailing %s: its session is gone from the plan (%s); not sent", mailing.id, exc
            )
            return DeliveryReport(stuck=[f"mailing {mailing.id} ({mailing.kind}): {exc}"])
        now = self._clock()
        try:
            rendered = self._rendered.pop(mailing.id, None) or self._render_again(mailing, occ, now)
        except SessionBotError as exc:
            log.error(
                "mailing %s (%s %s) cannot be rendered: %s; not sent",
                mailing.id,
                mailing.kind,
                mailing.session_key,
                exc,
            )
            return DeliveryReport(stuck=[f"mailing {mailing.id} ({mailing.kind}): {exc}"])
        log.info("delivering mailing %s (%s, %s)", mailing.id, mailing.kind, mailing.session_key)
        return self.push(mailing, self._personaliser(mailing, occ, rendered, now), options)

    def push(
        self,
        mailing: MailingRow,
        personalise: Callable[[DeliveryRow], bytes],
        options: DeliveryOptions,
    ) -> DeliveryReport:
        """The mailing's due rows through the ledger (session mails and announcements alike);
        a large one in several processes (``app.ports.delivery``)."""
        helpers = self.helpers
        processes = 1
        if helpers is not None and not is_helper(options.worker):
            counts = self._store.mailings.delivery_counts(mailing.id)
            processes = processes_for(
                counts.get("pending", 0) + counts.get("sending", 0),
                options.connections,
                options.rate,
                most=helpers.processes,
                threshold=helpers.threshold,
            )
        if helpers is None or processes == 1:
            return self._deliver_here(mailing, personalise, options, options.connections)
        # The provider's connection limit is shared out, not multiplied.
        each = options.connections // processes
        own = options.connections - each * (processes - 1)
        log.info(
            "mailing %s: %d processes deliver it (%d connection(s) each, %d here)",
            mailing.id,
            processes,
            each,
            own,
        )
        started = self._clock()
        run = helpers.start(
            mailing.id,
            processes - 1,
            worker=options.worker,
            connections=each,
            personalise=personalise,
        )
        try:
            report = self._deliver_here(mailing, personalise, options, own)
        except BaseException:
            run.stop()
            try:
                run.wait()
            except SessionBotError as exc:
                log.warning("mailing %s: a helper process failed too: %s", mailing.id, exc)
            raise
        for other in run.wait(options.stop):
            report.add(other)
        report.seconds = (self._clock() - started).total_seconds()
        settle(self._store, mailing.id, report, clock=self._clock, worker=options.worker)
        log.info("mailing %s, all processes: %s", mailing.id, report.summary())
        return report

    def _deliver_here(
        self,
        mailing: MailingRow,
        personalise: Callable[[DeliveryRow], bytes],
        options: DeliveryOptions,
        connections: int,
    ) -> DeliveryReport:
        return deliver_mailing(
            self._store,
            self._transport,
            mailing.id,
            personalise,
            sender=self._sender,
            clock=self._clock,
            worker=options.worker,
            connections=connections,
            rate=options.rate,
            progress=options.progress,
            stop=options.stop,
            policy=(
                DeliveryPolicy(linger=options.retry_wait)
                if options.retry_wait is not None
                else None
            ),
        )

    def _render_again(
        self, mailing: MailingRow, occ: Occurrence, now: dt.datetime
    ) -> dict[str, RenderedMail]:
        details = self._store.mailings.details(mailing.id)
        if "meeting" in details:
            frozen = details["meeting"]
            meeting = Meeting.from_json(frozen) if frozen else None
        else:  # frozen before the meeting was kept with the mailing
            row = self._store.sessions.get(mailing.session_key)
            meeting = Meeting.from_json(row.meeting_json) if row and row.meeting_json else None
        if mailing.kind == "cancellation":
            meeting = None
        return self._render_all(mailing.kind, occ, meeting, mailing.sequence, now, details)

    def _render_all(
        self,
        kind: str,
        occ: Occurrence,
        meeting: Meeting | None,
        sequence: int,
        now: dt.datetime,
        details: dict[str, Any],
    ) -> dict[str, RenderedMail]:
        renderer = self._renderer_for(occ.series)
        changes = details.get("changes", {})
        return {
            lang: renderer.render(
                kind,
                occ,
                meeting,
                sequence=sequence,
                now=now,
                language=lang,
                reason=details.get("reason"),
                changes=changes.get(lang),
            )
            for lang in LANGUAGES
        }

    def _personaliser(
        self,
        mailing: MailingRow,
        occ: Occurrence,
        rendered: dict[str, RenderedMail],
        now: dt.datetime,
    ) -> Personaliser:
        return Personaliser(
            mailing,
            rendered,
            occ.series.language,
            self._recipient_for,
            self._message_id_domain,
            now,
        )
