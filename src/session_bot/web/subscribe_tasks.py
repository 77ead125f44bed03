"""The work a subscriber page leaves for after its response: the confirmation mail, the notice
to an already subscribed address's owner, a run for a late invitation.

Done after the response (the mails by ``consent_outbox``'s threads, through the transport
each keeps), so the time the page takes reveals nothing about the address; a failure is logged
(the visitor already has the page) and nothing is retried.
"""

from __future__ import annotations

import logging

from session_bot.app.consent_mails import mail_confirmation, owner_notice
from session_bot.app.double_opt_in import SubscribeOutcome
from session_bot.app.ports.subscribe import MailSender
from session_bot.core.errors import SessionBotError
from session_bot.web.deps import WebContext

log = logging.getLogger("session_bot.web_subscribe")


def send_confirmation_mail(
    ctx: WebContext, outcome: SubscribeOutcome, transport: MailSender
) -> bool:
    """False when the transport failed (it may be broken); a refusal is logged, not a failure."""
    try:
        result = mail_confirmation(ctx.consent_mail(), transport, outcome, ctx.clock())
    except SessionBotError as exc:
        log.error("confirmation mail for subscriber %s not sent: %s", outcome.subscriber_id, exc)
        return False
    if result.outcome != "sent":
        log.warning(
            "confirmation mail for subscriber %s not accepted: %s %s",
            outcome.subscriber_id,
            result.code,
            result.response,
        )
    return True


def send_owner_notice(ctx: WebContext, outcome: SubscribeOutcome, transport: MailSender) -> bool:
    try:
        setup = ctx.consent_mail()
        message = owner_notice(setup, ctx.secret_key, outcome, ctx.clock())
        transport.send(setup.envelope_sender, outcome.email, message)
    except SessionBotError as exc:
        log.error("re-submission notice for subscriber %s not sent: %s", outcome.subscriber_id, exc)
        return False
    return True


def run_for_late_invitation(ctx: WebContext) -> None:
    if ctx.trigger_run is None:
        return
    try:
        ctx.trigger_run("confirm")
    except SessionBotError as exc:
        # The scheduled run picks the late invitation up; nothing is lost.
        log.warning("run after a confirmation did not happen now: %s", exc)
