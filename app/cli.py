"""`flask` commands for scripts and setup: staff accounts, customers, API tokens, the demo shop."""
from __future__ import annotations

import os
import secrets
from pathlib import Path

import click
from flask import Flask, current_app
from flask_babel import force_locale
from sqlalchemy import select

from .api_tokens import api_tokens, create_token, revoke_token, token_named
from .attachments import STORAGE_KINDS, move_files
from .backups import BackupRefused, backup_under_lease, configured_dir, restore_backup
from .commands.mail import mail, mailbox
from .commands.outbox import outbox
from .commands.panel import panel
from .commands.sms import sms
from .customers import create_customer
from .demo import OWNER_EMAIL, STAFF_EMAIL, seed
from .errors import ValidationFailed
from .extensions import db
from .models import User
from .models.audit import record
from .models.users import ROLES
from .shop.users import create_user

CLI_ACTOR = "cli"  # how the audit trail names whoever ran a command


def register_cli(app: Flask) -> None:
    for group in (users, customers, api_token, demo, backup, files, sms, outbox, panel, mail, mailbox):
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
@click.option("--company", is_flag=True, help="A company rather than a person.")
@click.option("--nip", help="A company's NIP (dashes and a PL prefix are fine).")
def customers_add(name: str, email: str | None, phone: str | None, company: bool, nip: str | None):
    try:
        customer = create_customer(name=name, email=email, phone=phone, kind="company" if company else "person",
                                   nip=nip, actor=CLI_ACTOR, source="cli")
    except ValidationFailed as exc:
        raise _refused(exc) from None
    db.session.commit()
    click.echo(customer.id)


@click.group("api-token", help="Tokens for the HTTP API.")
def api_token():
    _speak_english()


@api_token.command("create", help="Make a token named NAME and print it (only its hash is kept).")
@click.argument("name")
@click.option("--expires", "expires_days", type=int, metavar="DAYS",
              help="Stop working after DAYS days; without it the token works until revoked.")
def api_token_create(name: str, expires_days: int | None):
    try:
        token, plain = create_token(name, actor=CLI_ACTOR, expires_days=expires_days)
    except ValidationFailed as exc:
        raise _refused(exc) from None
    db.session.commit()
    click.echo(plain)
    # On stderr, so that `TOKEN=$(flask api-token create erp)` captures the token alone.
    click.echo("This token is shown only once; store it now.", err=True)


def _when(moment) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "-"


@api_token.command("list", help="Every token: id, name, state, who made it, when, last use, expiry.")
def api_token_list():
    rows = [("ID", "NAME", "STATE", "CREATED BY", "CREATED", "LAST USED", "EXPIRES")]
    for token in api_tokens():
        rows.append((str(token.id), token.name, token.state,
                     token.created_by.email if token.created_by else "command line",
                     _when(token.created_at), _when(token.last_used_at), _when(token.expires_at)))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


@api_token.command("revoke", help="Stop the token NAME_OR_ID at once (a name must belong to one live token).")
@click.argument("name_or_id")
def api_token_revoke(name_or_id: str):
    try:
        token = token_named(name_or_id)
    except ValidationFailed as exc:
        raise _refused(exc) from None
    if token.revoked_at is not None:
        click.echo(f"token {token.id} ({token.name}) was already revoked")
        return
    revoke_token(token, actor=CLI_ACTOR)
    db.session.commit()
    click.echo(f"revoked token {token.id} ({token.name})")


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


@click.group(help="Backups of the shop: the database, stored files and the secret key in one file.")
def backup():
    _speak_english()


@backup.command("create", help="Write a backup file (safe while the shop runs) and print its path last.")
@click.option("--output", type=click.Path(file_okay=False, path_type=Path),
              help="Directory for the file; default BACKUP_DIR, else the current directory.")
def backup_create(output: Path | None):
    directory = output or configured_dir() or Path.cwd()
    try:
        outcome = backup_under_lease(directory)
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from None
    if outcome is None:
        raise click.ClickException("another backup is being made right now; try again when it has finished")
    record("backup.create", by=CLI_ACTOR, file=outcome.path.name, size=outcome.path.stat().st_size)
    db.session.commit()
    manifest = outcome.manifest
    counts = manifest["counts"]
    click.echo(f"database: {manifest['database']['kind']} at migration {manifest['revision']}; "
               f"{counts.get('customers', 0)} customers, {counts.get('threads', 0)} threads, "
               f"{counts.get('messages', 0)} messages")
    files = manifest["attachments"]
    click.echo(f"files: {files['files']} ({files['on_disk']} on disk, {files['bytes']} bytes; {files['in_database']} in "
               "the database copy)")
    if manifest["secret_key"]["included"]:
        click.echo("secret key: included (instance/secret_key)")
    for note in outcome.notes:
        click.echo("WARNING: " + note)
    click.echo(str(outcome.path))


@click.group(help="Stored files (attachments, template files, the panel's logo).")
def files():
    _speak_english()


@files.command("move", help="Move every stored file into one store (ATTACHMENT_STORAGE's two kinds). Safe to run "
                            "while the shop runs, to interrupt and to run again: each file is copied, committed and "
                            "its SHA-256 checked in the target before its source copy is removed.")
@click.option("--to", "to", type=click.Choice(STORAGE_KINDS), required=True, help="The store to move the files into.")
@click.option("--verbose", is_flag=True, help="A line per file.")
def files_move(to: str, verbose: bool):
    def progress(sha256: str, outcome: str) -> None:
        if verbose or outcome == "damaged":
            click.echo(f"{outcome}: {sha256}")

    report = move_files(to, progress)
    click.echo(f"moved {report.moved}, already there {report.already}, damaged {len(report.damaged)}")
    if current_app.config["ATTACHMENT_STORAGE"] != to:
        click.echo(f"note: ATTACHMENT_STORAGE is {current_app.config['ATTACHMENT_STORAGE']}, so new files still go "
                   f"there; set ATTACHMENT_STORAGE={to} on every machine and run this again")
    if report.damaged:
        raise click.ClickException(f"{len(report.damaged)} files do not match their SHA-256 and were left where "
                                   "they are (restore them from a backup)")


@backup.command("restore", help="Restore a backup FILE into this (empty) instance, then migrate it.")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Replace the data of an instance that already holds a shop.")
def backup_restore(file: Path, force: bool):
    try:
        outcome = restore_backup(file, force=force)
    except BackupRefused as exc:
        raise click.ClickException(str(exc)) from None
    record("backup.restore", by=CLI_ACTOR, file=file.name, made_at=outcome.manifest["created_at"])
    db.session.commit()
    for note in outcome.notes:
        click.echo(note)
    click.echo(f"restored the backup of {outcome.manifest['created_at']}")
