"""The mail that gives an organiser her one-time link to set a password (German, then English)."""

from __future__ import annotations

import datetime as dt
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from session_bot.app.console.accounts import Invitation


def password_link(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/admin/password/{token}"


def invitation_message(
    invitation: Invitation,
    *,
    link: str,
    series_title: str,
    sender: str,
    zone: ZoneInfo,
    now: dt.datetime,
) -> bytes:
    until = invitation.valid_until.astimezone(zone)
    name = invitation.organiser.name
    de_until = until.strftime("%d.%m.%Y, %H:%M Uhr")
    en_until = until.strftime("%d %B %Y, %H:%M")
    body = f"""\
{f"Guten Tag {name}," if name else "Guten Tag,"}

für Sie wurde ein Zugang zur Organisationskonsole von „{series_title}“ angelegt
({invitation.organiser.email}). Bitte legen Sie über diesen Link Ihr Passwort fest:

{link}

Der Link gilt einmal und bis zum {de_until}. Wenn Sie keinen Zugang erwartet haben,
ignorieren Sie diese E-Mail einfach; ohne Passwort kann sich niemand anmelden.

---

{f"Hello {name}," if name else "Hello,"}

an account for the organisers' console of "{series_title}" was created for you
({invitation.organiser.email}). Please set your password through this link:

{link}

The link works once, until {en_until}. If you did not expect this, simply ignore this
e-mail; without a password nobody can sign in.
"""
    msg = EmailMessage(policy=SMTP)
    msg["From"] = sender
    msg["To"] = invitation.organiser.email
    msg["Subject"] = f"Ihr Zugang zur Konsole von „{series_title}“ / Your console access"
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("console", sender.rpartition("@")[2] or "localhost")
    msg["Auto-Submitted"] = "auto-generated"
    msg.set_content(body, charset="utf-8")
    return msg.as_bytes()
