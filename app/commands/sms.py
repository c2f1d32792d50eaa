"""`flask sms ...`: the SMS account from scripts and the shell (the same rules as Settings → SMS)."""
from __future__ import annotations

import click

from ..errors import ValidationFailed
from ..extensions import db
from ..accounts.sms import configure_sms, configure_smsapi
from ..channels.sms import inbound_url, report_url

# How the audit trail names whoever ran a command (as in app/cli.py, which imports this module).
CLI_ACTOR = "cli"


@click.group(help="The SMS account (Twilio, a Twilio-compatible provider, or SMSAPI.pl).")
def sms():
    pass


@sms.command("configure", help="Set the account SMS go out through, replacing the current settings.")
@click.option("--provider", type=click.Choice(["twilio", "smsapi"]), default="twilio", show_default=True)
@click.option("--account-sid", help="Twilio: AC… from Twilio's console.")
@click.option("--auth-token", help="Twilio: stored encrypted; asked for when left out.")
@click.option("--token", help="SMSAPI: the API token (OAuth); stored encrypted; asked for when left out.")
@click.option("--from", "from_number",
              help="Sender: a number in international form (+48…) or a name of up to 11 letters "
                   "(customers cannot answer a name); for SMSAPI also 2way (its two-way number).")
@click.option("--messaging-service", "messaging_service_sid", help="Twilio: or a Messaging Service SID (MG…).")
@click.option("--api-base-url", help="The provider's API address instead of the default (a Twilio-compatible "
                                     "provider, api.smsapi.com for SMSAPI's international accounts).")
def configure(provider: str, account_sid: str | None, auth_token: str | None, token: str | None,
              from_number: str | None, messaging_service_sid: str | None, api_base_url: str | None):
    try:
        if provider == "smsapi":
            if token is None:
                token = click.prompt("Token", hide_input=True)
            account = configure_smsapi(token, from_number, api_base_url=api_base_url, actor=CLI_ACTOR, source="cli")
        else:
            if not account_sid:
                raise click.UsageError("Missing option '--account-sid' (needed for Twilio).")
            if auth_token is None:
                auth_token = click.prompt("Auth token", hide_input=True)
            account = configure_sms(account_sid, auth_token, from_number=from_number,
                                    messaging_service_sid=messaging_service_sid, api_base_url=api_base_url,
                                    actor=CLI_ACTOR, source="cli")
    except ValidationFailed as exc:
        raise click.ClickException(str(exc)) from None
    db.session.commit()
    sender = account.from_number or f"Messaging Service {account.messaging_service_sid}"
    via = f" via {account.api_base_url}" if account.api_base_url else ""
    if provider == "smsapi":
        click.echo(f"SMSAPI account configured: sending as {sender}{via}")
        click.echo(f"Incoming SMS (paste into SMSAPI's panel): {inbound_url(account)}")
        click.echo(f"Delivery reports (sent with every SMS): {report_url(account)}")
    else:
        click.echo(f"SMS account {account.account_sid} configured: sending as {sender}{via}")
    if account.sender_is_alphanumeric:
        click.echo("Customers cannot answer SMS from a sender name; use a number if you want replies.", err=True)
