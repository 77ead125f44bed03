"""Errors a user can cause and fix, as one family.

The CLI maps every ``SessionBotError`` to exit code 2 and prints its message without a traceback.
Foreign exceptions (requests, smtplib, SQLAlchemy, yaml) are translated into this family at one
boundary per external system; nothing in the middle of the logic catches ``Exception``.

    SessionBotError                 a problem the user can fix; message names file/line/field + fix
     ├── ConfigError                settings / environment / .env
     ├── PlanError                  the series plan file (file, line, field)
     ├── TemplateError              a template that fails to load or render (template, line, field)
     ├── SubscriberImportError      a CSV file that cannot be read at all
     ├── StoreError                 database unreachable, schema out of date
     ├── LockBusy                   another run/daemon holds the lock
     ├── ZoomError                  anything Zoom answered that we cannot work around
     │    ├── ZoomAuthError         bad credentials / missing scope / unknown user
     │    │    └── ZoomUnknownUser  SESSION_BOT_ZOOM_USER names no user (also a ZoomNotFound)
     │    ├── ZoomNotFound          meeting (3001) or user (1001) does not exist
     │    ├── ZoomRateLimited       429 that outlasted our retry budget (daily limit)
     │    └── ZoomUnavailable       5xx / timeouts / connection errors after bounded retries
     │         └── LostCreateAnswer a create whose answer never came: find it before creating
     └── MailError                  transport could not be used at all (connect/auth/TLS)

    InvalidAddress (a ValueError)   one address fails the syntax check; callers turn it into a
                                    line of an import report or a form message, never a crash
"""

from __future__ import annotations


class SessionBotError(Exception):
    """A problem the user can fix. ``str(err)`` is a complete one-paragraph message."""

    exit_code = 2


class ConfigError(SessionBotError):
    """Invalid or missing setting."""


class PlanError(SessionBotError):
    """Invalid series plan; carries the file, line and field."""

    def __init__(self, message: str, *, file: str = "", line: int | None = None, field: str = ""):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        where = file
        if line is not None:
            where = f"{where}:{line}" if where else f"line {line}"
        prefix = f"{where}: " if where else ""
        if field:
            prefix += f"{field}: "
        super().__init__(prefix + message)


class TemplateError(SessionBotError):
    """A template failed to load or render."""

    def __init__(self, message: str, *, template: str = "", line: int | None = None):
        self.template = template
        self.line = line
        where = template + (f":{line}" if line is not None else "")
        super().__init__(f"{where}: {message}" if where else message)


class SubscriberImportError(SessionBotError):
    """A subscriber file that cannot be read at all."""


class StoreError(SessionBotError):
    """The database cannot be used."""


class LockBusy(SessionBotError):
    """Another process holds the run lock."""


class ZoomError(SessionBotError):
    """Zoom answered something we cannot work around."""

    def __init__(self, message: str, *, status: int | None = None, code: int | None = None):
        self.status = status
        self.code = code
        super().__init__(message)


class ZoomAuthError(ZoomError):
    """Credentials, scopes or host user are wrong."""


class ZoomNotFound(ZoomError):
    """The meeting or user does not exist (Zoom codes 3001 / 1001, HTTP 404)."""


class ZoomRateLimited(ZoomError):
    """Zoom's rate limit outlasted the retry budget."""

    def __init__(self, message: str, *, retry_at: float | None = None, **kw: int | None):
        self.retry_at = retry_at
        super().__init__(message, **kw)


class ZoomUnavailable(ZoomError):
    """Zoom did not answer usefully after bounded retries (5xx, timeouts, dropped connections)."""


class MailError(SessionBotError):
    """The mail transport could not be used (connect, TLS, auth, outbox directory)."""


class ZoomUnknownUser(ZoomAuthError, ZoomNotFound):
    """``SESSION_BOT_ZOOM_USER`` names no user of the account (Zoom code 1001).

    Both a setting to fix (``ZoomAuthError``) and Zoom's 404/1001 (``ZoomNotFound``).
    """


class LostCreateAnswer(ZoomUnavailable):
    """A create whose answer never arrived (timeout, dropped connection, 5xx): it may exist.

    The caller must look for the meeting's marker (``find_by_marker``) before creating again.
    """


class InvalidAddress(ValueError):
    """An address that is not syntactically valid; ``str()`` says why (English)."""
