"""Mail transports: SMTP and a Maildir outbox, behind one small interface.

Only this package speaks SMTP. It sends bytes it is given; rendering happens elsewhere.
``transport`` holds the interface and what a result means, ``smtp`` and ``maildir`` the two
transports; this module only re-exports them, so importers need not know the layout.
"""

from session_bot.adapters.mail.maildir import MaildirTransport
from session_bot.adapters.mail.smtp import SmtpTransport, TlsMode, classify
from session_bot.app.ports.mail import HARD_BOUNCE_STATUS, Outcome, SendResult, Transport

__all__ = [
    "HARD_BOUNCE_STATUS",
    "MaildirTransport",
    "Outcome",
    "SendResult",
    "SmtpTransport",
    "TlsMode",
    "Transport",
    "classify",
]
