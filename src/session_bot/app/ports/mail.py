"""What a mail transport is and what it answers (the adapters in ``adapters.mail`` implement it).

A transport is one connection; ``clone()`` gives another one with the same settings, so the
delivery loop can keep several busy (see ``app.delivery``). A transport that talks to a server
may also offer ``send_steps`` (``SteppedTransport``): ``send_many`` with an ``Awaiting`` pause
wherever it would wait for the server, so one thread drives all connections.

What a result means for the delivery row:

- ``sent``: the server answered 2xx after the message (it is the server's now);
- ``temporary``: 4xx, or the connection failed before the end of DATA (nothing was taken), or
  ``ambiguous``: the connection failed after the message went out and before the answer came
  back — the server may have taken it, so this is the one case a retry can duplicate;
- ``permanent``: 5xx for this recipient; ``hard_bounce`` when the mailbox does not exist.

A transport raises ``MailError`` only when it cannot be used at all (connect, TLS, login, or a
refused envelope sender): then no recipient is to blame and nothing was sent.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Literal, NamedTuple, Protocol

Outcome = Literal["sent", "temporary", "permanent"]

# RFC 3463 enhanced status codes meaning "this address does not exist" (bad mailbox, bad domain,
# null MX): repeated, they set a subscriber aside. Full mailboxes or policy refusals do not count.
HARD_BOUNCE_STATUS = frozenset({"5.1.1", "5.1.2", "5.1.10"})
_ENHANCED = re.compile(r"\s*([245]\.\d{1,3}\.\d{1,3})\b")


class SendResult(NamedTuple):
    # A tuple, not a frozen dataclass: one per message, and a frozen init costs a µs.
    outcome: Outcome
    code: int | None
    response: str
    # The connection broke after the whole message was sent and before the server's answer.
    ambiguous: bool = False

    @property
    def enhanced_status(self) -> str | None:
        m = _ENHANCED.match(self.response)
        return m.group(1) if m else None

    @property
    def hard_bounce(self) -> bool:
        return self.outcome == "permanent" and self.enhanced_status in HARD_BOUNCE_STATUS


class NoLeadingDots(bytes):
    """A message no line of which begins with ``.``, as its renderer made sure: SMTP sends it as
    it is instead of searching 13 KB for lines to dot-stuff (RFC 5321 4.5.2), which took a sixth
    of a delivery's CPU per message. Any other transport takes it as the bytes it is."""

    __slots__ = ()


def dotted(data: bytes) -> bool:
    """Whether a line of ``data`` (or a piece of one that starts a line) begins with ``.``."""
    return data.startswith(b".") or b"\n." in data


class Awaiting(NamedTuple):
    """A pause in ``send_steps``: a message went out and its answer is not read yet, so the
    thread may serve its other connections first. ``fileno``: the socket the answer comes on
    (-1 if unknown)."""

    fileno: int


class Transport(Protocol):
    """Sends one finished message to one recipient over one connection."""

    description: str

    def send(self, sender: str, recipient: str, message: bytes) -> SendResult: ...

    def send_many(self, sender: str, messages: Iterable[tuple[str, bytes]]) -> Iterator[SendResult]:
        """Send (recipient, message) pairs in order, yielding one result each as it is known.

        ``messages`` is consumed at most one ahead of the results; a message without a yielded
        result was not sent. Raises ``MailError`` like ``send``.
        """
        ...

    def check(self) -> None:
        """Connect (and log in) once; raise ``MailError`` with the fix if that fails."""
        ...

    def clone(self) -> Transport:
        """Another transport with the same settings and a connection of its own."""
        ...

    def close(self) -> None: ...


class SteppedTransport(Transport, Protocol):
    def send_steps(
        self, sender: str, messages: Iterable[tuple[str, bytes]]
    ) -> Iterator[SendResult | Awaiting]:
        """``send_many``, with an ``Awaiting`` after a message went out and before its answer is
        read (resuming the iterator reads it)."""
        ...
