"""`session-bot check`: everything that can be verified before anything is sent.

It runs the validations a run would hit (plan, addresses, templates with their unsubscribe link,
a writable outbox) and fails — not merely notes — a setup that would embarrass the organiser:
real Zoom meetings with mail that only lands in a local folder, or links in 500 inboxes that
point at this machine's loopback address.
"""

from __future__ import annotations

import ipaddress
import tempfile
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from session_bot import plan_source, preflight, wiring
from session_bot.adapters.clock import system_clock
from session_bot.core.errors import SessionBotError
from session_bot.core.plan import Plan, occurrences
from session_bot.core.timeline import upcoming
from session_bot.settings import Settings

Echo = Callable[[str], None]


def is_loopback(url: str) -> bool:
    """The URL names this machine only (127.x, ::1, localhost, 0.0.0.0)."""
    host = (urlsplit(url).hostname or "").lower()
    if host in ("localhost", "") or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified


def zoom_is_live(settings: Settings) -> bool:
    """Credentials set and the API is not a sandbox on this machine: runs create real meetings."""
    return settings.zoom_configured and not is_loopback(settings.zoom_api_url)


def run_checks(settings: Settings, plan_path: Path | None, echo: Echo) -> bool:
    checks = _Checks(echo)
    plan = plan_source.load(settings, plan_path)
    echo(f"ok   plan {plan.source}: {len(plan.series)} series")
    checks.attempt("addresses", lambda: preflight.check_mail_addresses(settings, plan))
    _templates(settings, plan, checks)
    _going_live(settings, checks)
    _zoom(settings, checks)
    _mail(settings, checks)
    return checks.ok


class _Checks:
    def __init__(self, echo: Echo) -> None:
        self.echo = echo
        self.ok = True

    def fail(self, what: str, why: str) -> None:
        self.echo(f"FAIL {what}: {why}")
        self.ok = False

    def attempt(self, what: str, check: Callable[[], object]) -> bool:
        try:
            check()
        except SessionBotError as exc:
            self.fail(what, str(exc))
            return False
        return True


def _templates(settings: Settings, plan: Plan, checks: _Checks) -> None:
    now = system_clock()
    occs = [o for o in upcoming(now, plan, 400) if not o.skip_reason]
    if not occs:
        checks.echo(
            "note the plan has no upcoming session; templates are checked against its last ones"
        )
        occs = [
            o
            for series in plan.series
            for o in list(occurrences(series, series.starts_on, now.date()))[-3:]
            if not o.skip_reason
        ]
    problems: list[str] = []
    for series in plan.series:
        try:
            renderer = wiring.renderer_factory(settings)(series)
            problems += renderer.check([o for o in occs if o.series.id == series.id], now)
        except SessionBotError as exc:
            problems.append(str(exc))
    for p in problems:
        checks.fail("template", p)
    if not problems:
        checks.echo(f"ok   templates render for {len(occs)} upcoming session(s)")


def _going_live(settings: Settings, checks: _Checks) -> None:
    live_zoom = zoom_is_live(settings)
    if (live_zoom or settings.smtp_configured) and is_loopback(settings.public_url):
        checks.fail(
            "public URL",
            f"SESSION_BOT_PUBLIC_URL={settings.public_url} points at this machine: every "
            "unsubscribe and confirmation link in the mails would lead nowhere. Set it to the "
            "https address subscribers reach this server at.",
        )
    if live_zoom and not settings.smtp_configured:
        checks.fail(
            "mail",
            "Zoom is live but no SMTP server is set: runs would create real meetings while the "
            f"invitations only land in the folder {settings.resolved_outbox}. Set "
            "SESSION_BOT_SMTP_HOST (and _USER, _PASSWORD) as described in .env.example.",
        )
    store = checks.attempt("database", lambda: wiring.open_store(settings).close())
    if store:
        checks.echo(f"ok   database {settings.database_display}")
    _legal_pages(settings, checks)


def _legal_pages(settings: Settings, checks: _Checks) -> None:
    """A public deployment without the organiser's imprint and privacy notice is warned about,
    not failed: the pages are the organiser's to write, and a run sends nothing wrong without
    them. Public means what the go-live checks above mean: a public URL that is not loopback."""
    missing = [
        name
        for name, value in (
            ("SESSION_BOT_IMPRINT_URL", settings.imprint_url),
            ("SESSION_BOT_PRIVACY_URL", settings.privacy_url),
        )
        if not value
    ]
    if missing and not is_loopback(settings.public_url):
        checks.echo(
            f"warn imprint and privacy notice: {' and '.join(missing)} not set, but "
            f"{settings.public_url} is public and its subscribe form collects personal data; "
            "German law expects an imprint (Impressum, § 5 DDG) and a privacy notice "
            "(Datenschutzerklärung, Art. 13 GDPR) wherever personal data is collected. Set "
            f"{' and '.join(missing)} to the organiser's pages (.env.example); the public home "
            "page links them."
        )


def _zoom(settings: Settings, checks: _Checks) -> None:
    if not settings.zoom_configured:
        checks.echo(
            "note Zoom: no credentials set; `run`/`serve` refuse until they are (demo uses the sandbox)"
        )
        return
    try:
        store = wiring.open_store(settings, purpose="look")
    except SessionBotError as exc:
        checks.fail("Zoom", f"not tried: {exc}")
        return
    try:
        zoom = wiring.make_zoom(settings, store, system_clock)
        user = zoom.check()
        checks.echo(f"ok   Zoom: token and host user {user.get('email', settings.zoom_user)}")
    except SessionBotError as exc:
        checks.fail("Zoom", str(exc))
    finally:
        store.close()


def _mail(settings: Settings, checks: _Checks) -> None:
    if settings.smtp_configured:
        transport = wiring.make_transport(settings)
        try:
            transport.check()
            checks.echo(f"ok   SMTP: {transport.description}")
        except SessionBotError as exc:
            checks.fail("SMTP", str(exc))
        finally:
            transport.close()
        return
    outbox = settings.resolved_outbox
    try:
        for sub in ("tmp", "new", "cur"):
            (outbox / sub).mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=outbox / "tmp"):
            pass
    except OSError as exc:
        checks.fail(
            "outbox",
            f"the folder {outbox} cannot be written ({exc.strerror}); give session-bot's user "
            "write access or set SESSION_BOT_OUTBOX to a folder it may write",
        )
        return
    checks.echo(f"note mail goes to the Maildir outbox {outbox}")
