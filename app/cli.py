"""`flask` commands for scripts and setup: staff accounts, customers, API tokens, the demo shop."""
from __future__ import annotations

import os
import secrets

import click
from flask import Flask
from flask_babel import force_locale
from sqlalchemy import select

from .customers import create_customer
from .demo import OWNER_EMAIL, STAFF_EMAIL, seed
from .errors import ValidationFailed
from .extensions import db
from .fields import clean_line
from .models import ApiToken, User
from .models.audit import record
from .models.users import ROLES
from .staff.users import create_user

CLI_ACTOR = "cli"  # how the audit trail names whoever ran a command
API_TOKEN_NAME_MAX = 120  # ApiToken.name's column


def register_cli(app: Flask) -> None:
    from .channels.commands import sms
    from .inbound.commands import mail, mailbox
    from .outbox.commands import outbox
    from .portal.commands import panel

    for group in (users, customers, api_token, demo, sms, outbox, panel, mail, mailbox):
        app.cli.add_command(group)


def _speak_english() -> None:
    """Commands answer in English, whatever the shop's language: scripts read their output too."""
    click.get_current_context().with_resource(force_locale("en"))


def _refused(exc: ValidationFailed) -> click.ClickException:
    """The domain's field messages as a command-line error (exit status 1)."""
    return click.ClickException("; ".join(f"{field}: {message}" for field, message in exc.fields.items()))


@click.group(help="Staff accounts.")
def users():
    _speak_english()


@users.command("create", help="Add a staff account that can sign in with EMAIL and the password.")
@click.argument("email")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True,
              help="At least 10 characters; asked for when left out.")
@click.option("--role", type=click.Choice(ROLES), required=True)
@click.option("--name", help="Shown in the app; defaults to the part of EMAIL before the @.")
def users_create(email: str, password: str, role: str, name: str | None):
    try:
        user = create_user(email=email, name=name or email.partition("@")[0], role=role, password=password,
                           actor=CLI_ACTOR)
    except ValidationFailed as exc:
        raise _refused(exc) from None
    db.session.commit()
    click.echo(f"created {user.role} {user.email}")


@click.group(help="Customers.")
def customers():
    _speak_english()


@customers.command("add", help="Add a customer and print their id.")
@click.option("--name", required=True)
@click.option("--email")
@click.option("--phone", help="E.164 (+48600100200) or a Polish number (600 100 200).")
def customers_add(name: str, email: str | None, phone: str | None):
    try:
        customer = create_customer(name=name, email=email, phone=phone, actor=CLI_ACTOR, source="cli")
    except ValidationFailed as exc:
        raise _refused(exc) from None
    db.session.commit()
    click.echo(customer.id)


@click.group("api-token", help="Tokens for the HTTP API.")
def api_token():
    _speak_english()


@api_token.command("create", help="Make a token named NAME and print it (only its hash is kept).")
@click.argument("name")
def api_token_create(name: str):
    try:  # the name labels the token's actions in the audit log ("api:NAME")
        name = clean_line(name, "name", API_TOKEN_NAME_MAX)
    except ValidationFailed as exc:
        raise _refused(exc) from None
    if not name:
        raise click.ClickException("give the token a name, e.g. the system that will use it")
    token, plain = ApiToken.issue(name)
    db.session.flush()
    record("api_token.create", by=CLI_ACTOR, target=token, name=name)
    db.session.commit()
    click.echo(plain)
    # On stderr, so that `TOKEN=$(flask api-token create erp)` captures the token alone.
    click.echo("This token is shown only once; store it now.", err=True)


@click.group(help="The demo shop.")
def demo():
    _speak_english()


@demo.command("seed", help="Fill an empty database with a demo shop (staff, customers, repairs, threads).")
def demo_seed():
    if db.session.scalar(select(User.id).limit(1)) is not None:
        click.echo("database not empty, nothing seeded")
        return
    password = os.environ.get("DEMO_PASSWORD") or secrets.token_urlsafe(9)
    seed(password)
    db.session.commit()
    click.echo("Demo shop seeded. Sign in as")
    click.echo(f"  owner: {OWNER_EMAIL}")
    click.echo(f"  staff: {STAFF_EMAIL}")
    click.echo(f"  password (both): {password}")
