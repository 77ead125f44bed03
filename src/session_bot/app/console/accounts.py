"""Organiser accounts: a one-time link to set the password, sign-in, signed-in sessions.

No default or shared password exists: an account has none until its owner sets one through the
link mailed to her. Sign-in is limited per address (a run of wrong passwords locks the address
for a while and mails nobody) and per client. The browser holds a random token; the database only
its SHA-256, so a copy of the database signs nobody in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Literal

from session_bot.app.ports.console import (
    AuditLog,
    ConsoleSessions,
    Organisers,
    PasswordHasher,
)
from session_bot.app.ports.store import Counters, KeyValues
from session_bot.core.clock import Clock
from session_bot.core.console import ConsoleSession, Organiser

SETUP_VALID = dt.timedelta(hours=72)
IDLE = dt.timedelta(hours=2)  # a signed-in browser left alone this long signs in again
LONGEST = dt.timedelta(hours=12)  # and every morning, however busy
FAILURE_WINDOW = dt.timedelta(minutes=15)
MAX_FAILURES = 10  # wrong passwords per address within the window before it locks
CLIENT_ATTEMPTS = 30  # sign-in attempts per client address within the window
PASSWORD_MIN = 12
_TOUCH_EVERY = dt.timedelta(seconds=60)

Refusal = Literal["wrong", "locked", "busy"]
PasswordProblem = Literal["short", "mismatch", "is_email", "link"]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class SignedIn:
    token: str  # for the cookie; never stored
    session: ConsoleSession


@dataclass(frozen=True)
class Invitation:
    organiser: Organiser
    token: str  # the one-time link's token
    valid_until: dt.datetime


class Accounts:
    def __init__(
        self,
        *,
        organisers: Organisers,
        sessions: ConsoleSessions,
        audit: AuditLog,
        kv: KeyValues,
        counters: Counters,
        hasher: PasswordHasher,
        clock: Clock,
    ) -> None:
        self.organisers = organisers
        self.sessions = sessions
        self.audit = audit
        self._kv = kv
        self._counters = counters
        self._hasher = hasher
        self._clock = clock
        self._dummy: str | None = None

    # --- accounts ------------------------------------------------------------------------------
    def add(self, email: str, name: str | None, actor: str) -> Invitation | None:
        """A new account with a one-time password link; None if the address has one."""
        now = self._clock()
        organiser = self.organisers.add(email.strip().lower(), name, now)
        if organiser is None:
            return None
        self.audit.record(now, actor, "organiser-added", organiser.email, None)
        return self.invite(organiser, actor)

    def invite(self, organiser: Organiser, actor: str) -> Invitation:
        """A (new) one-time link to set the password; earlier links stay valid until used."""
        now = self._clock()
        token = secrets.token_urlsafe(32)
        until = now + SETUP_VALID
        self._kv.set(_setup_key(token), str(organiser.id), until)
        self.audit.record(now, actor, "password-link", organiser.email, None)
        return Invitation(organiser, token, until)

    def remove(self, email: str, actor: str) -> bool:
        organiser = self.organisers.get(email.strip().lower())
        if organiser is None:
            return False
        self.organisers.remove(organiser.id)
        self.audit.record(self._clock(), actor, "organiser-removed", organiser.email, None)
        return True

    def link_owner(self, token: str) -> Organiser | None:
        """Whose password link this is, while it is valid and unused."""
        value = self._kv.get(_setup_key(token), self._clock())
        return self.organisers.get_by_id(int(value)) if value else None

    def set_password(
        self, token: str, password: str, repeated: str, client: str | None
    ) -> Organiser | PasswordProblem:
        owner = self.link_owner(token)
        if owner is None:
            return "link"
        if len(password) < PASSWORD_MIN:
            return "short"
        if password != repeated:
            return "mismatch"
        if password.strip().lower() == owner.email:
            return "is_email"
        if self._kv.take(_setup_key(token)) is None:
            return "link"  # used a moment ago, in another tab
        now = self._clock()
        self.organisers.set_password(owner.id, self._hasher.hash(password), now)
        self.audit.record(now, owner.email, "password-set", "", client)
        return owner

    # --- signing in ----------------------------------------------------------------------------
    def sign_in(self, email: str, password: str, client: str | None) -> SignedIn | Refusal:
        now = self._clock()
        address = email.strip().lower()
        if not self._counters.hit_rate_limit(
            f"console-sign-in:{client or '?'}", now, FAILURE_WINDOW, CLIENT_ATTEMPTS
        ):
            self.audit.record(now, address[:320] or "?", "sign-in-refused", "client busy", client)
            return "busy"
        failures = int(self._kv.get(_failures_key(address), now) or 0)
        if failures >= MAX_FAILURES:
            return "locked"
        organiser = self.organisers.get(address)
        stored = organiser.password_hash if organiser else None
        # The same work for an unknown address: the answer's timing names no account.
        ok = self._hasher.verify(stored or self._dummy_hash(), password) and stored is not None
        if not ok or organiser is None:
            self._kv.set(_failures_key(address), str(failures + 1), now + FAILURE_WINDOW)
            if organiser is not None:
                self.audit.record(now, organiser.email, "sign-in-refused", "wrong password", client)
            return "locked" if failures + 1 >= MAX_FAILURES else "wrong"
        if stored is not None and self._hasher.needs_rehash(stored):
            self.organisers.set_password(organiser.id, self._hasher.hash(password), now)
        self._kv.take(_failures_key(address))
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(24)
        self.sessions.start(token_hash(token), organiser.id, csrf, client, now)
        self.organisers.signed_in(organiser.id, now)
        self.audit.record(now, organiser.email, "sign-in", "", client)
        return SignedIn(token, ConsoleSession(organiser, csrf, now, now))

    def session(self, token: str | None) -> ConsoleSession | None:
        """The signed-in session of a cookie's token; None when unknown, idle or too old."""
        if not token:
            return None
        key = token_hash(token)
        found = self.sessions.get(key)
        if found is None:
            return None
        now = self._clock()
        if now - found.last_seen_at > IDLE or now - found.created_at > LONGEST:
            self.sessions.end(key)
            return None
        if now - found.last_seen_at > _TOUCH_EVERY:
            self.sessions.touch(key, now)
        return found

    def sign_out(self, token: str, client: str | None) -> None:
        found = self.sessions.get(token_hash(token))
        self.sessions.end(token_hash(token))
        if found is not None:
            self.audit.record(self._clock(), found.organiser.email, "sign-out", "", client)

    def _dummy_hash(self) -> str:
        if self._dummy is None:
            self._dummy = self._hasher.hash(secrets.token_urlsafe(16))
        return self._dummy


def _setup_key(token: str) -> str:
    return f"console.setup:{token_hash(token)}"


def _failures_key(address: str) -> str:
    return f"console.failures:{hashlib.sha256(address.encode()).hexdigest()[:32]}"
