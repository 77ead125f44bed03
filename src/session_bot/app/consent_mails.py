"""The two mails of the consent workflow: the double-opt-in confirmation and the notice to the
owner of an address that is already subscribed.

Neither advertises anything, and the confirmation carries no unsubscribe header: nobody is
subscribed yet.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

from session_bot.app.double_opt_in import SubscribeOutcome
from session_bot.app.ports.subscribe import ConfirmationRenderer, MailSender, SendAnswer
from session_bot.app.subscriber_tokens import unsubscribe_token
from session_bot.core.recipient import Recipient


@dataclass(frozen=True)
class ConsentMailSetup:
    """Who the consent mails come from and where their links point; the composition root fills
    it from the settings and the plan's first series."""

    renderer: ConfirmationRenderer
    series_title: str
    from_name: str
    from_email: str
    envelope_sender: str
    public_url: str  # without a trailing slash
    message_id_domain: str
    # The series' title per language (the English mail says the English title); default: one.
    titles: Mapping[str, str] = field(default_factory=dict)

    def title(self, language: str) -> str:
        return self.titles.get(language, self.series_title)


def send_confirmation(
    *,
    renderer: ConfirmationRenderer,
    transport: MailSender,
    sender: str,
    to: str,
    name: str | None,
    language: str,
    confirm_url: str,
    series_title: str,
    message_id: str,
    now: dt.datetime,
) -> SendAnswer:
    """The double-opt-in mail (no advertising, no unsubscribe header: nobody is subscribed yet)."""
    mailing = renderer.render_confirmation(
        language=language, confirm_url=confirm_url, series_title=series_title, now=now
    )
    message = mailing.personalise(
        Recipient(email=to, name=name, language=language), message_id=message_id, date=now
    )
    return transport.send(sender, to, message)


def mail_confirmation(
    setup: ConsentMailSetup, transport: MailSender, outcome: SubscribeOutcome, now: dt.datetime
) -> SendAnswer:
    """The confirmation mail a ``send-confirmation`` outcome asks for."""
    return send_confirmation(
        renderer=setup.renderer,
        transport=transport,
        sender=setup.envelope_sender,
        to=outcome.email,
        name=outcome.name,
        language=outcome.language,
        confirm_url=f"{setup.public_url}/confirm/{outcome.confirm_token}",
        series_title=setup.title(outcome.language),
        message_id=f"<confirm.{outcome.subscriber_id}.{now:%Y%m%d%H%M%S%f}@"
        f"{setup.message_id_domain}>",
        now=now,
    )


def owner_notice(
    setup: ConsentMailSetup, secret: str, outcome: SubscribeOutcome, now: dt.datetime
) -> bytes:
    """The notice a ``notify-owner`` outcome asks for, with the subscriber's unsubscribe link."""
    assert outcome.subscriber_id is not None
    token = unsubscribe_token(secret, outcome.subscriber_id)
    return owner_notice_message(
        from_name=setup.from_name,
        from_email=setup.from_email,
        to=outcome.email,
        language=outcome.language,
        series_title=setup.title(outcome.language),
        unsubscribe_url=f"{setup.public_url}/unsubscribe/{token}",
        message_id=f"<notice.{outcome.subscriber_id}.{now:%Y%m%d%H%M%S%f}@"
        f"{setup.message_id_domain}>",
        now=now,
    )


_NOTICE = {
    "de": (
        "Sie sind bereits angemeldet: {title}",
        "Guten Tag,\n\n"
        "für Ihre Adresse {email} wurde die Anmeldung zu „{title}“ erneut abgeschickt. "
        "Sie sind bereits angemeldet; es hat sich nichts geändert.\n\n"
        "Falls Sie keine Einladungen mehr erhalten möchten, melden Sie sich hier ab:\n"
        "{unsubscribe_url}\n\n"
        "Wenn Sie das Formular nicht selbst abgeschickt haben, können Sie diese E-Mail "
        "ignorieren. Diese Nachricht erhalten Sie höchstens einmal am Tag.\n",
    ),
    "en": (
        "You are already subscribed: {title}",
        "Hello,\n\n"
        "the subscription form for “{title}” was submitted again for your address {email}. "
        "You are already subscribed; nothing has changed.\n\n"
        "If you no longer wish to receive invitations, unsubscribe here:\n"
        "{unsubscribe_url}\n\n"
        "If you did not submit the form yourself, you can ignore this e-mail. You receive this "
        "message at most once a day.\n",
    ),
}


def owner_notice_message(
    *,
    from_name: str,
    from_email: str,
    to: str,
    language: str,
    series_title: str,
    unsubscribe_url: str,
    message_id: str,
    now: dt.datetime,
) -> bytes:
    """ "Already subscribed" for the address's owner: tells them, changes nothing."""
    subject, body = _NOTICE[language if language in _NOTICE else "de"]
    msg = EmailMessage()
    msg["From"] = formataddr((from_name, from_email))
    msg["To"] = to
    msg["Subject"] = subject.format(title=series_title)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = message_id
    msg["Content-Language"] = language
    msg["Auto-Submitted"] = "auto-replied"
    msg.set_content(
        body.format(title=series_title, email=to, unsubscribe_url=unsubscribe_url),
        cte="quoted-printable",
    )
    return msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
