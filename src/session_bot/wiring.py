"""Builds the runner's parts from settings: the one place that knows every concrete class."""

from __future__ import annotations

import dataclasses
import datetime as dt
import os
import secrets
import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from session_bot import logs, preflight
from session_bot.adapters.clock import ShiftedClock, system_clock
from session_bot.adapters.db.advisory import AdvisoryLock, is_postgresql
from session_bot.adapters.db.store import Store, StoreTokenCache
from session_bot.adapters.lock import FileLock, RunLock
from session_bot.adapters.mail import MaildirTransport, SmtpTransport, Transport
from session_bot.adapters.mail.smtp_wire import is_local_host
from session_bot.adapters.render.announcement import announcement_renderers
from session_bot.adapters.render.invitations import DkimConfig, MailConfig, Renderer
from session_bot.adapters.workers import HelperJob, ProcessHelpers
from session_bot.adapters.zoom import ZoomClient
from session_bot.app.alerts import Alerter
from session_bot.app.console.accounts import Accounts
from session_bot.app.delivery_policy import DeliveryReport, RateLimits, worker_processes
from session_bot.app.ports import store as ports
from session_bot.app.runner import Runner
from session_bot.core.clock import Clock
from session_bot.core.errors import ConfigError
from session_bot.core.plan import Plan, Series
from session_bot.core.recipient import Recipient
from session_bot.core.records import DeliveryRow, MailingRow
from session_bot.core.tokens import make_token
from session_bot.settings import Settings

if TYPE_CHECKING:
    from session_bot.sandbox.zoom import ZoomSandbox


GO_LIVE_ZOOM = (
    "No Zoom credentials are set. To go live, create a Server-to-Server OAuth app in the Zoom App "
    "Marketplace (scopes meeting:write:meeting:admin, meeting:read:meeting:admin, "
    "user:read:user:admin) and set SESSION_BOT_ZOOM_ACCOUNT_ID, SESSION_BOT_ZOOM_CLIENT_ID, "
    "SESSION_BOT_ZOOM_CLIENT_SECRET and SESSION_BOT_ZOOM_USER (the host's e-mail) in .env. "
    "To try it without Zoom, use `session-bot demo` or `session-bot serve --sandbox`."
)


def open_store(
    settings: Settings, *, migrate: bool = False, purpose: preflight.Purpose = "live"
) -> Store:
    """The store; a fresh database is created, an outdated one refused unless ``migrate``.

    ``purpose``: the demo's database is marked as such when the demo creates it; a live command
    refuses it (its example subscribers must never get real mail), and the demo refuses any
    database it did not create. Reading commands (``look``) open either."""
    store = Store(settings.resolved_database_url)
    if migrate:
        store.upgrade()
    else:
        store.ensure_schema()
    try:
        preflight.check_purpose(store, settings, purpose)
    except ConfigError:
        store.close()
        raise
    return store


def accounts(store: ports.Store, clock: Clock = system_clock) -> Accounts:
    """The console's organiser accounts (Argon2id password hashes)."""
    from session_bot.adapters.passwords import Argon2Hasher

    return Accounts(
        organisers=store.organisers,
        sessions=store.console_sessions,
        audit=store.audit,
        kv=store.kv,
        counters=store.counters,
        hasher=Argon2Hasher(),
        clock=clock,
    )


def run_lock(settings: Settings, clock: Clock | None = None) -> RunLock:
    """One run at a time: a file lock in var/ on SQLite; on PostgreSQL a database-wide advisory
    lock, because a run on another host must wait for the leader's run too."""
    url = settings.resolved_database_url
    if is_postgresql(url):
        return AdvisoryLock(
            url,
            host=socket.gethostname(),
            pid=os.getpid(),
            clock=clock or system_clock,
            failover_seconds=settings.failover_seconds,
        )
    return FileLock(settings.var_dir / "run.lock", "run")


def daemon_lock(settings: Settings, note: str = "") -> FileLock:
    """The single-instance lock of `serve` on SQLite: next to the database file."""
    url = settings.resolved_database_url
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        where = Path(url.removeprefix("sqlite:///")).parent
    else:
        where = settings.var_dir
    return FileLock(where / "daemon.lock", "daemon", note)


def secret_key(settings: Settings) -> str:
    """SESSION_BOT_SECRET_KEY, or one generated once and kept in var/ (0600)."""
    if settings.secret_key is not None:
        return settings.secret_key.get_secret_value()
    path = settings.var_dir / "secret.key"
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_hex(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(key)
    return key


def make_zoom(
    settings: Settings,
    store: Store,
    clock: Clock,
    *,
    api_url: str | None = None,
    oauth_url: str | None = None,
    sandbox_credentials: bool = False,
) -> ZoomClient:
    """A Zoom client for the real API, or (``sandbox_credentials``) for the bundled sandbox."""
    if sandbox_credentials:
        account, client, secret, user = (
            "sandbox-account",
            "sandbox-client",
            "sandbox-secret",
            (settings.zoom_user or "organiser@example.org"),
        )
    else:
        if not settings.zoom_configured:
            raise ConfigError(GO_LIVE_ZOOM)
        if not settings.zoom_user:
            raise ConfigError(
                "SESSION_BOT_ZOOM_USER is not set: give the e-mail or user ID of the Zoom user who "
                "hosts the meetings (Server-to-Server apps must not use `me`)."
            )
        assert settings.zoom_client_secret is not None
        account, client, user = (
            settings.zoom_account_id or "",
            settings.zoom_client_id or "",
            settings.zoom_user,
        )
        secret = settings.zoom_client_secret.get_secret_value()
    return ZoomClient(
        api_url=api_url or settings.zoom_api_url,
        oauth_url=oauth_url or settings.zoom_oauth_url,
        account_id=account,
        client_id=client,
        client_secret=secret,
        user=user,
        clock=clock,
        dial_in_countries=settings.zoom_dial_in_countries,
        timeout=settings.zoom_timeout,
        token_cache=StoreTokenCache(store, clock),
        call_counter=lambda kind: _count(store, kind, clock()),
    )


def _count(store: Store, kind: str, now: dt.datetime) -> None:
    store.counters.count_zoom_call(kind, now)


def sandbox_zoom(
    settings: Settings, store: Store, clock: Clock, sandbox: ZoomSandbox
) -> ZoomClient:
    """A client for the bundled sandbox (demo, `serve --sandbox`, tests)."""
    return make_zoom(
        settings,
        store,
        clock,
        api_url=sandbox.api_url,
        oauth_url=sandbox.oauth_url,
        sandbox_credentials=True,
    )


def make_transport(settings: Settings) -> Transport:
    if settings.smtp_configured:
        assert settings.smtp_host is not None
        return SmtpTransport(
            settings.smtp_host,
            settings.smtp_port,
            tls=settings.smtp_tls,
            user=settings.smtp_user,
            password=settings.smtp_password.get_secret_value() if settings.smtp_password else None,
            timeout=settings.smtp_timeout,
        )
    return MaildirTransport(settings.resolved_outbox)


def _domain(address: str) -> str:
    return address.rpartition("@")[2].strip(">").lower() or "localhost"


def mail_config(settings: Settings, series: Series) -> MailConfig:
    from_email = settings.mail_from or series.organiser.email
    host = urlsplit(settings.public_url).hostname or "localhost"
    return MailConfig(
        public_url=settings.public_url.rstrip("/"),
        list_id=f"{series.id}.{_domain(from_email)}",
        from_name=series.organiser.name,
        from_email=from_email,
        reply_to=series.reply_to or series.organiser.email,
        message_id_domain=_domain(from_email) if host in ("127.0.0.1", "localhost") else host,
        templates_dir=settings.templates_dir,
        dkim=DkimConfig.from_file(
            settings.dkim_key_file, selector=settings.dkim_selector, domain=settings.dkim_domain
        )
        if settings.dkim_key_file and settings.dkim_selector and settings.dkim_domain
        else None,
    )


def renderer_factory(
    settings: Settings, store: ports.Store | None = None, *, fix_calendar: bool = False
) -> Callable[[Series], Renderer]:
    """Each series' renderer. With ``store``, calendar UIDs keep the domain stored at the
    series' first mailing; ``fix_calendar`` (the runner, which mails) stores it if none is."""
    cache: dict[str, Renderer] = {}

    def get(series: Series) -> Renderer:
        if series.id not in cache:
            config = mail_config(settings, series)
            if store is not None:
                domain = calendar_domain(store, series, config.message_id_domain, fix_calendar)
                config = dataclasses.replace(config, uid_domain=domain)
            cache[series.id] = Renderer(config)
        return cache[series.id]

    return get


def calendar_domain(store: ports.Store, series: Series, current: str, fix: bool) -> str:
    """The domain of the series' calendar UIDs: the one stored at first use, else ``current``."""
    key = f"calendar.uid_domain:{series.id}"
    if fix:
        return store.kv.set_default(key, current)  # parallel workers agree on one
    return store.kv.get(key) or current


def unsubscribe_links(
    settings: Settings, key: str, subscriber_id: int, mailbox: str
) -> tuple[str, str]:
    token = make_token(key, "unsubscribe", str(subscriber_id))
    url = f"{settings.public_url.rstrip('/')}/unsubscribe/{token}"
    # A token is base64url and ".", which a URL carries as they are: only the space is quoted.
    mailto = f"mailto:{mailbox}?subject=unsubscribe%20{token}"
    return url, mailto


@dataclasses.dataclass(frozen=True)
class RecipientLinks:
    """The recipient of a delivery row, with their unsubscribe links: a value, not a closure,
    so that a mailing's ``Personaliser`` pickles for its helper processes."""

    settings: Settings
    plan: Plan
    key: str

    def __call__(self, row: DeliveryRow, mailing: MailingRow) -> Recipient:
        series = self.plan.get_series(mailing.session_key.partition("/")[0])
        mailbox = self.settings.mail_from or series.organiser.email
        url, mailto = unsubscribe_links(self.settings, self.key, row.subscriber_id, mailbox)
        return Recipient(
            email=row.email,
            name=row.name,
            language=row.language or series.language,
            unsubscribe_url=url,
            unsubscribe_mailto=mailto,
        )


def recipient_factory(settings: Settings, plan: Plan) -> RecipientLinks:
    return RecipientLinks(settings, plan, secret_key(settings))


def envelope_sender(settings: Settings, plan: Plan) -> str:
    return settings.bounce_address or settings.mail_from or plan.series[0].organiser.email


def build_runner(
    settings: Settings,
    plan: Plan,
    store: Store,
    zoom: ZoomClient | None,
    clock: Clock,
    transport: Transport | None = None,
    *,
    progress: bool = False,
) -> Runner:
    preflight.check_mail_addresses(settings, plan)
    runner = Runner(
        plan=plan,
        store=store,
        zoom=zoom,
        renderer_for=renderer_factory(settings, store, fix_calendar=True),
        announcements=announcement_renderers(renderer_factory(settings, store)),
        transport=transport or make_transport(settings),
        clock=clock,
        sender=envelope_sender(settings, plan),
        recipient_for=recipient_factory(settings, plan),
        message_id_domain=_domain(envelope_sender(settings, plan)),
        connections=settings.smtp_connections if settings.smtp_configured else 1,
        rate=RateLimits.of(
            per_second=settings.rate_per_second,
            per_minute=settings.rate_per_minute,
            per_hour=settings.rate_per_hour,
        ),
        progress=progress,
        retry_wait=dt.timedelta(seconds=settings.retry_wait_seconds),
        delivery_helpers=(
            delivery_helpers(settings, plan, clock) if settings.smtp_configured else None
        ),
    )
    return runner


def delivery_helpers(settings: Settings, plan: Plan, clock: Clock) -> ProcessHelpers:
    """Helpers for a large mailing (``worker_processes``), built from settings and plan."""
    local = is_local_host(settings.smtp_host or "")
    return ProcessHelpers(
        deliver_as_helper,
        (settings, plan, (clock() - system_clock()).total_seconds()),
        processes=worker_processes(
            settings.delivery_workers, os.cpu_count() or 1, local_server=local
        ),
        threshold=settings.delivery_workers_threshold,
    )


def deliver_as_helper(
    setup: tuple[Settings, Plan, float], job: HelperJob, stop: threading.Event
) -> DeliveryReport:
    """In a helper process: deliver the mailing as worker ``job.worker`` until done or stopped."""
    settings, plan, shift = setup
    logs.setup_logging(settings.log_format, job.log_level)
    clock: Clock = system_clock
    if abs(shift) > 1:  # `run --now` (testing): the caller's clock runs ahead or behind
        clock = ShiftedClock(system_clock() + dt.timedelta(seconds=shift))
    # The caller checked the schema and the database's purpose: a helper skips that (alembic's
    # import alone is a tenth of a second) and starts sending at once.
    store = Store(settings.resolved_database_url)
    try:
        runner = build_runner(settings, plan, store, None, clock)
        runner.worker, runner.connections, runner.stop = job.worker, job.connections, stop
        try:
            return runner.push(store.mailings.get(job.mailing_id), job.personalise)
        finally:
            runner.transport.close()
    finally:
        store.close()


def var_path(settings: Settings, name: str) -> Path:
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    return settings.var_dir / name


def make_alerter(
    settings: Settings,
    plan: Plan,
    store: Store,
    transport: Transport,
    clock: Clock | None = None,
) -> Alerter:
    """The alerter for the runner's hooks: ``runner.on_hold = a``, ``runner.on_alert = a.notice``."""
    return Alerter(
        store=store,
        transport=transport,
        to=settings.alert_email,
        sender=envelope_sender(settings, plan),
        from_address=settings.mail_from or plan.series[0].organiser.email,
        plan_source=plan.source,
        # A plan kept in the database is edited in the console: the alert links there.
        console_url=(
            settings.public_url.rstrip("/") + "/admin/"
            if plan.source.startswith("database:")
            else None
        ),
        organiser=plan.series[0].organiser.email,
        zone=plan.series[0].zone,
        clock=clock,
    )
