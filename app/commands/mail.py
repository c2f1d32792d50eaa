"""`flask mail poll` and `flask mailbox add`: receiving mail from the command line (scripts, setup, checks)."""
from __future__ import annotations

import click
from flask_babel import force_locale

from ..errors import ValidationFailed
from ..extensions import db
from ..inbound.poll import COUNTS, poll_all, receiving_mailboxes
from ..accounts.mailboxes import create_mailbox
from ..models.mailboxes import SECURITY_MODES

CLI_ACTOR = "cli"  # how the audit trail names whoever ran a command (as in app/cli.py)


def _speak_english() -> None:
    """Commands answer in English, whatever the shop's language: scripts read their output too."""
    click.get_current_context().with_resource(force_locale("en"))


@click.group(help="Receiving mail.")
def mail():
    _speak_english()


@mail.command("poll", help="Fetch new mail once from every receiving mailbox (or one) and print what happened.")
@click.option("--mailbox", "mailbox_id", type=int, help="Only this mailbox (its id).")
def poll(mailbox_id: int | None):
    if mailbox_id is not None and not receiving_mailboxes(mailbox_id):
        raise click.ClickException(f"mailbox {mailbox_id} does not exist, is inactive or has no IMAP server")
    unreachable = False
    for result in poll_all(mailbox_id):
        head = f"mailbox {result.mailbox_id} ({result.mailbox_name}):"
        if result.skipped:
            click.echo(f"{head} skipped, another pass is polling it")
            continue
        click.echo(f"{head} " + ", ".join(f"{name.replace('_', ' ')} {result.counts[name]}" for name in COUNTS))
        if result.error:
            click.echo(f"{head} stopped: {result.error}", err=True)
            unreachable = unreachable or not result.counts["fetched"]
    if unreachable:  # some mailbox could not be polled at all
        raise SystemExit(1)


@click.group(help="The shop's mailboxes.")
def mailbox():
    _speak_english()


@mailbox.command("add", help="Add a mailbox that sends over SMTP and receives over IMAP; prints its id.")
@click.option("--name", required=True)
@click.option("--email", required=True)
@click.option("--smtp-host", required=True)
@click.option("--smtp-port", type=int, required=True)
@click.option("--smtp-security", type=click.Choice(SECURITY_MODES), required=True)
@click.option("--imap-host", default="", help="Leave out for a mailbox that only sends.")
@click.option("--imap-port", type=int, default=993, show_default=True)
@click.option("--imap-security", type=click.Choice(SECURITY_MODES), default="tls", show_default=True)
@click.option("--username", default="", help="The login for both servers.")
@click.option("--password", help="Asked for when a login is given without it.")
@click.option("--after-fetch", default="seen", show_default=True, metavar="seen|move:FOLDER|delete",
              help="What happens to fetched mail on the server.")
@click.option("--folder", default="INBOX", show_default=True, help="The folder mail is fetched from.")
@click.option("--no-validate-cert", is_flag=True, help="Accept any certificate (a private server you trust).")
@click.option("--store-attachments", is_flag=True, help="Keep received attachments, not only their names.")
@click.option("--no-new-threads", is_flag=True, help="Hold mail that belongs to no conversation.")
@click.option("--poll-interval", type=int, default=60, show_default=True, help="Seconds between two polls.")
@click.option("--display-name", default="")
@click.option("--default", "is_default", is_flag=True, help="Make it the default mailbox for sending.")
def mailbox_add(name, email, smtp_host, smtp_port, smtp_security, imap_host, imap_port, imap_security, username,
                password, after_fetch, folder, no_validate_cert, store_attachments, no_new_threads, poll_interval,
                display_name, is_default):
    if username and password is None:
        password = click.prompt("Password", hide_input=True)
    action, _colon, move_to = after_fetch.partition(":")
    if action not in ("seen", "move", "delete") or bool(move_to) != (action == "move"):
        raise click.BadParameter("use seen, move:FOLDER or delete", param_hint="--after-fetch")
    try:
        created = create_mailbox(
            name=name, email=email, display_name=display_name, smtp_host=smtp_host, smtp_port=smtp_port,
            smtp_security=smtp_security, username=username, password=password, is_default=is_default,
            imap_host=imap_host, imap_port=imap_port, imap_security=imap_security,
            imap_validate_cert=not no_validate_cert, imap_folder=folder, after_fetch=action,
            after_fetch_folder=move_to or None, allow_new_threads=not no_new_threads,
            store_attachments=store_attachments, poll_interval=poll_interval, actor=CLI_ACTOR,
        )
    except ValidationFailed as exc:
        raise click.ClickException("; ".join(f"{field}: {message}" for field, message in exc.fields.items())) \
            from None
    db.session.commit()
    click.echo(created.id)
