"""What the renderer is configured with, what it reads of a meeting, and what it hands back."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import quote

from session_bot.core.errors import ConfigError

KINDS = ("invitation", "reminder", "update", "cancellation")

# Shown instead of a real unsubscribe link wherever no recipient is known (previews, tests).
_PREVIEW_UNSUBSCRIBE = "/unsubscribe/preview"


# --- configuration ---------------------------------------------------------------------------


@dataclass(frozen=True)
class DkimConfig:
    selector: str
    domain: str
    private_key: bytes  # PEM

    @classmethod
    def from_file(cls, path: Path, *, selector: str, domain: str) -> DkimConfig:
        try:
            key = path.read_bytes()
        except OSError as exc:
            raise ConfigError(
                f"SESSION_BOT_DKIM_KEY_FILE: cannot read {path} ({exc.strerror}); point it at the "
                "PEM private key whose public half is published at "
                f"{selector}._domainkey.{domain}"
            ) from None
        return cls(selector=selector, domain=domain, private_key=key)


@dataclass(frozen=True)
class MailConfig:
    public_url: str
    list_id: str  # e.g. "willkommen.session-bot.example.org"
    from_name: str
    from_email: str
    reply_to: str | None
    message_id_domain: str
    templates_dir: Path | None = None  # organiser's overrides; defaults fill in per file
    dkim: DkimConfig | None = None
    # The calendar UIDs' domain, fixed when the series first mailed (None: message_id_domain):
    # calendars match updates and cancellations by UID, whatever became of the public URL.
    uid_domain: str | None = None

    @property
    def preview_unsubscribe_url(self) -> str:
        return self.public_url + _PREVIEW_UNSUBSCRIBE


# --- the meeting -----------------------------------------------------------------------------


class DialInLike(Protocol):
    @property
    def number(self) -> str: ...


class MeetingLike(Protocol):
    """What a mail needs of ``session_bot.adapters.zoom.Meeting``."""

    @property
    def join_url(self) -> str: ...
    @property
    def password(self) -> str: ...
    @property
    def display_id(self) -> str: ...
    @property
    def primary_dial_in(self) -> DialInLike | None: ...
    def one_tap(self) -> str: ...


@dataclass(frozen=True)
class MeetingView:
    """The join details as templates see them."""

    join_url: str
    display_id: str
    password: str
    dial_in: str | None
    one_tap: str | None
    sample: bool = False

    @property
    def tel_url(self) -> str | None:
        # RFC 3966: "#" would start a fragment, so it is percent-encoded; "," and "*" are pauses/keys
        return "tel:" + quote(self.one_tap, safe="+,*") if self.one_tap else None

    @classmethod
    def of(cls, meeting: MeetingLike) -> MeetingView:
        dial_in = meeting.primary_dial_in
        return cls(
            join_url=meeting.join_url,
            display_id=meeting.display_id,
            password=meeting.password,
            # digits only, as Zoom's one-tap and the hand-written invitations show it
            dial_in=re.sub(r"[^\d+]", "", dial_in.number) if dial_in else None,
            one_tap=meeting.one_tap() if dial_in else None,
        )


SAMPLE_MEETING = MeetingView(
    join_url="https://zoom.example/j/12345678901",
    display_id="123 4567 8901",
    password="000000",
    dial_in="+490000000000",
    one_tap="+490000000000,,12345678901#,,,,*000000#",
    sample=True,
)


# --- output ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class MailParts:
    """Rendered parts of one message."""

    subject: str
    text: str
    html: str
    ics: bytes | None
    calendar_method: str | None = None
    calendar_filename: str | None = None
