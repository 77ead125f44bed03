"""What web routes need, reached through ``Depends`` so tests swap it without patching."""

from __future__ import annotations

import datetime as dt
import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, Request

from session_bot import wiring
from session_bot.adapters.render.confirmation import ConfirmationMails
from session_bot.adapters.render.invitations import MailConfig, Renderer
from session_bot.app.consent_mails import ConsentMailSetup
from session_bot.app.double_opt_in import SubscribeOutcome, SubscribeRequest, record_requests
from session_bot.app.pending import PendingDesk
from session_bot.app.plan_book import PlanBook
from session_bot.app.ports.render import RenderedMail
from session_bot.app.ports.store import Store
from session_bot.app.ports.subscribe import MailSender
from session_bot.core.languages import LANGUAGES
from session_bot.core.plan import Plan
from session_bot.core.plan.localize import localized_title
from session_bot.settings import Settings
from session_bot.web.consent_outbox import ConsentOutbox
from session_bot.web.writer import BatchWriter

ConsentMailFor = Callable[[], ConsentMailSetup]
"""Who the consent mails come from under the current plan (it may have been reloaded)."""


@dataclass
class WebContext:
    """Everything the web app uses; built once by the daemon (or a test) and put on app.state."""

    settings: Settings
    store: Store
    clock: Callable[[], dt.datetime]
    plan: Callable[[], Plan]  # the current plan (reloaded by the daemon on change)
    transport: Callable[[], MailSender]  # a transport for single mails (confirmations, notices)
    secret_key: str
    # Triggers a reconcile run (the daemon's runner, under its lock); returns a summary dict.
    # Where the daemon cannot run now (a standby, a run in progress) it answers at once and
    # leaves a run request that the leader answers within seconds.
    trigger_run: Callable[[str], dict[str, Any]] | None = None
    role: str = "leader"  # leader | standby (PostgreSQL) — shown by /healthz
    # None: built from ``settings`` and the plan's first series, as the runner's mails are.
    consent_mail_for: ConsentMailFor | None = None
    # What keeps this process from doing its job although it answers (e.g. the plan on disk is
    # invalid), one sentence each; any makes /healthz answer 503 so monitoring notices.
    problems: Callable[[], list[str]] | None = None
    # The plan's file when it is managed as one (SESSION_BOT_PLAN / --plan): the console shows
    # it read-only. None: the plan lives in the database and the console edits it.
    plan_file: Path | None = None
    # Called after the console saved a plan revision: this process reloads at once (the other
    # server notices the new revision at its next plan check).
    plan_saved: Callable[[], None] | None = None
    # Sends the subscriber pages' mails after their responses; the daemon brings one and
    # closes it after the web server. None: one is made at the first mail (``mails()``).
    outbox: ConsentOutbox | None = None
    # The thread of the subscribe form's transactions; made at first use, closed like the outbox.
    sign_up_writer: BatchWriter[SubscribeRequest, SubscribeOutcome] | None = None
    _lazy: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def mails(self) -> ConsentOutbox:
        with self._lazy:
            if self.outbox is None:
                self.outbox = ConsentOutbox(self.transport)
            return self.outbox

    def sign_ups(self) -> BatchWriter[SubscribeRequest, SubscribeOutcome]:
        with self._lazy:
            if self.sign_up_writer is None:
                self.sign_up_writer = BatchWriter(
                    functools.partial(record_requests, self.store, self.secret_key)
                )
            return self.sign_up_writer

    def close(self) -> None:
        """After the server stopped: the last transactions finish, the last mails go out."""
        if self.sign_up_writer is not None:
            self.sign_up_writer.close()
        if self.outbox is not None:
            self.outbox.close()

    def plan_book(self) -> PlanBook:
        return PlanBook(
            self.store, self.clock, file=str(self.plan_file) if self.plan_file else None
        )

    def pending(self) -> PendingDesk:
        return PendingDesk(self.store, self.clock, self.plan)

    def consent_mail(self) -> ConsentMailSetup:
        if self.consent_mail_for is not None:
            return self.consent_mail_for()
        return consent_mail_from_settings(self.settings, self.plan())


def consent_mail_from_settings(settings: Settings, plan: Plan) -> ConsentMailSetup:
    """The consent mails' sender, links and renderer, configured like the runner's mails."""
    series = plan.series[0]
    config = wiring.mail_config(settings, series)
    return ConsentMailSetup(
        renderer=_LazyRenderer(config),
        series_title=series.title,
        titles={lang: localized_title(series, lang) for lang in LANGUAGES},
        from_name=config.from_name,
        from_email=config.from_email,
        envelope_sender=wiring.envelope_sender(settings, plan),
        public_url=config.public_url,
        message_id_domain=config.message_id_domain,
    )


class _LazyRenderer:
    """The series' renderer, built when a confirmation is rendered: the notice needs none, so a
    template or DKIM problem does not stop it."""

    def __init__(self, config: MailConfig) -> None:
        self.config = config

    def render_confirmation(
        self, *, language: str, confirm_url: str, series_title: str, now: dt.datetime
    ) -> RenderedMail:
        return _confirmations(self.config).render_confirmation(
            language=language, confirm_url=confirm_url, series_title=series_title, now=now
        )


@functools.lru_cache(maxsize=8)
def _renderer(config: MailConfig) -> Renderer:
    # Loading the templates (and checking a DKIM key) once per configuration, not per mail.
    return Renderer(config)


@functools.lru_cache(maxsize=8)
def _confirmations(config: MailConfig) -> ConfirmationMails:
    # The confirmation pre-rendered once per language and title: a request fills in its link.
    return ConfirmationMails(_renderer(config))


async def get_context(request: Request) -> WebContext:
    # async: FastAPI runs a plain ``def`` dependency in its thread pool, a hand-off to a thread
    # and back on every request, for one attribute lookup.
    ctx: WebContext = request.app.state.ctx
    return ctx


Ctx = Annotated[WebContext, Depends(get_context)]
