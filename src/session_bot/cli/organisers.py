"""`session-bot organisers …`: who may sign in to the console at /admin/.

Accounts may live in the demo's database too (`serve --sandbox` over it is how one tries the
console): an account mails nobody but its owner.
"""

from __future__ import annotations

import getpass
import socket
from pathlib import Path
from typing import Annotated

import typer

from session_bot.cli.common import EnvFile, PlanOpt, fail, load, load_plan
from session_bot.core.errors import ConfigError, SessionBotError

organisers_app = typer.Typer(
    help="Console accounts: add (mails a one-time link to set the password), link, list, remove.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _actor() -> str:
    return f"cli ({getpass.getuser()}@{socket.gethostname()})"


@organisers_app.command("add")
def add(
    email: Annotated[str, typer.Argument(help="The organiser's e-mail address.")],
    name: Annotated[str | None, typer.Option(help="Her name, as the console shows it.")] = None,
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Create an account and mail its owner a one-time link to set her password."""
    _with_link(email, name, plan, env_file, new=True)


@organisers_app.command("link")
def link(
    email: Annotated[str, typer.Argument(help="The organiser's e-mail address.")],
    plan: PlanOpt = None,
    env_file: EnvFile = Path(".env"),
) -> None:
    """Mail a new one-time link to set the password (a forgotten password, an expired link)."""
    _with_link(email, None, plan, env_file, new=False)


def _with_link(email: str, name: str | None, plan: Path | None, env_file: Path, new: bool) -> None:
    from session_bot import wiring
    from session_bot.adapters.clock import system_clock
    from session_bot.app.addresses import normalise_address
    from session_bot.app.console.invite_mail import invitation_message, password_link
    from session_bot.core.errors import InvalidAddress

    try:
        settings = load(env_file)
        the_plan = load_plan(settings, plan)
        try:
            address = normalise_address(email)
        except InvalidAddress as exc:
            raise ConfigError(f"EMAIL {email!r} is not a usable e-mail address ({exc})") from None
        store = wiring.open_store(settings, purpose="look")
        try:
            accounts = wiring.accounts(store)
            if new:
                invitation = accounts.add(address, name, _actor())
                if invitation is None:
                    raise ConfigError(
                        f"{address} has an account already; `session-bot organisers link "
                        f"{address}` mails a new link to set the password"
                    )
            else:
                owner = accounts.organisers.get(address.lower())
                if owner is None:
                    raise ConfigError(
                        f"{address} has no account; `session-bot organisers add {address}` "
                        "creates one"
                    )
                invitation = accounts.invite(owner, _actor())
            url = password_link(settings.public_url, invitation.token)
            series = the_plan.series[0]
            message = invitation_message(
                invitation,
                link=url,
                series_title=series.title,
                sender=settings.mail_from or series.organiser.email,
                zone=series.zone,
                now=system_clock(),
            )
            transport = wiring.make_transport(settings)
            try:
                result = transport.send(
                    wiring.envelope_sender(settings, the_plan), address, message
                )
            finally:
                transport.close()
        finally:
            store.close()
    except SessionBotError as err:
        fail(err)
    verb = "Account created for" if new else "New link for"
    if result.outcome != "sent":
        typer.echo(f"{verb} {address}, but the mail was not sent ({result.response}).", err=True)
        raise typer.Exit(1)
    if settings.smtp_configured:
        typer.echo(f"{verb} {address}; the link to set the password was mailed (valid 72 hours).")
    else:
        # No mail server: the message only lands in the outbox folder, so say the link here.
        typer.echo(f"{verb} {address}. Mail goes to the outbox only, so here is the link")
        typer.echo(f"(valid once, for 72 hours): {url}")


@organisers_app.command("list")
def list_(env_file: EnvFile = Path(".env")) -> None:
    """Every account: address, name, whether a password is set, the last sign-in."""
    from session_bot import wiring

    try:
        settings = load(env_file)
        store = wiring.open_store(settings, purpose="look")
        try:
            found = store.organisers.all()
        finally:
            store.close()
    except SessionBotError as err:
        fail(err)
    if not found:
        typer.echo("No organiser accounts yet: `session-bot organisers add EMAIL --name NAME`.")
    for o in found:
        state = "password set" if o.password_hash else "waiting for the password link"
        last = f", last sign-in {o.last_sign_in_at:%Y-%m-%d %H:%M} UTC" if o.last_sign_in_at else ""
        typer.echo(f"{o.email}\t{o.name or ''}\t{state}{last}")


@organisers_app.command("remove")
def remove(
    email: Annotated[str, typer.Argument(help="The organiser's e-mail address.")],
    env_file: EnvFile = Path(".env"),
) -> None:
    """Remove an account; its signed-in browsers are signed out at once."""
    from session_bot import wiring

    try:
        settings = load(env_file)
        store = wiring.open_store(settings, purpose="look")
        try:
            removed = wiring.accounts(store).remove(email, _actor())
        finally:
            store.close()
    except SessionBotError as err:
        fail(err)
    if not removed:
        typer.echo(f"{email} has no account.", err=True)
        raise typer.Exit(2)
    typer.echo(f"Removed {email}; it can no longer sign in.")
