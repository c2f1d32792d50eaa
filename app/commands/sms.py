"""`flask sms ...`: the SMS account from scripts and the shell (the same rules as Settings → SMS)."""
from __future__ import annotations

import click

from ..errors import ValidationFailed
from ..extensions import db
from ..accounts.sms import configure_sms

# How the audit trail names whoever ran a command (as in app/cli.py, which imports this module).
CLI_ACTOR = "cli"


@click.group(help="The SMS account (Twilio or a Twilio-compatible provider).")
def sms():
    pass


@sms.command("configure", help="Set the account SMS go out through, replacing the current settings.")
@click.option("--account-sid", required=True, help="AC… from Twilio's console.")
@click.option("--auth-token", prompt=True, hide_input=True, help="Stored encrypted; asked for when left out.")
@click.option("--from", "from_number",
              help="Sender: a number in international form (+48…) or a name of up to 11 letters "
                   "(customers cannot answer a name).")
@click.option("--messaging-service", "messaging_service_sid", help="Or a Messaging Service SID (MG…).")
@click.option("--api-base-url", help="A Twilio-compatible provider's API address instead of Twilio's.")
def configure(account_sid: str, auth_token: str, from_number: str | None, messaging_service_sid: str | None,
              api_base_url: str | None):
    try:
        account = configure_sms(account_sid, auth_token, from_number=from_number,
                                messaging_service_sid=messaging_service_sid, api_base_url=api_base_url,
                                actor=CLI_ACTOR, source="cli")
    except ValidationFailed as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    sender = account.from_number or f"Messaging Service {account.messaging_service_sid}"
    via = f" via {account.api_base_url}" if account.api_base_url else ""
    click.echo(f"SMS account {account.account_sid} configured: sending as {sender}{via}")
    if account.sender_is_alphanumeric:
        click.echo("Customers cannot answer SMS from a sender name; use a number if you want replies.", err=True)
