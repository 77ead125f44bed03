"""Settings from the environment and ``.env`` (prefix ``SESSION_BOT_``).

Built once in ``cli.py``/``daemon.py`` and passed down; nothing reads the environment elsewhere.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from session_bot.core.errors import ConfigError

ENV_PREFIX = "SESSION_BOT_"
_WEAK_SECRETS = {"changeme", "change-me", "secret", "changethis", "please-change-me"}


class Settings(BaseSettings):
    """Every knob of session-bot; see ``.env.example`` for the documented list."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        env_ignore_empty=True,
    )

    plan: Path = Path("plan.yaml")
    var_dir: Path = Path("var")
    database_url: str = ""
    outbox: Path | None = None
    templates_dir: Path | None = None

    # Mail
    smtp_host: str | None = None
    smtp_port: int = Field(587, ge=1, le=65535)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_tls: Literal["starttls", "ssl", "none"] = "starttls"
    smtp_timeout: float = Field(30.0, gt=0)
    smtp_connections: int = Field(2, ge=1, le=32)
    rate_per_second: int | None = Field(None, ge=1)
    rate_per_minute: int | None = Field(None, ge=1)
    rate_per_hour: int | None = Field(None, ge=1)
    # A mailing owing at least this many messages is delivered by several processes (up to
    # delivery_workers, 0: one per core, one fewer for a local mail server; never more than
    # smtp_connections, which they share).
    delivery_workers: int = Field(0, ge=0, le=64)
    delivery_workers_threshold: int = Field(2000, ge=1)
    # How long a run waits for retries due soon (a server that said "try later") before it
    # leaves them to the next run and ends as incomplete.
    retry_wait_seconds: int = Field(300, ge=0, le=3600)
    mail_from: str | None = None
    bounce_address: str | None = None
    alert_email: str | None = None
    dkim_key_file: Path | None = None
    dkim_selector: str | None = None
    dkim_domain: str | None = None

    # Zoom
    zoom_account_id: str | None = None
    zoom_client_id: str | None = None
    zoom_client_secret: SecretStr | None = None
    zoom_user: str | None = None
    zoom_api_url: str = "https://api.zoom.us/v2"
    zoom_oauth_url: str = "https://zoom.us"
    zoom_dial_in_countries: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["DE"])
    zoom_webhook_secret: SecretStr | None = None
    zoom_timeout: float = Field(20.0, gt=0)

    # Web
    public_url: str = "http://127.0.0.1:8080"
    secret_key: SecretStr | None = None
    admin_token: SecretStr | None = None
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)

    # Someone who confirms after the next session's invitation went out gets it too.
    late_invitations: bool = True

    # Operations
    log_format: Literal["text", "json"] = "text"
    lock_timeout: float = Field(60.0, ge=0)
    # PostgreSQL: a standby takes over this long after the leader died at the latest.
    # Below 6 s only a dead process is detected in time (TCP keepalives count whole seconds);
    # a dead host or a network split needs >= 6 s. Tests use less.
    failover_seconds: float = Field(60.0, gt=0)

    @field_validator("secret_key", "admin_token")
    @classmethod
    def _refuse_weak(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None and (v.get_secret_value().lower() in _WEAK_SECRETS):
            raise ValueError(
                "is a well-known placeholder; generate one with `openssl rand -hex 32`"
            )
        if v is not None and len(v.get_secret_value()) < 16:
            raise ValueError(
                "is shorter than 16 characters; generate one with `openssl rand -hex 32`"
            )
        return v

    @field_validator("zoom_dial_in_countries", mode="before")
    @classmethod
    def _split_countries(cls, v: Any) -> Any:
        if isinstance(v, str) and not v.strip().startswith("["):
            return [c.strip().upper() for c in v.split(",") if c.strip()]
        return v

    # Derived values -------------------------------------------------------------------------
    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.var_dir / 'session-bot.db'}"

    @property
    def database_display(self) -> str:
        """The database URL with any password masked, for messages and logs."""
        from sqlalchemy.engine import make_url
        from sqlalchemy.exc import ArgumentError

        try:
            return make_url(self.resolved_database_url).render_as_string(hide_password=True)
        except (ArgumentError, ValueError):  # reported where the store opens it; never raw
            return "(unparsable database URL)"

    @property
    def resolved_outbox(self) -> Path:
        return self.outbox or self.var_dir / "outbox"

    @property
    def zoom_configured(self) -> bool:
        return bool(self.zoom_account_id and self.zoom_client_id and self.zoom_client_secret)

    @property
    def smtp_configured(self) -> bool:
        return bool(self.smtp_host)

    # Web hardening (issue 14) ---------------------------------------------------------------
    # No request body is read beyond this many bytes: an unauthenticated sender must not be
    # able to fill the daemon's memory. The forms and Zoom's events are a few KiB.
    max_body_bytes: int = Field(64 * 1024, ge=1024, le=16 * 1024 * 1024)
    # Reverse proxies (IPs or CIDRs) whose X-Forwarded-For is believed; empty: none is, and
    # the direct peer is the client (a header anyone can send must not pick the rate bucket).
    # Kept as normalised CIDR strings; web/client_address.py matches against them.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split_proxies(cls, v: Any) -> Any:
        from ipaddress import ip_network

        items = v.split(",") if isinstance(v, str) else v
        if not isinstance(items, list | tuple):
            return v
        try:
            return [
                str(ip_network(str(item).strip(), strict=False))
                for item in items
                if str(item).strip()
            ]
        except ValueError as exc:
            raise ValueError(f"{exc}; give IP addresses or CIDRs, comma-separated") from None

    # The public home page and calendar feed (issue 17) ----------------------------------------
    # The organiser's imprint and privacy notice, linked from the public page; `check` warns on
    # a public deployment without them (German law expects both where personal data is collected).
    imprint_url: str | None = None
    privacy_url: str | None = None
    # Optional branding of the public page: an accent colour (#rrggbb, at least 4.5:1 against
    # white, so links and buttons stay readable) and an https logo image.
    brand_colour: str | None = None
    brand_logo_url: str | None = None
    # Whether the public feed /calendar.ics carries the join link (anyone may share a feed URL);
    # without it, only each subscriber's private feed does.
    feed_join_links: bool = False

    @field_validator("imprint_url", "privacy_url")
    @classmethod
    def _web_address(cls, v: str | None) -> str | None:
        if v is not None and not v.strip().lower().startswith(("https://", "http://")):
            raise ValueError("give the page's full address, starting with https://")
        return v.strip() if v is not None else None

    @field_validator("brand_logo_url")
    @classmethod
    def _https_image(cls, v: str | None) -> str | None:
        from urllib.parse import urlsplit

        if v is None:
            return None
        parts = urlsplit(v.strip())
        if parts.scheme != "https" or not parts.hostname:
            raise ValueError("give the logo's https address, e.g. https://example.org/logo.png")
        return v.strip()

    @field_validator("brand_colour")
    @classmethod
    def _readable_colour(cls, v: str | None) -> str | None:
        import re

        if v is None:
            return None
        if not re.fullmatch(r"#[0-9a-fA-F]{6}", v.strip()):
            raise ValueError("give a colour as #rrggbb, e.g. #0a4f8f")
        colour = v.strip().lower()
        ratio = contrast_with_white(colour)
        if ratio < 4.5:
            raise ValueError(
                f"{colour} on white has a contrast of {ratio:.1f}:1; links and buttons need at "
                "least 4.5:1 (WCAG 2 AA): choose a darker colour"
            )
        return colour


def contrast_with_white(colour: str) -> float:
    """WCAG 2 contrast ratio of ``#rrggbb`` against white (1 to 21)."""

    def channel(hex2: str) -> float:
        c = int(hex2, 16) / 255
        return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4

    r, g, b = (channel(colour[i : i + 2]) for i in (1, 3, 5))
    luminance = 0.2126 * r + 0.7152 * g + 0.0722 * b
    return 1.05 / (luminance + 0.05)


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Build settings, turning validation failures into a ``ConfigError`` that names the variable."""
    try:
        return Settings(_env_file=env_file, **overrides)
    except SettingsError as exc:
        raise ConfigError(f"Invalid settings (environment or .env): {exc}.") from None
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            name = ENV_PREFIX + "_".join(str(p) for p in err["loc"]).upper()
            lines.append(f"{name}: {err['msg']}")
        raise ConfigError(
            "Invalid settings (environment or .env): "
            + "; ".join(lines)
            + ". Fix the value; .env.example documents every setting."
        ) from None
